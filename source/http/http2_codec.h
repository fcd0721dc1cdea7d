#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/stats.h"
#include "source/http/codec.h"
#include "source/http/http2_session.h"
#include "source/network/connection.h"

namespace phoenix::config {
class ConfigErrors;
namespace v1 {
class Http2ProtocolOptions;
}
}  // namespace phoenix::config

namespace phoenix::http {

// The streams an HTTP/2 codec owns. A stream knows its slot (`Stream::slot`), so removing
// one moves the last into its place: O(1), and no allocation per stream once the vector has
// grown (a std::list node per stream was a malloc and a free per request). Order is not kept.
template <typename Stream>
class OwnedStreams {
 public:
  Stream& Add(std::unique_ptr<Stream> stream) {
    stream->slot = streams_.size();
    streams_.push_back(std::move(stream));
    return *streams_.back();
  }
  // Hands `stream` over to the caller.
  std::unique_ptr<Stream> Remove(Stream& stream) {
    size_t slot = stream.slot;
    std::unique_ptr<Stream> owned = std::move(streams_[slot]);
    if (slot + 1 != streams_.size()) {
      streams_[slot] = std::move(streams_.back());
      streams_[slot]->slot = slot;
    }
    streams_.pop_back();
    return owned;
  }
  size_t size() const { return streams_.size(); }
  auto begin() const { return streams_.begin(); }
  auto end() const { return streams_.end(); }

 private:
  std::vector<std::unique_ptr<Stream>> streams_;
};

// HTTP/2 settings and abuse limits of a listener (HttpConnectionManager.http2_protocol_options).
// The defaults bound what one client can make the proxy hold: streams x stream window of
// request data, and a stream's buffered response is pushed back on at `stream_buffer_limit`.
struct Http2Options {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window_size = 256 * 1024;
  uint32_t initial_connection_window_size = 1024 * 1024;
  uint32_t hpack_table_size = 4096;  // The HPACK table the client may make us keep.
  // Frames with an empty payload and no END_STREAM in a row before the connection is
  // closed (Envoy's max_consecutive_inbound_frames_with_empty_payload).
  uint32_t max_consecutive_inbound_frames_with_empty_payload = 1;
  // PRIORITY frames allowed per stream opened (plus one stream's worth on a new connection).
  uint32_t max_inbound_priority_frames_per_stream = 100;
  // Rapid reset (CVE-2023-44487): once a connection has opened this many streams, it is
  // closed when the client has reset at least half of them before their response ended.
  uint32_t premature_reset_min_streams = 100;
  // A stream's response bytes waiting for the client's window before the stream pushes
  // back on its upstream (the listener's per-connection buffer limit).
  size_t stream_buffer_limit = 1024 * 1024;
  // The highest stream id a client codec opens: RFC 9113's 2^31 - 1 (tests set it lower). A
  // connection that has used its ids takes no more requests; the pool opens another.
  uint32_t last_stream_id = 0x7fffffff;
};

// The options of `proto` (at `path` for errors, with Envoy's bounds checked).
Http2Options Http2OptionsFromProto(const config::v1::Http2ProtocolOptions& proto,
                                   size_t buffer_limit, const std::string& path,
                                   config::ConfigErrors& errors);

// http.<stat_prefix>.http2.<stat>
#define PHX_HTTP2_STATS(COUNTER, GAUGE, HISTOGRAM)                                          \
  COUNTER(rx_reset, "Streams the client reset")                                             \
  COUNTER(tx_reset, "Streams the proxy reset")                                              \
  COUNTER(header_overflow, "Header blocks over the size or count limit")                    \
  COUNTER(rx_messaging_error, "Malformed requests, reset by the codec")                     \
  COUNTER(protocol_error, "Connections closed with GOAWAY PROTOCOL_ERROR")                  \
  COUNTER(goaway_sent, "GOAWAY frames sent")                                                \
  COUNTER(premature_reset_flood, "Connections closed for rapid reset")                      \
  COUNTER(inbound_empty_frames_flood, "Connections closed for empty frames in a row")       \
  COUNTER(inbound_priority_frames_flood, "Connections closed for too many PRIORITY frames") \
  COUNTER(outbound_flood, "Connections closed for not reading what they asked for")         \
  GAUGE(streams_active, "HTTP/2 streams now open")

// What HTTP/2 counts for one listener, shared by every worker.
struct Http2Stats {
  PHX_STATS(Http2Stats, PHX_HTTP2_STATS);
  // Registered as http.<prefix>.http2.<stat>.
  Http2Stats(StatsStore& store, const std::string& prefix);
};

// The server side of an HTTP/2 connection (h2 by ALPN, h2c with prior knowledge), over
// nghttp2. Every stream is the connection manager's: HEADERS open it, DATA and trailers
// follow, and its response is serialized as the client's flow-control windows allow.
// Request data is acknowledged (WINDOW_UPDATE) only as its stream is read, so a stream whose
// upstream stalls stops its client within one window; the connection's window is
// acknowledged at once, so one stalled stream never blocks the others.
class Http2ServerCodec : public ServerConnection, private Http2Session {
 public:
  Http2ServerCodec(network::Connection& connection, ServerConnectionCallbacks& callbacks,
                   const CodecLimits& limits, const Http2Options& options, Http2Stats& stats);
  ~Http2ServerCodec() override;

