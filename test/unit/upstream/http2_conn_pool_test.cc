#include "source/upstream/http2_conn_pool.h"

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/network/raw_buffer_socket.h"
#include "source/network/tcp_connection.h"
#include "test/unit/fakes/http2_test_server.h"
#include "test/unit/fakes/loopback_upstream.h"
#include "test/unit/fakes/pool_user.h"
#include "test/unit/fakes/test_cluster.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::upstream {
namespace {

using fakes::PoolUser;

using fakes::Http2TestServer;
using Failure = PoolCallbacks::Failure;
using ::testing::Optional;

// Stands for an HTTP/2 upstream: a real listening socket on 127.0.0.1 served by the test's
// own loop, each accepted connection an Http2TestServer fed the socket's bytes. Every request
// is answered with 200 "ok" once it ends, unless `hold` is set (the test answers through
// peer(i).server, then Flush()).
class LoopbackHttp2Upstream {
 public:
  struct Peer : public network::ConnectionCallbacks {
    Peer(LoopbackHttp2Upstream& upstream, uint32_t max_streams)
        : upstream(upstream), server(max_streams) {
      server.on_request_end = [this](int32_t id) {
        if (!this->upstream.hold) server.RespondOk(id);
      };
    }
    void OnData(const char* data, size_t length) override {
      if (!server.Receive(std::string_view(data, length))) refused = true;
      Flush();
    }
    // The pool closed the connection (or reset it).
    void OnEvent(network::ConnectionEvent) override {
      closed = true;
      connection->Close();
    }
    // Sends what the server has queued.
    void Flush() {
      if (connection->closed()) return;
      std::string out = server.Take();
      if (!out.empty()) static_cast<network::Connection&>(*connection).Write(out);
    }
    void WriteRaw(std::string_view bytes) {
      static_cast<network::Connection&>(*connection).Write(bytes);
    }

    LoopbackHttp2Upstream& upstream;
    Http2TestServer server;
    std::unique_ptr<network::TcpConnection> connection;
    bool closed = false;
    bool refused = false;  // The server's nghttp2 refused the pool's bytes.
  };

  explicit LoopbackHttp2Upstream(Dispatcher& dispatcher) : dispatcher_(dispatcher) {
    listener_ = new uv_tcp_t;
    uv_tcp_init(dispatcher.loop(), listener_);
    listener_->data = this;
    sockaddr_in address;
    uv_ip4_addr("127.0.0.1", 0, &address);
    EXPECT_EQ(uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&address), 0), 0);
    EXPECT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 64,
                        &LoopbackHttp2Upstream::OnConnection),
              0);
    sockaddr_storage bound;
    int length = sizeof(bound);
    uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  ~LoopbackHttp2Upstream() {
    listener_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); });
  }

  uint16_t port() const { return port_; }
  Peer& peer(size_t i) { return *peers_.at(i); }
  size_t accepted() const { return peers_.size(); }
  // Requests received on every connection so far.
  size_t requests() const {
    size_t n = 0;
    for (const auto& peer : peers_) n += peer->server.stream_ids.size();
    return n;
  }
  // Answers every request that has ended and has no answer yet (200 "ok").
  void AnswerHeld() {
    for (auto& peer : peers_) {
      for (int32_t id : peer->server.stream_ids) {
        const Http2TestServer::Request& request = peer->server.requests.at(id);
        if (request.ended && !request.closed && answered_.insert({peer.get(), id}).second) {
          peer->server.RespondOk(id);
        }
      }
      peer->Flush();
    }
  }
  // Closes every accepted connection at once (the server goes away).
  void CloseAll() {
    for (auto& peer : peers_) peer->connection->Close();
  }

  // SETTINGS_MAX_CONCURRENT_STREAMS of the connections accepted from now on (0: none).
  uint32_t max_concurrent_streams = 0;
  bool hold = false;

 private:
  static void OnConnection(uv_stream_t* listener, int status) {
    auto* self = static_cast<LoopbackHttp2Upstream*>(listener->data);
    if (self == nullptr || status != 0) return;
    uv_tcp_t* handle = network::TcpConnection::NewHandle(listener->loop);
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(handle)) != 0) {
      network::TcpConnection::CloseUnusedHandle(handle);
      return;
    }
    auto peer = std::make_unique<Peer>(*self, self->max_concurrent_streams);
    peer->connection = network::TcpConnection::FromAccepted(
        self->dispatcher_, handle, 1 << 20, std::make_unique<network::RawBufferSocket>());
    peer->connection->SetCallbacks(peer.get());
    peer->Flush();  // The server's SETTINGS, at once as a real server sends them.
    self->peers_.push_back(std::move(peer));
  }

  Dispatcher& dispatcher_;
  uv_tcp_t* listener_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::set<std::pair<Peer*, int32_t>> answered_;
};

