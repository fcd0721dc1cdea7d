#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace phoenix::network {

enum class ConnectionEvent {
  kConnected,       // Outbound connect finished.
  kRemoteClose,     // Peer closed or the socket failed.
  kConnectFailed,   // Outbound connect refused or failed.
  kConnectTimeout,  // Outbound connect (and transport handshake) not done in time.
};

// The certificate a TLS peer showed and that verification accepted.
struct PeerCertificate {
  std::string principal;  // Its first URI SAN, else its first DNS SAN, else its subject.
  std::string uri_san;
  std::string dns_san;
  std::string subject;
  std::string sha256;  // Hex digest of the DER certificate (XFCC's Hash).
};

// What a TLS transport established about its connection, once the handshake is done. Raw TCP
// has none. Small: every TLS connection keeps one.
struct TlsInfo {
  // Names the TLS library keeps for good (static strings): "TLSv1.3", "TLS_AES_128_GCM_SHA256".
  std::string_view version;
  std::string_view cipher;
  // This side's certificate URI SAN (XFCC's By), kept by the transport's config.
  std::string_view local_uri_san;
  bool session_reused = false;
  std::unique_ptr<PeerCertificate> peer;  // Null when the peer showed no certificate.
};

// What a connection reports to its owner (the HTTP connection manager, an upstream client).
class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  // Bytes read from the peer. Valid only during the call.
  virtual void OnData(const char* data, size_t length) = 0;
  virtual void OnEvent(ConnectionEvent event) = 0;
  // The write buffer went above the high watermark / back under the low one.
  virtual void OnAboveWriteBufferHighWatermark() {}
  virtual void OnBelowWriteBufferLowWatermark() {}
};

// Writes into a connection once per loop iteration, just before the connection flushes,
// instead of on every event that has something to say: an HTTP/2 session serializes the
// frames of all its streams' events of one iteration in one pass.
class DeferredWriter {
 public:
  virtual void WriteDeferred() = 0;

 protected:
  ~DeferredWriter() = default;
};

// A byte stream to a peer. The seam where a transport (raw TCP today, TLS next) plugs in:
// the HTTP layers only see this interface.
class Connection {
 public:
  virtual ~Connection() = default;

  virtual void SetCallbacks(ConnectionCallbacks* callbacks) = 0;
  // Writes the slices in order; copies whatever the socket does not take at once.
  virtual void Write(const std::string_view* slices, size_t count) = 0;
  void Write(std::string_view data) { Write(&data, 1); }
  // Has `writer` write before this connection next flushes (its pending writes go out at the
  // end of the loop iteration, and before a CloseAfterFlush), once. One writer at a time;
  // nullptr cancels (a writer that dies first must). Without a loop to defer to (a test's
  // connection) the writer writes at once.
  virtual void WriteSoon(DeferredWriter* writer) {
    if (writer != nullptr) writer->WriteDeferred();
  }
  // Stops or resumes reading from the peer (back-pressure).
  virtual void ReadDisable(bool disable) = 0;
  // Closes after the pending writes are flushed. No callback fires after this.
  virtual void CloseAfterFlush() = 0;
  // Closes at once, dropping pending writes. No callback fires after this.
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  virtual size_t BufferedBytes() const = 0;
  virtual const std::string& peer_address() const = 0;
  // Bytes sent to the peer so far.
  virtual uint64_t bytes_written() const = 0;
  // What TLS established (null on raw TCP, or before the handshake is done).
  virtual const TlsInfo* tls_info() const { return nullptr; }
  // The protocol agreed by ALPN during the TLS handshake ("h2", "http/1.1"); empty on raw
  // TCP, before the handshake is done, or when the peers agreed on none.
  virtual std::string_view application_protocol() const { return {}; }
};

}  // namespace phoenix::network
