#pragma once

#include <memory>
#include <string>

#include "source/network/transport_socket.h"
#include "source/tls/context.h"

namespace phoenix::tls {

// TLS over a connection's bytes: an OpenSSL SSL object whose BIO reads the bytes the
// connection hands in and writes straight to the connection, so that no ciphertext is copied
// into a buffer of its own. Server or client side, by its context. Renegotiation is refused;
// a clean close sends close_notify.
class SslSocket : public network::TransportSocket {
 public:
  static constexpr char kName[] = "phoenix.transport_sockets.tls";

  explicit SslSocket(std::shared_ptr<const TlsContext> context);
  ~SslSocket() override;

  void SetCallbacks(network::TransportSocketCallbacks* callbacks) override;
  void OnConnected() override;
  void OnSocketData(const char* data, size_t length) override;
  void Write(const std::string_view* slices, size_t count) override;
  void Flush() override;
  void OnCleanClose() override;
  void OnConnectTimeout() override;
  std::string_view ApplicationProtocol() const override;
  const network::TlsInfo* tls_info() const override { return handshake_done_ ? &info_ : nullptr; }

 private:
  friend struct SslSocketBio;

  // Runs the handshake on what has arrived; true once it is done and this socket still
  // stands. `destroyed` turns true if a callback destroyed this socket: nothing of it may be
  // touched then.
  bool Handshake(const bool& destroyed);
  void OnHandshakeDone();
  void ReadPlaintext(const bool& destroyed);
  void Fail(const char* where);
  void WritePlaintext(const char* data, size_t length);

  std::shared_ptr<const TlsContext> context_;
  network::TransportSocketCallbacks* callbacks_ = nullptr;
  SslPtr ssl_;
  // Socket bytes not yet consumed by OpenSSL, during OnSocketData.
  const char* input_ = nullptr;
  size_t input_length_ = 0;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool wrote_to_socket_ = false;
  // Written and not sealed yet: this iteration's, or all of it before the handshake is done.
  std::string outgoing_;
  network::TlsInfo info_;     // Filled when the handshake is done.
  std::string refused_peer_;  // Who verification refused, for the log.
  // Set while a callback may destroy this socket; the destructor sets *destroyed_.
  bool* destroyed_ = nullptr;
};

// Makes the SslSockets of one listener filter chain or one cluster, all from one context.
class SslSocketFactory : public network::TransportSocketFactory {
 public:
  explicit SslSocketFactory(std::shared_ptr<const TlsContext> context)
      : context_(std::move(context)) {}
  network::TransportSocketPtr Create() const override {
    return std::make_unique<SslSocket>(context_);
  }
  bool ImplementsSecureTransport() const override { return true; }
  std::string Fingerprint() const override { return context_->fingerprint(); }
  std::chrono::milliseconds HandshakeTimeout() const override {
    return context_->handshake_timeout();
  }
  const TlsContext& context() const { return *context_; }

 private:
  std::shared_ptr<const TlsContext> context_;
};

// Registers SslSocket::kName with network::TransportSocketRegistry: typed_config is a
// DownstreamTlsContext on a listener, an UpstreamTlsContext on a cluster.
void RegisterTlsTransportSocket();

}  // namespace phoenix::tls
