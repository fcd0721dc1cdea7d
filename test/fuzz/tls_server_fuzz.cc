// Fuzzes the server side of phoenix::tls::SslSocket (source/tls/ssl_socket.h): whatever bytes a
// client sends, in whatever pieces, the socket must answer with TLS records (or, for plain
// HTTP, its one 400), close at most once, and never read or write past what it was given.
//
// Input: 1 byte: piece size (1..256, 0 meaning all at once), then the bytes the client sends.
// Seeds: genuine ClientHellos, plain HTTP, garbage.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/logging.h"
#include "source/tls/context.h"
#include "source/tls/ssl_socket.h"
#include "test/fuzz/fuzz_util.h"
#include "test/unit/fakes/test_certificates.h"

namespace phoenix::fuzz {
namespace {

// Records what the socket yields.
class Recorder : public network::TransportSocketCallbacks {
 public:
  void OnPlaintext(const char* data, size_t length) override { plaintext.append(data, length); }
  void WriteToSocket(const std::string_view* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) wire.append(slices[i]);
  }
  void RaiseEvent(network::ConnectionEvent event) override { events.push_back(event); }
  const std::string& peer_address() const override { return peer; }

  std::string peer = "192.0.2.1:1";
  std::string plaintext, wire;
  std::vector<network::ConnectionEvent> events;
};

std::shared_ptr<const tls::TlsContext> ServerContext() {
  static const auto context = [] {
    SetLogLevel(LogLevel::kOff);
    tls::TestCert ca = tls::MakeCert("Fuzz CA", "", nullptr);
    tls::TestCert server = tls::MakeCert("localhost", "DNS:localhost", &ca);
    config::v1::DownstreamTlsContext proto;
    *proto.mutable_common_tls_context()->add_tls_certificates() = tls::Inline(server);
    proto.mutable_common_tls_context()
        ->mutable_validation_context()
        ->mutable_trusted_ca()
        ->set_inline_string(ca.cert_pem);  // Optional client certificates: more code to reach.
    config::ConfigErrors errors;
    network::TransportSocketContext socket_context{network::TransportSocketSide::kDownstream,
                                                   nullptr, nullptr, "fuzz"};
    auto built = tls::TlsContext::CreateServer(proto, socket_context, "fuzz", errors);
    FUZZ_CHECK(built != nullptr);
    return built;
  }();
  return context;
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace phoenix;
  using namespace phoenix::fuzz;
  if (size < 1) return 0;
  size_t piece = data[0] == 0 ? size : data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Recorder recorder;
  tls::SslSocket socket(ServerContext());
  socket.SetCallbacks(&recorder);
  for (size_t offset = 0; offset < input.size(); offset += piece) {
    std::string chunk(input.substr(offset, piece));  // Its own allocation: ASan sees overreads.
    socket.OnSocketData(chunk.data(), chunk.size());
  }
  size_t closes = 0;
  for (auto event : recorder.events) closes += event == network::ConnectionEvent::kRemoteClose;
  FUZZ_CHECK(closes <= 1);
  // Without a finished handshake (the fuzzer cannot finish one) no plaintext comes out.
  FUZZ_CHECK(recorder.plaintext.empty());
  if (!recorder.wire.empty()) {
    char first = recorder.wire[0];
    bool tls_record = first >= 0x14 && first <= 0x17;
    FUZZ_CHECK(tls_record || recorder.wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  }
  return 0;
}
