#pragma once

#include <functional>
#include <string>

#include "source/network/transport_socket.h"
#include "source/tls/client_hello.h"

namespace phoenix::server {

// The transport socket of a new connection on a listener whose filter chains are chosen by
// SNI or ALPN (what Envoy's tls_inspector does). It reads the ClientHello without any TLS
// state, has its selector pick the chain, then hands the bytes read so far to that chain's
// transport socket and passes everything through to it from then on.
class ChainSelectingSocket : public network::TransportSocket {
 public:
  // Given what the ClientHello offers (null: the bytes are not TLS), wires the connection to
  // the chosen chain and returns that chain's transport socket; null when no chain serves it
  // (the connection then gets an unrecognized_name alert and closes).
  using Selector = std::function<network::TransportSocketPtr(const tls::ClientHello* hello)>;

  explicit ChainSelectingSocket(Selector selector) : selector_(std::move(selector)) {}

  void SetCallbacks(network::TransportSocketCallbacks* callbacks) override {
    callbacks_ = callbacks;
  }
  void OnConnected() override {}  // Only accepted connections have one.
  void OnSocketData(const char* data, size_t length) override;
  void Write(const std::string_view* slices, size_t count) override;
  void Flush() override;
  void OnCleanClose() override;
  void OnConnectTimeout() override;
  std::string_view ApplicationProtocol() const override;
  const network::TlsInfo* tls_info() const override;

 private:
  Selector selector_;
  network::TransportSocketCallbacks* callbacks_ = nullptr;
  std::string hello_bytes_;  // Read before the chain was chosen.
  network::TransportSocketPtr chosen_;
};

}  // namespace phoenix::server
