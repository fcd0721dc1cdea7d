#pragma once

#include "source/network/transport_socket.h"

namespace phoenix::network {

// Plain TCP: bytes pass through untouched in both directions, without a copy. The transport
// of every connection that configures no other.
class RawBufferSocket : public TransportSocket {
 public:
  static constexpr char kName[] = "phoenix.transport_sockets.raw_buffer";

  void SetCallbacks(TransportSocketCallbacks* callbacks) override { callbacks_ = callbacks; }
  void OnConnected() override;
  void OnSocketData(const char* data, size_t length) override;
  void Write(const std::string_view* slices, size_t count) override;
  void OnCleanClose() override {}
  std::string_view ApplicationProtocol() const override { return {}; }

 private:
  TransportSocketCallbacks* callbacks_ = nullptr;
};

// Makes RawBufferSockets.
class RawBufferSocketFactory : public TransportSocketFactory {
 public:
  TransportSocketPtr Create() const override { return std::make_unique<RawBufferSocket>(); }
  bool ImplementsSecureTransport() const override { return false; }
};

// Registers RawBufferSocket::kName with TransportSocketRegistry.
void RegisterRawBufferSocket();

}  // namespace phoenix::network