  // ServerConnection
  Protocol protocol() const override { return Protocol::kHttp2; }
  void Dispatch(const char* data, size_t length) override;
  void ResumeDispatch() override {}
  void Shutdown() override;
  bool keep_alive() const override { return !goaway_sent_ && !failed_; }
  bool idle() const override { return heads_in_progress_ == 0; }
  bool discardable() const override { return false; }
  void SendLocalError(int status) override;
  void OnUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void OnUnderlyingConnectionBelowWriteBufferLowWatermark() override;

 private:
  class ServerStream;
  template <typename>
  friend struct Http2Callbacks;  // The nghttp2 C callbacks.

  // nghttp2 callbacks; nonzero fails the connection.
  int OnBeginHeaders(const nghttp2_frame& frame);
  int OnHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int OnFrameReceived(const nghttp2_frame& frame);
  int OnDataChunk(int32_t stream_id, std::string_view data);
  int OnFrameSent(const nghttp2_frame& frame);
  int OnStreamClose(int32_t stream_id, uint32_t error_code);
  int OnInvalidFrame(const nghttp2_frame& frame, int lib_error);

  ServerStream* StreamFor(int32_t stream_id);
  // Http2Session
  void OnSendError(const char* details) override;
  // The session has nothing more to read or send (after a GOAWAY): the owner closes.
  void AfterSend() override;
  // A connection error: GOAWAY with `error_code`, no more streams, the owner closes.
  void Fail(uint32_t error_code, const char* details);

  ServerConnectionCallbacks& callbacks_;
  const CodecLimits& limits_;
  const Http2Options& options_;
  Http2Stats& stats_;
  OwnedStreams<ServerStream> streams_;
  // Streams nghttp2 has closed, kept until the next Dispatch: the connection manager may
  // still hold their encoders during the event that closed them.
  std::vector<std::unique_ptr<ServerStream>> closed_streams_;
  uint32_t heads_in_progress_ = 0;  // Streams whose request head is not complete yet.
  uint32_t streams_opened_ = 0;
  uint32_t premature_resets_ = 0;
  uint32_t consecutive_empty_frames_ = 0;
  uint32_t priority_frames_ = 0;
  const char* failure_ = nullptr;  // Why a callback failed the connection.
  uint32_t failure_code_ = NGHTTP2_PROTOCOL_ERROR;
  bool goaway_sent_ = false;
  bool failed_ = false;
};

// Serves a listener's connections with HTTP/2.
class Http2ServerCodecFactory : public ServerCodecFactory {
 public:
  Http2ServerCodecFactory(const CodecLimits& limits, const Http2Options& options, StatsStore& stats,
                          const std::string& stat_prefix)
      : limits_(limits), options_(options), stats_(stats, stat_prefix) {}
  std::unique_ptr<ServerConnection> Create(network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks) const override {
    return std::make_unique<Http2ServerCodec>(connection, callbacks, limits_, options_, stats_);
  }

