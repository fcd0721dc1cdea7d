// Fuzzes phoenix::http::Http2ServerCodec the way the connection manager drives it: after the
// client's connection preface (always sent, so the fuzzer spends its effort on frames), the
// bytes arrive in a few reads of random size; each stream is answered (at its headers, or
// once its request ended, inline or after Dispatch returns; empty, with a body, or with
// trailers), some streams are reset or read-disabled, and the connection may be shut down or
// pushed back on by its write buffer.
//
// Input: 4 option bytes (see Options), then the bytes the client sends after the preface.
//
// Invariants checked:
//  - each stream hears: headers, then data, then at most one end (by data or trailers), and
//    nothing after its end, its reset or the connection's protocol error;
//  - a request head is safe to forward to an HTTP/1 upstream: a method, a path that starts
//    with '/' (or OPTIONS *), no CR/LF/NUL in path or authority, lowercase token field names,
//    values without control characters or surrounding whitespace, no hop-by-hop or Host
//    field (but TE: trailers); with a Content-Length, exactly that many body bytes before the end;
//  - a protocol error is reported once, and the codec writes nothing after the owner closes;
//  - nothing leaks or touches freed memory (ASan), whatever the order of events.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "source/common/stats.h"
#include "source/http/http2_codec.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Options {
  explicit Options(const uint8_t* b)
      : small_limits(b[0] & 0x01),
        reply_at_headers(b[0] & 0x02),
        respond_inline(b[0] & 0x04),
        response_style((b[0] >> 3) & 0x03),
        reset_some(b[0] & 0x20),
        read_disable_some(b[0] & 0x40),
        shutdown(b[0] & 0x80),
        chunks(1 + b[1] % 8),
        watermark(b[1] & 0x80),
        split_seed(static_cast<uint32_t>(b[2]) << 8 | b[3]) {}
  static constexpr size_t kSize = 4;

  bool small_limits;
  bool reply_at_headers;   // Answer at the headers, before the body (like a filter's 403).
  bool respond_inline;     // Answer from within the codec callback, not after Dispatch.
  int response_style;      // 0: no body; 1: a body; 2: a body and trailers; 3: a large body.
  bool reset_some;         // Reset every third stream instead of answering it.
  bool read_disable_some;  // Hold every second stream's reads until it is answered.
  bool shutdown;           // Shutdown() (GOAWAY) after the first read.
  size_t chunks;
  bool watermark;  // The connection's buffer goes above its watermark after the first read.
  uint32_t split_seed;
};

// The connection manager's side of one stream.
class FuzzStream : public http::RequestDecoder, public http::StreamCallbacks {
 public:
  FuzzStream(http::ResponseEncoder& encoder, int index) : encoder(encoder), index(index) {
    encoder.stream().SetCallbacks(this);
  }

  void DecodeHeaders(http::RequestHeadersPtr headers, bool end_stream) override {
    FUZZ_CHECK(!done && !headers_seen);
    FUZZ_CHECK(headers != nullptr);
    headers_seen = true;
    const http::RequestHeaders& h = *headers;
    FUZZ_CHECK(!h.method.empty());
    FUZZ_CHECK(h.protocol == http::Protocol::kHttp2);
    FUZZ_CHECK(h.path.starts_with("/") || (h.path == "*" && h.method == "OPTIONS"));
    FUZZ_CHECK(HasNoLineBreaks(h.path) && HasNoLineBreaks(h.authority));
    FUZZ_CHECK(HasNoLineBreaks(h.method));
    // TE may only say "trailers" (kept for an HTTP/2 upstream); nothing else hop-by-hop.
    const std::string_view* te = h.headers.Get("te");
    FUZZ_CHECK(te == nullptr || *te == "trailers");
    http::HeaderMap without_te = h.headers;
    without_te.Remove("te");
    CheckForwardableHeaders(without_te);
    FUZZ_CHECK(h.headers.Get("host") == nullptr);
    has_length = SingleContentLength(h.headers, &content_length);
    if (end_stream) End();
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    FUZZ_CHECK(headers_seen && !done);
    body_bytes += data.size();
    if (has_length) FUZZ_CHECK(body_bytes <= content_length);
    if (end_stream) End();
  }
  void DecodeTrailers(http::HeaderMap trailers) override {
    FUZZ_CHECK(headers_seen && !done);
    CheckForwardableHeaders(trailers);
    End();
  }
  void OnResetStream(http::StreamResetReason) override {
    FUZZ_CHECK(!answered);
    reset = true;
    done = true;
  }
  void OnAboveWriteBufferHighWatermark() override {}
  void OnBelowWriteBufferLowWatermark() override {}

