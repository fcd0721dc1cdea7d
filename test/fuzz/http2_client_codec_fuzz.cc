// Fuzzes phoenix::http::Http2ClientCodec, the upstream side, the way the HTTP/2 pool and the
// router drive it: it opens a few streams (GET, or POST with a body, maybe trailers, sent
// before the response or after the first read), then Dispatches the fuzz input as the
// upstream's bytes in a few reads of random size; between reads some streams are reset by
// their user or read-disabled, and the connection may go above its write watermark. It may
// end with OnConnectionClosed().
//
// Input: 4 option bytes (see Options), then the bytes the upstream sends (its SETTINGS
// first; the codec's streams are 1, 3, 5 and 7).
//
// Invariants checked:
//  - each stream's decoder hears: headers once, then data, then at most one end (by data or
//    trailers); nothing after its end, its reset, its user's own reset, or a protocol error;
//    a reset never follows the end;
//  - a response head delivered has a final 3-digit status (200-999) and fields safe to
//    forward (CheckForwardableHeaders), as have trailers; with a Content-Length, exactly
//    that many body bytes before the end (none for 204 and 304);
//  - a protocol error is reported once, after every open stream was reset; the codec writes
//    nothing after the owner closed the connection; it is not reusable after an error, after
//    GOAWAY, or once closed; OnConnectionClosed() leaves no stream open;
//  - how the bytes are split into reads changes nothing the router sees (when nothing happens
//    between reads): stream by stream, the same heads, bodies, trailers, ends and resets (but
//    not always a reset's reason, nor how much body came before it);
//  - nothing leaks or touches freed memory (ASan), whatever the order of events.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/http/http2_codec.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

struct Options {
  explicit Options(const uint8_t* b)
      : streams(1 + (b[0] & 0x03)),
        bodies(b[0] & 0x04),
        trailers(b[0] & 0x08),
        reset_some(b[0] & 0x10),
        read_disable_some(b[0] & 0x20),
        body_after_first_read(b[0] & 0x40),
        small_windows(b[0] & 0x80),
        chunks(1 + b[1] % 8),
        watermark(b[1] & 0x40),
        close_at_end(b[1] & 0x80),
        split_seed(static_cast<uint32_t>(b[2]) << 8 | b[3]) {}
  static constexpr size_t kSize = 4;

  size_t streams;              // 1 to 4 requests.
  bool bodies;                 // Every second request is a POST with a body.
  bool trailers;               // ... which trailers end.
  bool reset_some;             // The user resets every third stream after the first read.
  bool read_disable_some;      // Every second stream is read-disabled until the last read.
  bool body_after_first_read;  // The bodies go after the first read (maybe after the answer).
  bool small_windows;          // Small stream window and buffer limit, few streams.
  size_t chunks;
  bool watermark;     // The connection is above its watermark from the first read on.
  bool close_at_end;  // The upstream closes after the last read.
  uint32_t split_seed;

  // Whether anything happens between reads (then the split may change what is heard).
  bool acts_between_reads() const {
    return reset_some || read_disable_some || body_after_first_read || watermark;
  }
};

class Harness;

// The router's side of one stream.
class FuzzStream : public http::ResponseDecoder, public http::StreamCallbacks {
 public:
  FuzzStream(Harness& harness, int index) : harness(harness), index(index) {}

  void DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) override;
  void DecodeData(std::string_view data, bool end_stream) override;
  void DecodeTrailers(http::HeaderMap trailers) override;
  void OnResetStream(http::StreamResetReason reason) override;
  void OnAboveWriteBufferHighWatermark() override { CheckAlive(); }
  void OnBelowWriteBufferLowWatermark() override { CheckAlive(); }

  // Done for the router: no encoder call, no callback after it.
  bool done() const { return ended || reset || user_reset; }
  // Appends an event (and the body bytes received before it) to this stream's transcript.
  void Note(const std::string& event) {
    if (!body.empty()) {
      transcript += "body " + body + "\n";
      body.clear();
    }
    if (!event.empty()) transcript += event + "\n";
  }
  void CheckAlive() const;
  void End();

  Harness& harness;
  const int index;
  http::RequestEncoder* encoder = nullptr;
  bool has_body = false;
  bool body_sent = false;
  bool headers_seen = false;
  bool ended = false;
  bool reset = false;
  bool user_reset = false;
  int status = 0;
  bool has_length = false;
  uint64_t content_length = 0;
  uint64_t body_bytes = 0;
  std::string transcript;
  std::string body;  // Body bytes not yet in the transcript.
};