 private:
  CodecLimits limits_;
  Http2Options options_;
  mutable Http2Stats stats_;
};

// What an HTTP/2 pool hears from a client connection besides its streams' messages.
class Http2ClientConnectionCallbacks : public ClientConnectionCallbacks {
 public:
  // A stream ended (both ways, or reset): it no longer counts against the peer's limit.
  virtual void OnStreamEnded() = 0;
  // The peer said GOAWAY: no new streams here; those it processed go on.
  virtual void OnGoAway() = 0;
};

// The client side of an HTTP/2 connection to an upstream, over nghttp2: many requests at
// once, each its own stream. A stream the upstream refused (REFUSED_STREAM, or past its
// GOAWAY) is reset with kRemoteRefusedStreamReset, so its request can go again elsewhere.
class Http2ClientCodec : public ClientConnection, private Http2Session {
 public:
  // `scheme` is the request's :scheme ("http", or "https" over TLS).
  Http2ClientCodec(network::Connection& connection, Http2ClientConnectionCallbacks& callbacks,
                   const Http2Options& options, std::string_view scheme);
  ~Http2ClientCodec() override;

  // ClientConnection
  Protocol protocol() const override { return Protocol::kHttp2; }
  RequestEncoder& NewStream(ResponseDecoder& decoder) override;
  void Dispatch(const char* data, size_t length) override;
  // Resets the streams still open (kConnectionTermination). Always false: HTTP/2 never
  // delimits a response by the close.
  bool OnConnectionClosed() override;
  // False once the server said GOAWAY, the connection failed, or its stream ids are used up.
  bool reusable() const override;
  bool requests_complete() const override;

  // Streams open now, and how many the peer (and our options) allow at once.
  uint32_t active_streams() const { return static_cast<uint32_t>(streams_.size()); }
  uint32_t max_concurrent_streams() const;
  void OnUnderlyingConnectionAboveWriteBufferHighWatermark() { BlockSending(true); }
  void OnUnderlyingConnectionBelowWriteBufferLowWatermark() { BlockSending(false); }

 private:
  class ClientStream;
  template <typename>
  friend struct Http2Callbacks;  // The nghttp2 C callbacks.

  int OnBeginHeaders(const nghttp2_frame& frame);
  int OnHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int OnFrameReceived(const nghttp2_frame& frame);
  int OnDataChunk(int32_t stream_id, std::string_view data);
  int OnFrameSent(const nghttp2_frame& frame);
  int OnStreamClose(int32_t stream_id, uint32_t error_code);
  int OnInvalidFrame(const nghttp2_frame& frame, int lib_error);
  // The stream has ended for good: it no longer counts (kept until the next Dispatch).
  void Forget(ClientStream& stream);
  ClientStream* StreamFor(int32_t stream_id);
  // Http2Session
  void OnSendError(const char* details) override;
  // nghttp2 ended the session itself (it sent GOAWAY for a connection error): fails it.
  void AfterSend() override;
  // The connection is unusable: every stream is reset, the owner closes.
  void Fail(const char* details);

  Http2ClientConnectionCallbacks& callbacks_;
  const Http2Options& options_;
  std::string scheme_;
  OwnedStreams<ClientStream> streams_;
  // Streams ended, kept until the next Dispatch or NewStream: their user may be inside a
  // call of theirs.
  std::vector<std::unique_ptr<ClientStream>> closed_streams_;
  // The error code of a GOAWAY nghttp2 sent on its own (a connection error it found in the
  // peer's bytes, which mem_recv does not report), until AfterSend fails the connection.
  std::optional<uint32_t> library_goaway_;
  bool goaway_ = false;
  bool failed_ = false;
};

// Serves HTTP/1.1 and HTTP/2 side by side (Envoy's codec_type AUTO): a connection that
// opens with the HTTP/2 preface gets HTTP/2, any other HTTP/1.1. Over TLS, a client that
// negotiated h2 by ALPN sends that preface too, so the bytes decide in both cases.
class DetectingServerCodecFactory : public ServerCodecFactory {
 public:
  DetectingServerCodecFactory(std::shared_ptr<const ServerCodecFactory> http1,
                              std::shared_ptr<const ServerCodecFactory> http2)
      : http1_(std::move(http1)), http2_(std::move(http2)) {}
  bool detects() const override { return true; }
  const ServerCodecFactory* Detect(std::string_view first_bytes) const override;
  std::unique_ptr<ServerConnection> Create(network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks) const override {
    return http1_->Create(connection, callbacks);
  }

 private:
  std::shared_ptr<const ServerCodecFactory> http1_;
  std::shared_ptr<const ServerCodecFactory> http2_;
};

}  // namespace phoenix::http
