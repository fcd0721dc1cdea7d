#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/dispatcher.h"
#include "source/network/raw_buffer_socket.h"
#include "source/network/tcp_connection.h"

namespace phoenix::fakes {

// Stands for an upstream HTTP/1.1 server: a real listening socket on 127.0.0.1 (raw TCP),
// served by the test's own loop (no thread). Answers each request head it reads with `response`,
// unless `hold` is set (AnswerHeld() answers later), and closes after answering if
// `close_after_response`. Request bodies are not expected.
class LoopbackUpstream {
 public:
  explicit LoopbackUpstream(Dispatcher& dispatcher) : dispatcher_(dispatcher) {
    listener_ = new uv_tcp_t;
    uv_tcp_init(dispatcher.loop(), listener_);
    listener_->data = this;
    sockaddr_in address;
    uv_ip4_addr("127.0.0.1", 0, &address);
    EXPECT_EQ(uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&address), 0), 0);
    EXPECT_EQ(
        uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 64, &LoopbackUpstream::OnConnection),
        0);
    sockaddr_storage bound;
    int length = sizeof(bound);
    uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  ~LoopbackUpstream() {
    listener_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); });
  }

  uint16_t port() const { return port_; }

  // Answers every request held so far.
  void AnswerHeld() {
    for (auto& peer : peers_) {
      for (; peer->held > 0; --peer->held) Answer(*peer);
    }
  }

  // Closes every accepted connection at once (the server goes away).
  void CloseAll() {
    for (auto& peer : peers_) peer->connection->Close();
  }

  std::string response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
  bool hold = false;
  bool close_after_response = false;
  int accepted = 0;
  std::vector<std::string> request_heads;

 private:
  struct Peer : public network::ConnectionCallbacks {
    explicit Peer(LoopbackUpstream& server) : server(server) {}
    void OnData(const char* data, size_t length) override {
      buffer.append(data, length);
      for (size_t end; (end = buffer.find("\r\n\r\n")) != std::string::npos;) {
        server.request_heads.push_back(buffer.substr(0, end));
        buffer.erase(0, end + 4);
        if (server.hold) {
          ++held;
        } else {
          server.Answer(*this);
        }
      }
    }
    void OnEvent(network::ConnectionEvent) override { connection->Close(); }

    LoopbackUpstream& server;
    std::unique_ptr<network::TcpConnection> connection;
    std::string buffer;
    int held = 0;
  };

  static void OnConnection(uv_stream_t* listener, int status) {
    auto* self = static_cast<LoopbackUpstream*>(listener->data);
    if (self == nullptr || status != 0) return;
    uv_tcp_t* handle = network::TcpConnection::NewHandle(listener->loop);
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(handle)) != 0) {
      network::TcpConnection::CloseUnusedHandle(handle);
      return;
    }
    ++self->accepted;
    auto peer = std::make_unique<Peer>(*self);
    peer->connection = network::TcpConnection::FromAccepted(
        self->dispatcher_, handle, 1 << 20, std::make_unique<network::RawBufferSocket>());
    peer->connection->SetCallbacks(peer.get());
    self->peers_.push_back(std::move(peer));
  }

  void Answer(Peer& peer) {
    if (peer.connection->closed()) return;
    static_cast<network::Connection&>(*peer.connection).Write(response);
    if (close_after_response) peer.connection->CloseAfterFlush();
  }

  Dispatcher& dispatcher_;
  uv_tcp_t* listener_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Peer>> peers_;
};

// A 127.0.0.1 port nothing listens on (bound once by the kernel's choice, then released).
inline uint16_t UnusedLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace phoenix::fakes