class Harness : public http::Http2ClientConnectionCallbacks {
 public:
  explicit Harness(const Options& options) : options_(options) {
    if (options.small_windows) {
      http2_.max_concurrent_streams = 2;
      http2_.initial_stream_window_size = 65535;
      http2_.initial_connection_window_size = 65535;
      http2_.stream_buffer_limit = 16;
    }
    codec_ = std::make_unique<http::Http2ClientCodec>(connection_, *this, http2_, "http");
  }

  // Feeds `input` in `chunks` reads; returns what the router heard, as a transcript.
  std::string Run(std::string_view input, size_t chunks) {
    for (size_t i = 0; i < options_.streams; ++i) Start(static_cast<int>(i));
    if (!options_.body_after_first_read) SendBodies();
    bool first = true;
    for (std::string_view chunk : SplitIntoChunks(input, chunks, options_.split_seed)) {
      if (error_) break;
      codec_->Dispatch(chunk.data(), chunk.size());
      CheckCodec();
      if (first && !error_) BetweenReads();
      first = false;
    }
    if (!error_) {
      for (auto& stream : streams_) {
        if (options_.read_disable_some && !stream->done())
          stream->encoder->stream().ReadDisable(false);
      }
      if (options_.watermark) codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
      CheckCodec();
    }
    if (options_.close_at_end && !error_) {
      closing_ = true;
      FUZZ_CHECK(!codec_->OnConnectionClosed());
      FUZZ_CHECK(!codec_->reusable());
      for (auto& stream : streams_) FUZZ_CHECK(stream->done());
    }
    if (error_) FUZZ_CHECK(connection_.written.size() == written_at_error_);
    // What the router heard, stream by stream. Streams are independent: how their events
    // interleave may depend on the reads (a malformed response is reset once nghttp2's
    // RST_STREAM is out, at the end of a read). So may the pool's events (GOAWAY, an error):
    // once GOAWAY came and nghttp2 has closed the last stream, it reads nothing more, unless
    // those bytes came in the same read.
    std::string transcript;
    for (auto& stream : streams_) {
      stream->Note("");
      transcript += "stream " + std::to_string(stream->index) + ":\n" + stream->transcript;
    }
    return transcript;
  }

  // Http2ClientConnectionCallbacks
  void OnProtocolError(std::string_view details) override {
    FUZZ_CHECK(!error_ && !closing_);
    FUZZ_CHECK(!details.empty());
    // Every stream was reset before the connection's error is told.
    for (auto& stream : streams_) FUZZ_CHECK(stream->done());
    error_ = true;
    // The owner closes the connection: nothing more may be written.
    connection_.Close();
    written_at_error_ = connection_.written.size();
  }
  void OnStreamEnded() override {
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(++streams_ended_ <= streams_.size());
  }
  void OnGoAway() override {
    FUZZ_CHECK(!error_);
    goaway_ = true;
  }

  // For the streams.
  bool error() const { return error_; }

 private:
  void Start(int index) {
    streams_.push_back(std::make_unique<FuzzStream>(*this, index));
    FuzzStream& stream = *streams_.back();
    stream.encoder = &codec_->NewStream(stream);
    stream.encoder->stream().SetCallbacks(&stream);
    http::RequestHeaders request;
    stream.has_body = options_.bodies && index % 2 == 1;
    request.method = stream.has_body ? "POST" : "GET";
    request.path = "/fuzz/" + std::to_string(index);
    request.authority = "upstream.example";
    request.headers.Add("x-request-id", "fuzz");
    request.headers.Add("te", "trailers");
    if (stream.has_body && !options_.trailers) request.headers.Add("content-length", "10");
    stream.encoder->EncodeHeaders(request, !stream.has_body);
    if (options_.read_disable_some && index % 2 == 0 && !stream.done()) {
      stream.encoder->stream().ReadDisable(true);
    }
  }

  void SendBodies() {
    for (auto& stream : streams_) {
      if (!stream->has_body || stream->body_sent) continue;
      stream->body_sent = true;
      // The router stops sending once the stream is done (its encoder is gone).
      if (error_ || stream->done()) continue;
      stream->encoder->EncodeData("hello", false);
      if (error_ || stream->done()) continue;
      if (options_.trailers) {
        stream->encoder->EncodeData(std::string(100, 'x'), false);
        if (error_ || stream->done()) continue;
        http::HeaderMap trailers;
        trailers.Add("x-checksum", "1");
        stream->encoder->EncodeTrailers(trailers);
      } else {
        stream->encoder->EncodeData("world", true);
      }
    }
  }

