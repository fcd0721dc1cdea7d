#include "source/tls/ssl_socket.h"

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/stats.h"
#include "test/unit/fakes/test_certificates.h"

namespace phoenix::tls {
namespace {

using network::ConnectionEvent;

// One end of an in-memory connection: records what its socket yields.
class Endpoint : public network::TransportSocketCallbacks {
 public:
  void OnPlaintext(const char* data, size_t length) override {
    plaintext.append(data, length);
    if (on_plaintext) on_plaintext();
  }
  void WriteToSocket(const std::string_view* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) wire.append(slices[i]);
  }
  void RaiseEvent(ConnectionEvent event) override { events.push_back(event); }
  const std::string& peer_address() const override { return peer; }

  bool Has(ConnectionEvent event) const {
    return std::find(events.begin(), events.end(), event) != events.end();
  }

  std::unique_ptr<SslSocket> socket;
  std::string peer = "192.0.2.7:4444";
  std::string plaintext;
  std::string wire;  // Written by the socket, not yet delivered to the other end.
  std::vector<ConnectionEvent> events;
  std::function<void()> on_plaintext;
};

class SslSocketTest : public ::testing::Test {
 protected:
  SslSocketTest()
      : ca_(MakeCert("Test CA", "", nullptr)),
        other_ca_(MakeCert("Other CA", "", nullptr)),
        server_cert_(MakeCert("localhost", "DNS:localhost", &ca_)),
        admin_(MakeCert("admin", "URI:spiffe://test/ns/ops/sa/admin", &ca_)),
        web_(MakeCert("web", "URI:spiffe://test/ns/default/sa/web", &ca_)),
        intruder_(MakeCert("intruder", "URI:spiffe://test/ns/ops/sa/admin", &other_ca_)) {
    server_proto_.mutable_common_tls_context()->add_tls_certificates()->CopyFrom(
        Inline(server_cert_));
    client_proto_.set_sni("localhost");
    client_proto_.mutable_common_tls_context()
        ->mutable_validation_context()
        ->mutable_trusted_ca()
        ->set_inline_string(ca_.cert_pem);
  }

  // Server side asks for client certificates signed by the CA, allowing `san_prefix` URIs.
  void RequireClientCertificates(const std::string& san_prefix) {
    auto* validation = server_proto_.mutable_common_tls_context()->mutable_validation_context();
    validation->mutable_trusted_ca()->set_inline_string(ca_.cert_pem);
    auto* matcher = validation->add_match_typed_subject_alt_names();
    matcher->set_san_type(config::v1::SubjectAltNameMatcher::URI);
    matcher->mutable_matcher()->set_prefix(san_prefix);
    server_proto_.mutable_require_client_certificate()->set_value(true);
  }

  void ShowClientCertificate(const TestCert& cert) {
    *client_proto_.mutable_common_tls_context()->add_tls_certificates() = Inline(cert);
  }

  // Builds both contexts and sockets and runs the handshake.
  void Connect() {
    Build();
    client_.socket->OnConnected();
    Pump();
  }

  // Builds both contexts and sockets; the client's handshake has not started.
  void Build() {
    network::TransportSocketContext server_context{network::TransportSocketSide::kDownstream,
                                                   nullptr, &stats_, "test"};
    network::TransportSocketContext client_context{network::TransportSocketSide::kUpstream, nullptr,
                                                   &stats_, "test"};
    server_tls_ = TlsContext::CreateServer(server_proto_, server_context, "server", errors_);
    client_tls_ = TlsContext::CreateClient(client_proto_, client_context, "client", errors_);
    ASSERT_NE(server_tls_, nullptr) << errors_.ToStatus();
    ASSERT_NE(client_tls_, nullptr) << errors_.ToStatus();
    server_.socket = std::make_unique<SslSocket>(server_tls_);
    client_.socket = std::make_unique<SslSocket>(client_tls_);
    server_.socket->SetCallbacks(&server_);
    client_.socket->SetCallbacks(&client_);
  }