class Http2ConnPoolTest : public ::testing::Test {
 protected:
  ~Http2ConnPoolTest() override {
    pool_.reset();
    dispatcher_.RunPending();
  }

  // A cluster "c" speaking HTTP/2 to one host, 127.0.0.1:`port` (default: the loopback
  // upstream), plus `extra` YAML fields; and its pool.
  void MakePool(const std::string& extra = "", uint16_t port = 0) {
    cluster_ = fakes::LoopbackCluster(stats_, absl::StrCat("protocol: HTTP2\n", extra),
                                      port != 0 ? port : upstream_.port());
    ASSERT_NE(cluster_, nullptr);
    ASSERT_TRUE(cluster_->http2());
    pool_ = std::make_unique<Http2ConnPool>(dispatcher_, cluster_, (*cluster_->hosts())[0]);
  }

  // `n` more pool users, each asking for a stream.
  void RequestMany(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      users_.push_back(std::make_unique<PoolUser>());
      users_.back()->Request(*pool_);
    }
  }
  PoolUser& User(size_t i) { return *users_.at(i); }

  bool RunUntilFinished(const PoolUser& user) {
    return dispatcher_.RunUntil([&] { return user.finished(); });
  }
  bool RunUntilAllFinished() {
    return dispatcher_.RunUntil([&] {
      for (const auto& user : users_) {
        if (!user->finished()) return false;
      }
      return true;
    });
  }
  bool RunUntilRequests(size_t n) {
    return dispatcher_.RunUntil([&] { return upstream_.requests() >= n; });
  }

  uint64_t CounterValue(const std::string& name) {
    return stats_.counter("cluster.c." + name).Value();
  }
  int64_t GaugeValue(const std::string& name) { return stats_.gauge("cluster.c." + name).Value(); }
  Host& host() { return *(*cluster_->hosts())[0]; }

  fakes::TestDispatcher dispatcher_;
  StatsStore stats_;
  LoopbackHttp2Upstream upstream_{dispatcher_};
  std::shared_ptr<const ClusterInfo> cluster_;
  std::vector<std::unique_ptr<PoolUser>> users_;
  std::unique_ptr<Http2ConnPool> pool_;
};

TEST_F(Http2ConnPoolTest, ManyStreamsShareOneConnection) {
  MakePool();
  RequestMany(5);
  EXPECT_FALSE(User(0).ready()) << "not before the connection is up";
  ASSERT_TRUE(RunUntilAllFinished());
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(User(i).status, 200) << i;
    EXPECT_EQ(User(i).body, "ok") << i;
  }
  EXPECT_EQ(upstream_.accepted(), 1u);
  EXPECT_EQ(upstream_.requests(), 5u);
  EXPECT_EQ(CounterValue("upstream_cx_total"), 1u);
  EXPECT_EQ(CounterValue("upstream_cx_reuse"), 4u);
  // The connection, idle now, serves the next request at once.
  RequestMany(1);
  EXPECT_TRUE(User(5).ready());
  ASSERT_TRUE(RunUntilFinished(User(5)));
  EXPECT_EQ(User(5).status, 200);
  EXPECT_EQ(upstream_.accepted(), 1u);
  EXPECT_EQ(host().cx_active, 1);
}

TEST_F(Http2ConnPoolTest, FullConnectionsOpenAnotherThenRequestsWaitForAStream) {
  MakePool(
      "http2_protocol_options: {max_concurrent_streams: 2}\n"
      "circuit_breakers: {max_connections: 2}");
  upstream_.hold = true;
  RequestMany(5);
  ASSERT_TRUE(RunUntilRequests(4));
  EXPECT_EQ(upstream_.accepted(), 2u);
  EXPECT_EQ(upstream_.peer(0).server.stream_ids.size(), 2u);
  EXPECT_EQ(upstream_.peer(1).server.stream_ids.size(), 2u);
  EXPECT_FALSE(User(4).ready()) << "both connections are full and no third is allowed";
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1023);
  // One stream ends: the waiting request takes its place.
  Http2TestServer& first = upstream_.peer(0).server;
  first.RespondOk(first.stream_ids[0]);
  upstream_.peer(0).Flush();
  ASSERT_TRUE(RunUntilRequests(5));
  EXPECT_TRUE(User(4).ready());
  EXPECT_EQ(upstream_.peer(0).server.stream_ids.size(), 3u);
  EXPECT_EQ(upstream_.accepted(), 2u);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
  upstream_.hold = false;
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilAllFinished());
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(User(i).status, 200) << i;
}