  void BetweenReads() {
    if (options_.watermark) codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
    if (options_.reset_some) {
      for (auto& stream : streams_) {
        if (error_) return;
        if (stream->index % 3 != 2 || stream->done()) continue;
        stream->user_reset = true;
        stream->encoder->stream().ResetStream();
      }
    }
    if (options_.body_after_first_read) SendBodies();
    CheckCodec();
  }

  void CheckCodec() {
    if (error_) {
      FUZZ_CHECK(!codec_->reusable());
      return;
    }
    FUZZ_CHECK(codec_->active_streams() <= streams_.size());
    FUZZ_CHECK(codec_->max_concurrent_streams() <= http2_.max_concurrent_streams);
    if (goaway_) FUZZ_CHECK(!codec_->reusable());
  }

  const Options& options_;
  http::Http2Options http2_;
  FakeConnection connection_;
  std::vector<std::unique_ptr<FuzzStream>> streams_;
  size_t streams_ended_ = 0;
  bool error_ = false;
  bool goaway_ = false;
  bool closing_ = false;
  size_t written_at_error_ = 0;
  // Last: destroyed first, while the streams it points at are alive.
  std::unique_ptr<http::Http2ClientCodec> codec_;
};

void FuzzStream::CheckAlive() const {
  FUZZ_CHECK(!harness.error());
  FUZZ_CHECK(!user_reset);
}

void FuzzStream::DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) {
  CheckAlive();
  FUZZ_CHECK(headers != nullptr);
  FUZZ_CHECK(!headers_seen && !ended && !reset);
  headers_seen = true;
  status = headers->status;
  FUZZ_CHECK(status >= 200 && status <= 999);
  CheckForwardableHeaders(headers->headers);
  has_length = SingleContentLength(headers->headers, &content_length);
  std::string note = std::to_string(status) + (end_stream ? " end" : "");
  for (const auto& [name, value] : headers->headers) {
    note += "\n  " + std::string(name) + ": " + std::string(value);
  }
  Note(note);
  if (end_stream) End();
}

void FuzzStream::DecodeData(std::string_view data, bool end_stream) {
  CheckAlive();
  FUZZ_CHECK(headers_seen && !ended && !reset);
  body_bytes += data.size();
  if (has_length) FUZZ_CHECK(body_bytes <= content_length);
  FUZZ_CHECK(!((status == 204 || status == 304) && body_bytes > 0));
  body.append(data);
  if (end_stream) {
    Note("end");
    End();
  }
}

void FuzzStream::DecodeTrailers(http::HeaderMap trailers) {
  CheckAlive();
  FUZZ_CHECK(headers_seen && !ended && !reset);
  CheckForwardableHeaders(trailers);
  std::string note = "trailers";
  for (const auto& [name, value] : trailers) {
    note += "\n  " + std::string(name) + ": " + std::string(value);
  }
  Note(note);
  End();
}

void FuzzStream::OnResetStream(http::StreamResetReason reason) {
  CheckAlive();
  FUZZ_CHECK(!ended && !reset);
  reset = true;
  // How much of a body came before its reset depends on the reads (nghttp2 checks a DATA
  // frame against content-length piece by piece as it arrives), and so may the reason: a
  // stream nghttp2 finds malformed is reset (kProtocolError) once its RST_STREAM is out, after
  // the read, so an upstream reset or a connection error in the same read comes first.
  body.clear();
  Note("reset");
}

void FuzzStream::End() {
  ended = true;
  if (has_length && status != 204 && status != 304) FUZZ_CHECK(body_bytes == content_length);
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using phoenix::fuzz::Options;
  if (size < Options::kSize) return 0;
  Options options(data);
  std::string_view input(reinterpret_cast<const char*>(data) + Options::kSize,
                         size - Options::kSize);
  phoenix::fuzz::Harness harness(options);
  const std::string transcript = harness.Run(input, options.chunks);
  if (options.chunks == 1 || options.acts_between_reads()) return 0;
  // The same bytes in one read must mean the same to the router.
  phoenix::fuzz::Harness whole(options);
  const std::string expected = whole.Run(input, 1);
  if (transcript != expected) {
    fprintf(stderr, "in %zu reads:\n", options.chunks);
    fwrite(transcript.data(), 1, transcript.size(), stderr);
    fprintf(stderr, "\nin one read:\n");
    fwrite(expected.data(), 1, expected.size(), stderr);
  }
  FUZZ_CHECK(transcript == expected);
  return 0;
}