  // Delivers what each end wrote to the other until both are quiet.
  void Pump() {
    for (Endpoint* end : {&client_, &server_}) {
      if (end->socket != nullptr) end->socket->Flush();  // As the connection does per iteration.
    }
    for (int i = 0; i < 20 && (!client_.wire.empty() || !server_.wire.empty()); ++i) {
      Deliver(client_, server_);
      Deliver(server_, client_);
    }
  }
  static void Deliver(Endpoint& from, Endpoint& to) {
    std::string bytes = std::move(from.wire);
    from.wire.clear();
    if (!bytes.empty() && to.socket != nullptr) to.socket->OnSocketData(bytes.data(), bytes.size());
  }

  uint64_t Stat(const std::string& name) { return stats_.Counters()[name]; }

  // A fresh server-side socket (after Connect() built the contexts) talking to `end`.
  std::unique_ptr<SslSocket> NewServerSocket(Endpoint& end) {
    auto socket = std::make_unique<SslSocket>(server_tls_);
    socket->SetCallbacks(&end);
    return socket;
  }

  // The server's context made again from server_proto_ as it is now, under `stat_name` (as a
  // config change or a certificate renewal does).
  void RebuildServer(const std::string& stat_name) {
    network::TransportSocketContext context{network::TransportSocketSide::kDownstream, nullptr,
                                            &stats_, stat_name};
    server_tls_ = TlsContext::CreateServer(server_proto_, context, "server", errors_);
    ASSERT_NE(server_tls_, nullptr) << errors_.ToStatus();
  }

  // New sockets on both ends (the server's context as it is now, the client's `client`) and a
  // handshake: how a later connection of the same peers goes.
  void ConnectAgain(std::shared_ptr<const TlsContext> client) {
    server_ = Endpoint();
    client_ = Endpoint();
    server_.socket = NewServerSocket(server_);
    client_.socket = std::make_unique<SslSocket>(std::move(client));
    client_.socket->SetCallbacks(&client_);
    client_.socket->OnConnected();
    Pump();
  }

