#include "source/server/chain_selecting_socket.h"

#include <vector>

#include "gtest/gtest.h"
#include "source/network/raw_buffer_socket.h"
#include "test/unit/fakes/client_hello_bytes.h"

namespace phoenix::server {
namespace {

using network::ConnectionEvent;

// Records what the socket yields to its connection.
class Recorder : public network::TransportSocketCallbacks {
 public:
  void OnPlaintext(const char* data, size_t length) override { plaintext.append(data, length); }
  void WriteToSocket(const std::string_view* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) wire.append(slices[i]);
  }
  void RaiseEvent(ConnectionEvent event) override { events.push_back(event); }
  const std::string& peer_address() const override { return peer; }

  std::string peer = "192.0.2.9:1";
  std::string plaintext, wire;
  std::vector<ConnectionEvent> events;
};

class ChainSelectingSocketTest : public ::testing::Test {
 protected:
  ChainSelectingSocketTest()
      : socket_([this](const tls::ClientHello* hello) -> network::TransportSocketPtr {
          ++selections_;
          offered_ = hello != nullptr ? hello->server_name : "(not TLS)";
          if (!choose_) return nullptr;
          return std::make_unique<network::RawBufferSocket>();  // Shows the replayed bytes.
        }) {
    socket_.SetCallbacks(&recorder_);
  }

  void Feed(std::string_view bytes) { socket_.OnSocketData(bytes.data(), bytes.size()); }

  bool choose_ = true;
  int selections_ = 0;
  std::string offered_;
  Recorder recorder_;
  ChainSelectingSocket socket_;
};

TEST_F(ChainSelectingSocketTest, AHelloInPiecesChoosesOnceThenReplaysEverything) {
  std::string hello = tls::OpenSslClientHello({.server_name = "api.example.com"});
  Feed(std::string_view(hello).substr(0, 10));
  EXPECT_EQ(selections_, 0);
  Feed(std::string_view(hello).substr(10));
  EXPECT_EQ(selections_, 1);
  EXPECT_EQ(offered_, "api.example.com");
  EXPECT_EQ(recorder_.plaintext, hello);  // The chosen socket saw the bytes from the start.
  Feed("more");
  EXPECT_EQ(recorder_.plaintext, hello + "more");
  std::string_view out = "reply";
  socket_.Write(&out, 1);
  EXPECT_EQ(recorder_.wire, "reply");
  EXPECT_EQ(selections_, 1);
}

TEST_F(ChainSelectingSocketTest, BytesThatAreNotTlsAskForTheDefault) {
  Feed("GET / HTTP/1.1\r\n");
  EXPECT_EQ(offered_, "(not TLS)");
  EXPECT_EQ(recorder_.plaintext, "GET / HTTP/1.1\r\n");
}

TEST_F(ChainSelectingSocketTest, NoChainForTheNameIsAnAlertAndAClose) {
  choose_ = false;
  Feed(tls::OpenSslClientHello({.server_name = "unknown.test"}));
  ASSERT_EQ(recorder_.wire.size(), 7u);
  EXPECT_EQ(recorder_.wire[0], '\x15');
  EXPECT_EQ(recorder_.wire[6], '\x70');  // unrecognized_name
  EXPECT_EQ(recorder_.events, std::vector<ConnectionEvent>{ConnectionEvent::kRemoteClose});
}

}  // namespace
}  // namespace phoenix::server