TEST_F(Http2ConnPoolTest, TheUpstreamsMaxConcurrentStreamsOpensAnotherConnection) {
  upstream_.max_concurrent_streams = 1;
  MakePool();
  RequestMany(1);
  ASSERT_TRUE(RunUntilFinished(User(0)));  // By now the pool knows the upstream's SETTINGS.
  upstream_.hold = true;
  RequestMany(2);
  EXPECT_TRUE(User(1).ready()) << "the idle connection has room for one";
  EXPECT_FALSE(User(2).ready()) << "but not for two";
  ASSERT_TRUE(RunUntilRequests(3));
  EXPECT_EQ(upstream_.accepted(), 2u);
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilAllFinished());
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(User(2).status, 200);
}

TEST_F(Http2ConnPoolTest, OverflowPastMaxPendingRequests) {
  MakePool(
      "http2_protocol_options: {max_concurrent_streams: 1}\n"
      "circuit_breakers: {max_connections: 1, max_pending_requests: 1}");
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  RequestMany(2);
  EXPECT_FALSE(User(1).finished()) << "waits for the only stream";
  EXPECT_THAT(User(2).failure, Optional(Failure::kOverflow));
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 0);
  upstream_.hold = false;
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilFinished(User(1)));
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 1u);
}

TEST_F(Http2ConnPoolTest, CancelledPendingRequestGivesBackItsSlotAndIsNeverServed) {
  MakePool(
      "http2_protocol_options: {max_concurrent_streams: 1}\n"
      "circuit_breakers: {max_connections: 1}");
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  RequestMany(1);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1023);
  pool_->Cancel(User(1));
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
  upstream_.hold = false;
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilFinished(User(0)));
  // The next request gets the stream; the cancelled one never does.
  RequestMany(1);
  ASSERT_TRUE(RunUntilFinished(User(2)));
  EXPECT_EQ(User(2).status, 200);
  EXPECT_FALSE(User(1).ready());
  EXPECT_FALSE(User(1).failure.has_value());
  EXPECT_EQ(upstream_.requests(), 2u);
}

TEST_F(Http2ConnPoolTest, ConnectFailureFailsTheWaitingRequests) {
  MakePool("", fakes::UnusedLoopbackPort());
  RequestMany(3);
  ASSERT_TRUE(RunUntilAllFinished());
  for (size_t i = 0; i < 3; ++i) EXPECT_THAT(User(i).failure, Optional(Failure::kConnectFailed));
  EXPECT_EQ(CounterValue("upstream_cx_connect_fail"), 1u);
  EXPECT_EQ(host().cx_connect_fail, 1u);
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
}

TEST_F(Http2ConnPoolTest, GoAwayDrainsTheConnection) {
  MakePool();
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  // GOAWAY, then the head of the response in progress (the stream was processed).
  Http2TestServer& old_server = upstream_.peer(0).server;
  int32_t id = old_server.stream_ids[0];
  old_server.GoAway(id);
  old_server.Respond(id, 200);
  upstream_.peer(0).Flush();
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return User(0).status == 200; }));
  // New streams go to a new connection.
  upstream_.hold = false;
  RequestMany(1);
  EXPECT_FALSE(User(1).ready()) << "not on the draining connection";
  ASSERT_TRUE(RunUntilFinished(User(1)));
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 2u);
  EXPECT_FALSE(upstream_.peer(0).closed) << "its stream is still going";
  // The old connection closes once its last stream ends.
  old_server.SendData(id, "done", true);
  upstream_.peer(0).Flush();
  ASSERT_TRUE(RunUntilFinished(User(0)));
  EXPECT_EQ(User(0).body, "done");
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return upstream_.peer(0).closed; }));
  EXPECT_FALSE(upstream_.peer(1).closed);
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 1u);
  EXPECT_EQ(host().cx_active, 1);
}

TEST_F(Http2ConnPoolTest, GoAwayRefusesTheStreamsItDidNotProcess) {
  MakePool();
  upstream_.hold = true;
  RequestMany(2);
  ASSERT_TRUE(RunUntilRequests(2));
  Http2TestServer& server = upstream_.peer(0).server;
  server.GoAway(server.stream_ids[0]);
  upstream_.peer(0).Flush();
  ASSERT_TRUE(RunUntilFinished(User(1)));
  EXPECT_EQ(User(1).reset, http::StreamResetReason::kRemoteRefusedStreamReset);
  EXPECT_FALSE(User(0).finished());
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilFinished(User(0)));
  EXPECT_EQ(User(0).status, 200);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return upstream_.peer(0).closed; }));
}

