#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "source/http/header_map.h"
#include "source/http/protocol.h"
#include "source/network/connection.h"

namespace phoenix::http {

// The codec interfaces, in the shape of Envoy's envoy/http/codec.h. A connection carries
// streams (one at a time for HTTP/1, many for HTTP/2); each stream has an encoder for the
// bytes we send and a decoder for what the peer sends. The connection manager and the
// upstream pools see only these interfaces, never a protocol's own classes.

// Limits a server codec enforces on request heads.
struct CodecLimits {
  size_t max_request_headers_bytes = 60 * 1024;  // Past it: 431.
  size_t max_headers_count = 100;                // Past it: 431.
  size_t max_request_uri_bytes = 8 * 1024;       // Past it: 414.
};

// Why a stream ended before it completed.
enum class StreamResetReason {
  kConnectionTermination,  // The connection closed or failed under the stream.
  kProtocolError,          // The peer sent something malformed.
  kRemoteReset,            // The peer reset the stream (HTTP/2 RST_STREAM).
  // The peer refused the stream before processing it (HTTP/2 REFUSED_STREAM, or a stream
  // past a GOAWAY's last stream id): safe to send again.
  kRemoteRefusedStreamReset,
};

// What the user of one stream hears about it besides the decoded message.
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  virtual void OnResetStream(StreamResetReason reason) = 0;
  // The stream's outgoing buffer went above its high watermark / back under the low one.
  virtual void OnAboveWriteBufferHighWatermark() = 0;
  virtual void OnBelowWriteBufferLowWatermark() = 0;
};

// The controls both directions of one stream share.
class Stream {
 public:
  virtual ~Stream() = default;
  // At most one listener; null detaches.
  virtual void SetCallbacks(StreamCallbacks* callbacks) = 0;
  // Abandons the stream. HTTP/1 can only do that by giving up the connection after it; a
  // multiplexed protocol resets just this stream.
  virtual void ResetStream() = 0;
  // Stops or resumes reading the peer's data for this stream (back-pressure).
  virtual void ReadDisable(bool disable) = 0;
};

// Sends a response on a server stream.
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;
  virtual void EncodeHeaders(const ResponseHeaders& headers, bool end_stream) = 0;
  virtual void EncodeData(std::string_view data, bool end_stream) = 0;
  // Ends the response.
  virtual void EncodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& stream() = 0;
};

// Sends a request on a client stream.
class RequestEncoder {
 public:
  virtual ~RequestEncoder() = default;
  virtual void EncodeHeaders(const RequestHeaders& headers, bool end_stream) = 0;
  virtual void EncodeData(std::string_view data, bool end_stream) = 0;
  // Ends the request.
  virtual void EncodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& stream() = 0;
};

// Hears the request of a server stream (the connection manager implements it).
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;
  virtual void DecodeHeaders(RequestHeadersPtr headers, bool end_stream) = 0;
  virtual void DecodeData(std::string_view data, bool end_stream) = 0;
  // Ends the request.
  virtual void DecodeTrailers(HeaderMap trailers) = 0;
};

// Hears the response of a client stream (the router implements it).
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  virtual void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void DecodeData(std::string_view data, bool end_stream) = 0;
  // Ends the response.
  virtual void DecodeTrailers(HeaderMap trailers) = 0;
};

// What a server codec asks of the connection that owns it.
class ServerConnectionCallbacks {
 public:
  virtual ~ServerConnectionCallbacks() = default;
  // The first byte of a request arrived (starts the request-headers timeout).
  virtual void OnRequestBegin() = 0;
  // A request head is complete: a new stream. `encoder` is valid until the stream completes
  // or is reset; the returned decoder hears the rest of the request.
  virtual RequestDecoder& NewStream(ResponseEncoder& encoder) = 0;
  // The peer's bytes are malformed. The codec has already answered with `status` when no
  // response was under way (`answered`); the connection can only be closed now.
  virtual void OnProtocolError(int status, std::string_view details, bool answered) = 0;
  // One stream's request was refused and answered `status` by the codec itself (a malformed
  // or oversized HTTP/2 head) while the connection goes on; `head` is what was parsed of it.
  // For the access log: every request gets its line.
  virtual void OnStreamRefused(int status, const RequestHeaders& head) {}
};

// The server side of a downstream connection, for one protocol.
class ServerConnection {
 public:
  virtual ~ServerConnection() = default;
  virtual Protocol protocol() const = 0;
  // Bytes from the peer. Callbacks fire from inside.
  virtual void Dispatch(const char* data, size_t length) = 0;
  // Parses bytes held back while earlier responses were in progress (HTTP/1 pipelining).
  // Called from deferred work after a stream completes, never from inside a callback.
  virtual void ResumeDispatch() = 0;
  // No new streams after the current ones: HTTP/1 answers "connection: close", HTTP/2 sends
  // GOAWAY.
  virtual void Shutdown() = 0;
  // Whether the connection may carry more requests once the current streams are done.
  virtual bool keep_alive() const = 0;
  // No request is partly received or held back.
  virtual bool idle() const = 0;
  // Idle and holding no connection state (HTTP/1 between requests): the owner may free the
  // codec and create a new one at the next byte, so an idle connection costs little.
  virtual bool discardable() const = 0;
  // Answers the request in progress with a short `status` (e.g. 408 when its head is too
  // slow) unless a response is under way; the connection then takes no more requests.
  virtual void SendLocalError(int status) = 0;
  // The connection's write buffer went above its high watermark / back under the low one. A
  // multiplexed codec stops and resumes serializing frames, so what it would send waits in
  // its streams (whose watermarks then push back) instead of in the connection.
  virtual void OnUnderlyingConnectionAboveWriteBufferHighWatermark() {}
  virtual void OnUnderlyingConnectionBelowWriteBufferLowWatermark() {}
};

// What a client codec reports about the connection as a whole.
class ClientConnectionCallbacks {
 public:
  virtual ~ClientConnectionCallbacks() = default;
  // The response is malformed; the connection is unusable.
  virtual void OnProtocolError(std::string_view details) = 0;
};

// The client side of an upstream connection, for one protocol.
class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  virtual Protocol protocol() const = 0;
  // Starts a request whose response `decoder` hears.
  virtual RequestEncoder& NewStream(ResponseDecoder& decoder) = 0;
  virtual void Dispatch(const char* data, size_t length) = 0;
  // The peer closed. Completes a response delimited by the close; false if a response was
  // cut short.
  virtual bool OnConnectionClosed() = 0;
  // Whether the streams so far completed cleanly and the connection can take another.
  virtual bool reusable() const = 0;
  // Whether every stream's request has been sent in full.
  virtual bool requests_complete() const = 0;
};

// Makes the server codec a listener speaks. Part of the listener's config, shared by every
// worker. A factory of one protocol serves every connection; a detecting one (HTTP/1.1 and
// h2c side by side) picks the protocol from a connection's first bytes.
class ServerCodecFactory {
 public:
  virtual ~ServerCodecFactory() = default;
  // Whether the protocol depends on the connection's first bytes (see Detect()).
  virtual bool detects() const { return false; }
  // The factory for a connection whose first bytes (all of them so far) are `first_bytes`, or
  // null while they could still open either protocol. A factory of one protocol is its own.
  virtual const ServerCodecFactory* Detect(std::string_view first_bytes) const { return this; }
  virtual std::unique_ptr<ServerConnection> Create(network::Connection& connection,
                                                   ServerConnectionCallbacks& callbacks) const = 0;
};

}  // namespace phoenix::http
