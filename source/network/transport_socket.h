#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "source/network/connection.h"

namespace phoenix::network {

// What a transport socket may ask of the connection that owns it.
class TransportSocketCallbacks {
 public:
  virtual ~TransportSocketCallbacks() = default;
  // Plaintext for the connection's reader. Valid only during the call.
  virtual void OnPlaintext(const char* data, size_t length) = 0;
  // Bytes for the socket (ciphertext, handshake records), in order. May be called at any
  // time, e.g. while handling socket data.
  virtual void WriteToSocket(const std::string_view* slices, size_t count) = 0;
  // Tells the connection's owner: kConnected once the transport is ready to carry data (raw:
  // when TCP connects; TLS: when the handshake is done); kConnectFailed or kRemoteClose when
  // it failed, which closes the connection.
  virtual void RaiseEvent(ConnectionEvent event) = 0;
  // "1.2.3.4:5678", for log lines.
  virtual const std::string& peer_address() const = 0;
};

// Sits between a connection's socket and its user. The connection hands it the bytes read
// from the socket and the plaintext to send; it yields plaintext to read (OnPlaintext) and
// bytes to send (WriteToSocket). Raw TCP passes bytes through; TLS, with its SSL object on
// memory BIOs, will decrypt and encrypt. One per connection.
class TransportSocket {
 public:
  virtual ~TransportSocket() = default;

  // Called once, before any other call.
  virtual void SetCallbacks(TransportSocketCallbacks* callbacks) = 0;
  // An outbound TCP connect finished: start the handshake, if any, and raise kConnected once
  // ready. (On accepted connections the client speaks first: the handshake starts with
  // OnSocketData.)
  virtual void OnConnected() = 0;
  // Bytes read from the socket. Valid only during the call.
  virtual void OnSocketData(const char* data, size_t length) = 0;
  // Plaintext to send, in order. A transport may hold it until Flush().
  virtual void Write(const std::string_view* slices, size_t count) = 0;
  // The connection is about to hand its pending bytes to the socket (once per loop iteration
  // that wrote): whatever Write() held goes to WriteToSocket now. TLS seals a response head
  // and its body, written separately, into one record this way.
  virtual void Flush() {}
  // The connection closes once its pending writes are out: last words (TLS: close_notify)
  // go through WriteToSocket now. Not called when a connection is closed abruptly.
  virtual void OnCleanClose() = 0;
  // The connect, or on an accepted connection the handshake, did not finish in time; the
  // connection closes right after (TLS counts it).
  virtual void OnConnectTimeout() {}
  // The protocol agreed by ALPN (e.g. "h2"); "" if none, as on raw TCP.
  virtual std::string_view ApplicationProtocol() const = 0;
  // What the handshake established (TLS: version, peer certificate); null if nothing.
  virtual const TlsInfo* tls_info() const { return nullptr; }
};

using TransportSocketPtr = std::unique_ptr<TransportSocket>;

// Makes the transport socket of each new connection for one listener filter chain or one
// cluster. Built once per config snapshot and shared by every worker: Create() is
// thread-safe.
class TransportSocketFactory {
 public:
  virtual ~TransportSocketFactory() = default;
  virtual TransportSocketPtr Create() const = 0;
  // Whether its sockets are secured (TLS). Only those can pick a filter chain by SNI or ALPN.
  virtual bool ImplementsSecureTransport() const = 0;
  // What it loaded beyond its config (TLS: a hash of its certificates, keys and CA bundles),
  // so that a reload with an unchanged config still notices a rotated certificate. Two
  // factories built from equal configs with equal fingerprints make identical sockets.
  virtual std::string Fingerprint() const { return {}; }
  // How long an accepted connection may take to be ready for data (TLS: its handshake);
  // zero: no limit.
  virtual std::chrono::milliseconds HandshakeTimeout() const { return {}; }
};

using TransportSocketFactoryPtr = std::shared_ptr<const TransportSocketFactory>;

}  // namespace phoenix::network