  TestCert ca_, other_ca_, server_cert_, admin_, web_, intruder_;
  config::v1::DownstreamTlsContext server_proto_;
  config::v1::UpstreamTlsContext client_proto_;
  StatsStore stats_;
  config::ConfigErrors errors_;
  std::shared_ptr<const TlsContext> server_tls_, client_tls_;
  Endpoint server_, client_;
};

TEST_F(SslSocketTest, HandshakeThenPlaintextBothWays) {
  client_proto_.mutable_common_tls_context()->add_alpn_protocols("http/1.1");
  Connect();
  EXPECT_TRUE(client_.Has(ConnectionEvent::kConnected));
  EXPECT_TRUE(server_.Has(ConnectionEvent::kConnected));
  EXPECT_EQ(client_.socket->ApplicationProtocol(), "http/1.1");
  EXPECT_EQ(server_.socket->ApplicationProtocol(), "http/1.1");

  std::string_view request[] = {"GET / HTTP/1.1\r\n", "host: x\r\n\r\n"};
  client_.socket->Write(request, 2);
  Pump();
  EXPECT_EQ(server_.plaintext, "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  std::string big(100 * 1024, 'b');  // Several records, delivered in order.
  std::string_view response = big;
  server_.socket->Write(&response, 1);
  Pump();
  EXPECT_EQ(client_.plaintext, big);
  EXPECT_EQ(Stat("listener.test.tls.handshake"), 1u);
  EXPECT_EQ(Stat("cluster.test.tls.handshake"), 1u);
}

TEST_F(SslSocketTest, WritesOfOneIterationAreSealedIntoOneRecordAtFlush) {
  Connect();
  std::string_view head = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
  std::string_view body = "hello";
  server_.socket->Write(&head, 1);
  server_.socket->Write(&body, 1);
  EXPECT_EQ(server_.wire, "");  // Held until the connection flushes.
  server_.socket->Flush();
  ASSERT_GE(server_.wire.size(), 5u);
  size_t record_length =
      (static_cast<uint8_t>(server_.wire[3]) << 8) | static_cast<uint8_t>(server_.wire[4]);
  EXPECT_EQ(server_.wire.size(), 5 + record_length);  // Exactly one record.
  Pump();
  EXPECT_EQ(client_.plaintext, std::string(head) + std::string(body));
}

TEST_F(SslSocketTest, PlaintextWrittenBeforeTheHandshakeIsSentAfterIt) {
  Build();
  std::string_view data = "early";
  client_.socket->Write(&data, 1);
  EXPECT_EQ(client_.wire, "");  // Held: there is no key to seal it with yet.
  client_.socket->OnConnected();
  Pump();
  EXPECT_EQ(server_.plaintext, "early");
}

TEST_F(SslSocketTest, CleanCloseSendsCloseNotify) {
  Connect();
  server_.socket->OnCleanClose();
  Pump();
  EXPECT_TRUE(client_.Has(ConnectionEvent::kRemoteClose));
}

TEST_F(SslSocketTest, AnUnknownServerCaFailsTheUpstreamHandshake) {
  client_proto_.mutable_common_tls_context()
      ->mutable_validation_context()
      ->mutable_trusted_ca()
      ->set_inline_string(other_ca_.cert_pem);
  Connect();
  EXPECT_TRUE(client_.Has(ConnectionEvent::kRemoteClose));
  EXPECT_FALSE(client_.Has(ConnectionEvent::kConnected));
  EXPECT_EQ(Stat("cluster.test.tls.fail_unknown_ca"), 1u);
}

TEST_F(SslSocketTest, TheServerNameMustBeInTheCertificate) {
  client_proto_.set_sni("elsewhere.test");
  Connect();
  EXPECT_EQ(Stat("cluster.test.tls.fail_san_mismatch"), 1u);
}

TEST_F(SslSocketTest, AnAllowedClientCertificateGivesThePeerIdentity) {
  RequireClientCertificates("spiffe://test/ns/ops/");
  ShowClientCertificate(admin_);
  Connect();
  ASSERT_TRUE(server_.Has(ConnectionEvent::kConnected));
  const network::TlsInfo* info = server_.socket->tls_info();
  ASSERT_NE(info, nullptr);
  ASSERT_NE(info->peer, nullptr);
  EXPECT_EQ(info->peer->principal, "spiffe://test/ns/ops/sa/admin");
  EXPECT_EQ(info->peer->uri_san, "spiffe://test/ns/ops/sa/admin");
  EXPECT_EQ(info->peer->subject, "CN=admin");
  EXPECT_EQ(info->peer->sha256.size(), 64u);
  EXPECT_EQ(info->version, "TLSv1.3");
  EXPECT_EQ(client_.socket->tls_info()->peer->principal, "localhost");  // DNS SAN
}

TEST_F(SslSocketTest, ClientCertificateRefusalsAreCountedByReason) {
  RequireClientCertificates("spiffe://test/ns/ops/");
  Connect();  // No certificate at all.
  EXPECT_EQ(Stat("listener.test.tls.fail_no_certificate"), 1u);
  EXPECT_FALSE(server_.Has(ConnectionEvent::kConnected));

  ShowClientCertificate(web_);  // Wrong SAN.
  server_ = Endpoint();
  client_ = Endpoint();
  Connect();
  EXPECT_EQ(Stat("listener.test.tls.fail_san_mismatch"), 1u);
  EXPECT_TRUE(server_.Has(ConnectionEvent::kRemoteClose));

  client_proto_.mutable_common_tls_context()->clear_tls_certificates();
  ShowClientCertificate(intruder_);  // Right SAN, unknown CA.
  server_ = Endpoint();
  client_ = Endpoint();
  Connect();
  EXPECT_EQ(Stat("listener.test.tls.fail_unknown_ca"), 1u);
}

TEST_F(SslSocketTest, GarbageGetsAnAlertAndIsCounted) {
  Connect();
  Endpoint end;
  auto socket = NewServerSocket(end);
  std::string garbage = "\x01\x02\x03 definitely not TLS \xff\xff";
  socket->OnSocketData(garbage.data(), garbage.size());
  ASSERT_FALSE(end.wire.empty());
  EXPECT_EQ(end.wire[0], '\x15');  // An alert record.
  EXPECT_TRUE(end.Has(ConnectionEvent::kRemoteClose));
  EXPECT_EQ(Stat("listener.test.tls.fail_protocol"), 1u);
}

TEST_F(SslSocketTest, PlainHttpGetsA400) {
  Connect();
  Endpoint end;
  auto socket = NewServerSocket(end);
  std::string request = "GET / HTTP/1.1\r\nhost: x\r\n\r\n";
  socket->OnSocketData(request.data(), request.size());
  EXPECT_EQ(end.wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << end.wire;
  EXPECT_EQ(Stat("listener.test.tls.fail_plaintext"), 1u);
}

TEST_F(SslSocketTest, AStalledHandshakeIsCountedWhenItTimesOut) {
  Connect();
  Endpoint end;
  auto socket = NewServerSocket(end);
  socket->OnConnectTimeout();
  EXPECT_EQ(Stat("listener.test.tls.fail_timeout"), 1u);
}

TEST_F(SslSocketTest, TheOwnerMayDestroyTheSocketWhileTakingPlaintext) {
  Connect();
  server_.on_plaintext = [this] { server_.socket.reset(); };
  std::string_view data = "bye";
  client_.socket->Write(&data, 1);
  Pump();  // ASan would catch a use after free here.
  EXPECT_EQ(server_.plaintext, "bye");
  EXPECT_EQ(server_.socket, nullptr);
}

// Sleeps until the clock is past `cert`'s not-after.
void WaitUntilExpired(const TestCert& cert) {
  time_t not_after = DescribeCertificate(cert.cert.get(), "").not_after;
  while (time(nullptr) <= not_after) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// Certificates that expire two seconds after they are made (contexts refuse to load an expired
// one), so the test sleeps about three seconds: no clock is injected into the TLS context.
TEST_F(SslSocketTest, AnExpiredCertificateOfOurOwnIsNeverShown) {
  TestCert short_server = MakeCert("localhost", "DNS:localhost", &ca_, /*valid_for_seconds=*/2);
  TestCert short_client = MakeCert("admin", "URI:spiffe://test/ns/ops/sa/admin", &ca_, 2);
  *server_proto_.mutable_common_tls_context()->mutable_tls_certificates(0) = Inline(short_server);
  RequireClientCertificates("spiffe://test/ns/ops/");
  ShowClientCertificate(admin_);
  Connect();  // Still valid.
  ASSERT_TRUE(server_.Has(ConnectionEvent::kConnected));
  ASSERT_NE(client_tls_->LastSession(), nullptr);  // The client will offer to resume.
  EXPECT_FALSE(server_tls_->HasExpiredCertificate(time(nullptr)));
  // Another upstream, whose own client certificate is the short-lived one.
  config::v1::UpstreamTlsContext expiring_proto = client_proto_;
  *expiring_proto.mutable_common_tls_context()->mutable_tls_certificates(0) = Inline(short_client);
  network::TransportSocketContext expiring_context{network::TransportSocketSide::kUpstream, nullptr,
                                                   &stats_, "expiring"};
  auto expiring_tls = TlsContext::CreateClient(expiring_proto, expiring_context, "c", errors_);
  ASSERT_NE(expiring_tls, nullptr) << errors_.ToStatus();

  WaitUntilExpired(short_server);
  WaitUntilExpired(short_client);
  EXPECT_TRUE(server_tls_->HasExpiredCertificate(time(nullptr)));
  // The listener's certificate expired: it refuses the handshake, a resumption included.
  ConnectAgain(client_tls_);
  EXPECT_FALSE(server_.Has(ConnectionEvent::kConnected));
  EXPECT_FALSE(client_.Has(ConnectionEvent::kConnected));
  EXPECT_EQ(Stat("listener.test.tls.fail_expired_certificate"), 1u);
  EXPECT_EQ(Stat("listener.test.tls.handshake"), 1u);

  // The upstream's client certificate expired: asked for it, the client refuses too.
  *server_proto_.mutable_common_tls_context()->mutable_tls_certificates(0) = Inline(server_cert_);
  RebuildServer("fresh");
  ConnectAgain(expiring_tls);
  EXPECT_FALSE(server_.Has(ConnectionEvent::kConnected));
  EXPECT_FALSE(client_.Has(ConnectionEvent::kConnected));
  EXPECT_EQ(Stat("cluster.expiring.tls.fail_expired_certificate"), 1u);
  EXPECT_EQ(Stat("listener.fresh.tls.handshake"), 0u);
}

TEST_F(SslSocketTest, AnUpstreamNotAskedForItsExpiredClientCertificateStillConnects) {
  ShowClientCertificate(MakeCert("admin", "URI:spiffe://test/ns/ops/sa/admin", &ca_, 1));
  Build();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_TRUE(client_tls_->HasExpiredCertificate(time(nullptr)));
  client_.socket->OnConnected();
  Pump();
  EXPECT_TRUE(client_.Has(ConnectionEvent::kConnected));  // Never shown: nothing to refuse.
  EXPECT_EQ(Stat("cluster.test.tls.fail_expired_certificate"), 0u);
}

TEST_F(SslSocketTest, ASessionResumesOnlyUnderTheTrustItWasVerifiedWith) {
  RequireClientCertificates("spiffe://test/ns/ops/");
  ShowClientCertificate(admin_);
  Connect();
  ASSERT_TRUE(server_.Has(ConnectionEvent::kConnected));
  ASSERT_NE(client_tls_->LastSession(), nullptr);
  auto reconnect = [&](const std::string& san_prefix) {
    server_proto_.mutable_common_tls_context()
        ->mutable_validation_context()
        ->mutable_match_typed_subject_alt_names(0)
        ->mutable_matcher()
        ->set_prefix(san_prefix);
    RebuildServer("test");
    ConnectAgain(client_tls_);
    ASSERT_TRUE(server_.Has(ConnectionEvent::kConnected));
  };
  // The same trust (a rebuilt context, as a renewal of our own certificate makes): resumed.
  reconnect("spiffe://test/ns/ops/");
  EXPECT_EQ(Stat("listener.test.tls.session_reused"), 1u);
  // Another allow-list (or CA bundle: a root rotated out): the peer shows its certificate again.
  reconnect("spiffe://test/ns/");
  EXPECT_EQ(Stat("listener.test.tls.session_reused"), 1u);
  EXPECT_EQ(Stat("listener.test.tls.handshake"), 3u);
}

TEST_F(SslSocketTest, ASessionWithoutACertificateDoesNotResumeWhereOneIsNowRequired) {
  RequireClientCertificates("spiffe://test/ns/ops/");
  server_proto_.mutable_require_client_certificate()->set_value(false);  // Asked, optional.
  Connect();                                                             // The client shows none.
  ASSERT_TRUE(server_.Has(ConnectionEvent::kConnected));
  ASSERT_NE(client_tls_->LastSession(), nullptr);
  server_proto_.mutable_require_client_certificate()->set_value(true);
  RebuildServer("test");
  ConnectAgain(client_tls_);
  EXPECT_FALSE(server_.Has(ConnectionEvent::kConnected));
  EXPECT_EQ(Stat("listener.test.tls.session_reused"), 0u);
  EXPECT_EQ(Stat("listener.test.tls.fail_no_certificate"), 1u);
}

TEST_F(SslSocketTest, ConfigErrorsNameTheField) {
  config::v1::DownstreamTlsContext proto;
  network::TransportSocketContext context{network::TransportSocketSide::kDownstream, nullptr,
                                          nullptr, "test"};
  EXPECT_EQ(TlsContext::CreateServer(proto, context, "tls", errors_), nullptr);
  EXPECT_NE(std::string(errors_.ToStatus().message())
                .find("tls.common_tls_context.tls_certificates: a listener's TLS context needs "
                      "a certificate"),
            std::string::npos)
      << errors_.ToStatus();
  config::ConfigErrors errors;
  proto.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs()->set_name("nope");
  proto.mutable_common_tls_context()->mutable_tls_params()->set_tls_minimum_protocol_version(
      config::v1::TlsParameters::TLSv1_1);
  EXPECT_EQ(TlsContext::CreateServer(proto, context, "tls", errors), nullptr);
  std::string message(errors.ToStatus().message());
  EXPECT_NE(message.find("tls_certificate_sds_secret_configs[0].name: unknown secret 'nope'"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("tls_minimum_protocol_version: Phoenix speaks TLS 1.2 and 1.3 only"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace phoenix::tls