  void End() {
    done = true;
    ended = true;
    if (has_length) FUZZ_CHECK(body_bytes == content_length);
  }

  http::ResponseEncoder& encoder;
  const int index;
  bool headers_seen = false;
  bool done = false;   // Ended, or reset by the client.
  bool ended = false;  // The request ended.
  bool reset = false;
  bool answered = false;
  bool has_length = false;
  uint64_t content_length = 0;
  uint64_t body_bytes = 0;
};

class Harness : public http::ServerConnectionCallbacks {
 public:
  explicit Harness(const Options& options) : options_(options) {
    if (options.small_limits) {
      limits_.max_request_headers_bytes = 256;
      limits_.max_headers_count = 4;
      limits_.max_request_uri_bytes = 64;
      http2_.max_concurrent_streams = 3;
      http2_.initial_stream_window_size = 65535;
      http2_.premature_reset_min_streams = 4;
      http2_.stream_buffer_limit = 1024;
    }
    codec_ = std::make_unique<http::Http2ServerCodec>(connection_, *this, limits_, http2_, stats_);
  }

  void Run(std::string_view input, size_t chunks) {
    std::string bytes = std::string(kPreface) + std::string(input);
    bool first = true;
    for (std::string_view chunk : SplitIntoChunks(bytes, chunks, options_.split_seed)) {
      if (error_) break;
      codec_->Dispatch(chunk.data(), chunk.size());
      if (first && options_.shutdown) codec_->Shutdown();
      if (first && options_.watermark)
        codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
      first = false;
      Pump();
    }
    if (!error_ && options_.watermark) codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
    Pump();
    if (error_) FUZZ_CHECK(connection_.written.size() == written_at_error_);
  }

  // ServerConnectionCallbacks
  void OnRequestBegin() override { FUZZ_CHECK(!error_); }
  http::RequestDecoder& NewStream(http::ResponseEncoder& encoder) override {
    FUZZ_CHECK(!error_);
    streams_.push_back(std::make_unique<FuzzStream>(encoder, static_cast<int>(streams_.size())));
    FuzzStream& stream = *streams_.back();
    if (options_.read_disable_some && stream.index % 2 == 1) {
      encoder.stream().ReadDisable(true);
    }
    if (options_.reply_at_headers && options_.respond_inline) Respond(stream);
    return stream;
  }
  void OnProtocolError(int status, std::string_view details, bool) override {
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(!details.empty());
    error_ = true;
    // The owner closes the connection: nothing more may be written.
    connection_.Close();
    written_at_error_ = connection_.written.size();
  }

 private:
  void Respond(FuzzStream& stream) {
    if (stream.answered || stream.reset) return;
    stream.answered = true;
    if (options_.read_disable_some) stream.encoder.stream().ReadDisable(false);
    if (options_.reset_some && stream.index % 3 == 2) {
      stream.encoder.stream().ResetStream();
      return;
    }
    http::ResponseHeaders response;
    response.headers.Add("x-index", std::to_string(stream.index));
    switch (options_.response_style) {
      case 0:
        stream.encoder.EncodeHeaders(response, true);
        break;
      case 1:
        stream.encoder.EncodeHeaders(response, false);
        stream.encoder.EncodeData("hello", true);
        break;
      case 2: {
        stream.encoder.EncodeHeaders(response, false);
        stream.encoder.EncodeData("hello", false);
        http::HeaderMap trailers;
        trailers.Add("grpc-status", "0");
        stream.encoder.EncodeTrailers(trailers);
        break;
      }
      default:
        stream.encoder.EncodeHeaders(response, false);
        stream.encoder.EncodeData(std::string(100000, 'b'), true);
        break;
    }
  }

  // Between reads: answer what the options say should be answered by now.
  void Pump() {
    for (auto& stream : streams_) {
      if (error_) return;
      if (options_.reply_at_headers || stream->ended) Respond(*stream);
    }
  }

  const Options& options_;
  http::CodecLimits limits_;
  http::Http2Options http2_;
  StatsStore store_;
  http::Http2Stats stats_{store_, "fuzz"};
  FakeConnection connection_;
  std::vector<std::unique_ptr<FuzzStream>> streams_;
  bool error_ = false;
  size_t written_at_error_ = 0;
  // Last: destroyed first, while the streams it points at are alive.
  std::unique_ptr<http::Http2ServerCodec> codec_;
};

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using phoenix::fuzz::Options;
  if (size < Options::kSize) return 0;
  Options options(data);
  std::string_view input(reinterpret_cast<const char*>(data) + Options::kSize,
                         size - Options::kSize);
  phoenix::fuzz::Harness harness(options);
  harness.Run(input, options.chunks);
  return 0;
}