// With max_connections 1, requests waiting for room on a connection that the upstream then
// drains can only go on a new one, once the old one has closed.
TEST_F(Http2ConnPoolTest, RequestsWaitingOnADrainedConnectionGetANewOne) {
  MakePool(
      "http2_protocol_options: {max_concurrent_streams: 1}\n"
      "circuit_breakers: {max_connections: 1}");
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  RequestMany(1);
  EXPECT_FALSE(User(1).ready());
  upstream_.hold = false;
  Http2TestServer& server = upstream_.peer(0).server;
  server.GoAway(server.stream_ids[0]);
  server.RespondOk(server.stream_ids[0]);
  upstream_.peer(0).Flush();
  ASSERT_TRUE(RunUntilFinished(User(0)));
  ASSERT_TRUE(RunUntilFinished(User(1))) << "the waiting request was never served";
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 2u);
}

TEST_F(Http2ConnPoolTest, IdleConnectionClosesAfterTheIdleTimeout) {
  MakePool("idle_timeout: 0.001s");
  RequestMany(1);
  ASSERT_TRUE(RunUntilFinished(User(0)));
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return host().cx_active == 0; }));
  EXPECT_EQ(CounterValue("upstream_cx_destroy"), 1u);
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return upstream_.peer(0).closed; }));
  RequestMany(1);
  EXPECT_FALSE(User(1).ready());
  ASSERT_TRUE(RunUntilFinished(User(1)));
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 2u);
}

TEST_F(Http2ConnPoolTest, ConnectionWithStreamsIsNotClosedByTheIdleTimeout) {
  MakePool("idle_timeout: 0.001s");
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  // The loop runs until a timer well past the idle timeout has fired.
  bool past = false;
  std::unique_ptr<Timer> timer = dispatcher_.CreateTimer([&] { past = true; });
  timer->Enable(std::chrono::milliseconds(20));
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return past; }));
  EXPECT_FALSE(upstream_.peer(0).closed);
  EXPECT_FALSE(User(0).finished());
  // The same connection takes another stream, and both complete.
  RequestMany(1);
  EXPECT_TRUE(User(1).ready());
  ASSERT_TRUE(RunUntilRequests(2));
  upstream_.AnswerHeld();
  ASSERT_TRUE(RunUntilAllFinished());
  EXPECT_EQ(User(0).status, 200);
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 1u);
}

TEST_F(Http2ConnPoolTest, UpstreamCloseResetsTheStreams) {
  MakePool();
  upstream_.hold = true;
  RequestMany(2);
  ASSERT_TRUE(RunUntilRequests(2));
  upstream_.CloseAll();
  ASSERT_TRUE(RunUntilAllFinished());
  EXPECT_EQ(User(0).reset, http::StreamResetReason::kConnectionTermination);
  EXPECT_EQ(User(1).reset, http::StreamResetReason::kConnectionTermination);
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
  EXPECT_EQ(host().cx_active, 0);
  // The next request gets a new connection.
  upstream_.hold = false;
  RequestMany(1);
  ASSERT_TRUE(RunUntilFinished(User(2)));
  EXPECT_EQ(User(2).status, 200);
  EXPECT_EQ(upstream_.accepted(), 2u);
}

TEST_F(Http2ConnPoolTest, GarbageFromTheUpstreamClosesTheConnectionAndResetsItsStreams) {
  MakePool();
  upstream_.hold = true;
  RequestMany(2);
  ASSERT_TRUE(RunUntilRequests(2));
  upstream_.peer(0).WriteRaw(std::string("\xff\xff\xff\x04\x00\x00\x00\x00\x01", 9));
  ASSERT_TRUE(RunUntilAllFinished());
  EXPECT_EQ(User(0).reset, http::StreamResetReason::kConnectionTermination);
  EXPECT_EQ(User(1).reset, http::StreamResetReason::kConnectionTermination);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return upstream_.peer(0).closed; }));
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
}

TEST_F(Http2ConnPoolTest, StreamResetByItsUserFreesItsPlace) {
  MakePool(
      "http2_protocol_options: {max_concurrent_streams: 1}\n"
      "circuit_breakers: {max_connections: 1}");
  upstream_.hold = true;
  RequestMany(1);
  ASSERT_TRUE(RunUntilRequests(1));
  RequestMany(1);
  EXPECT_FALSE(User(1).ready());
  User(0).encoder->stream().ResetStream();
  EXPECT_FALSE(User(0).reset.has_value()) << "the user's own reset is not reported back";
  upstream_.hold = false;
  ASSERT_TRUE(RunUntilFinished(User(1)));
  EXPECT_EQ(User(1).status, 200);
  EXPECT_EQ(upstream_.accepted(), 1u) << "the connection goes on after a stream reset";
  const Http2TestServer::Request& cancelled =
      upstream_.peer(0).server.requests.at(upstream_.peer(0).server.stream_ids[0]);
  EXPECT_EQ(cancelled.reset_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
}

}  // namespace
}  // namespace phoenix::upstream
