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
//    not always a reset's reason, nor how much body came before it); the one exception, a
//    frame on a stream we reset, which fails the connection in one read but is ignored once
//    our RST_STREAM went out between reads, is compared with the bytes cut just there;
//  - nothing leaks or touches freed memory (ASan), whatever the order of events.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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

  // Feeds the upstream's bytes in `reads`; returns what the router heard, as a transcript.
  std::string Run(const std::vector<std::string_view>& reads) {
    for (size_t i = 0; i < options_.streams; ++i) Start(static_cast<int>(i));
    if (!options_.body_after_first_read) SendBodies();
    bool first = true;
    for (std::string_view chunk : reads) {
      if (error_) break;
      codec_->Dispatch(chunk.data(), chunk.size());
      dispatched_ += chunk.size();
      ScanWritten();
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

  // The error code of the GOAWAY the codec (or nghttp2) wrote, if any.
  std::optional<uint32_t> goaway_code() const { return goaway_code_; }

  // The read boundaries (offsets into the upstream's bytes) that may change what `input`
  // means, given the RST_STREAMs this run wrote: each one after which the codec's first
  // RST_STREAM for a stream went out, where a HEADERS or DATA frame on that stream is judged
  // by nghttp2 only after it. nghttp2 keeps a stream it resets until its RST_STREAM is
  // written: a frame on it before then, on a stream already half-closed (remote), is a
  // connection error (STREAM_CLOSED: RFC 9113 5.1 makes it a stream error, nghttp2 a
  // connection error, as 5.4 allows); after then, the stream is closed and nghttp2 ignores
  // the frame (5.1: frames on a closed stream after our RST_STREAM MUST be ignored).
  std::vector<size_t> CutsAfterResets(std::string_view input) const {
    std::vector<size_t> cuts;
    for (const auto& [stream_id, out_at] : resets_out_at_) {
      size_t at = 0;
      while (at + 9 <= input.size()) {
        auto byte = [&](size_t i) { return static_cast<uint8_t>(input[at + i]); };
        const size_t length = byte(0) << 16 | byte(1) << 8 | byte(2);
        const uint8_t type = byte(3), flags = byte(4);
        const uint32_t id = (byte(5) & 0x7f) << 24 | byte(6) << 16 | byte(7) << 8 | byte(8);
        // Where nghttp2 checks the stream's state: after the frame header (DATA), after
        // the pad length and priority fields too (HEADERS).
        size_t judged = at + 9;
        if (type == 0x1) judged += (flags & 0x8 ? 1 : 0) + (flags & 0x20 ? 5 : 0);
        if ((type == 0x0 || type == 0x1) && id == static_cast<uint32_t>(stream_id) &&
            judged > out_at) {
          cuts.push_back(out_at);
          break;
        }
        at += 9 + length;
      }
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    return cuts;
  }

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

  // Notes the RST_STREAMs and GOAWAY the codec wrote since the last call (after the 24-byte
  // client preface, whole frames).
  void ScanWritten() {
    const std::string& out = connection_.written;
    if (scanned_ == 0) scanned_ = std::min<size_t>(24, out.size());
    while (scanned_ + 9 <= out.size()) {
      auto byte = [&](size_t i) { return static_cast<uint8_t>(out[scanned_ + i]); };
      const size_t length = byte(0) << 16 | byte(1) << 8 | byte(2);
      if (scanned_ + 9 + length > out.size()) break;
      const uint8_t type = byte(3);
      const int32_t id = (byte(5) & 0x7f) << 24 | byte(6) << 16 | byte(7) << 8 | byte(8);
      if (type == 0x3) resets_out_at_.emplace(id, dispatched_);  // Keeps the first.
      if (type == 0x7 && length >= 8) {
        goaway_code_ =
            static_cast<uint32_t>(byte(13)) << 24 | byte(14) << 16 | byte(15) << 8 | byte(16);
      }
      scanned_ += 9 + length;
    }
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
  size_t dispatched_ = 0;  // Upstream bytes fed so far.
  size_t scanned_ = 0;     // Of connection_.written, by ScanWritten().
  // Stream id -> upstream bytes fed when its first RST_STREAM went out.
  std::map<int32_t, size_t> resets_out_at_;
  std::optional<uint32_t> goaway_code_;
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
  const std::string transcript =
      harness.Run(phoenix::fuzz::SplitIntoChunks(input, options.chunks, options.split_seed));
  if (options.chunks == 1 || options.acts_between_reads()) return 0;
  // The same bytes in one read must mean the same to the router.
  phoenix::fuzz::Harness whole(options);
  std::string expected = whole.Run({input});
  if (transcript != expected && whole.goaway_code() == NGHTTP2_STREAM_CLOSED) {
    // Unless nghttp2 failed the connection, in one read, for a frame on a stream it still
    // held half-closed because its RST_STREAM had not gone out yet, while in these reads the
    // RST_STREAM went out between reads and the frame was ignored (CutsAfterResets). Then the
    // bytes cut where our RST_STREAMs went out, and only there, must mean the same.
    const std::vector<size_t> cuts = harness.CutsAfterResets(input);
    if (!cuts.empty()) {
      std::vector<std::string_view> reads;
      size_t start = 0;
      for (size_t cut : cuts) {
        reads.push_back(input.substr(start, cut - start));
        start = cut;
      }
      reads.push_back(input.substr(start));
      phoenix::fuzz::Harness cut(options);
      expected = cut.Run(reads);
    }
  }
  if (transcript != expected) {
    fprintf(stderr, "in %zu reads:\n", options.chunks);
    fwrite(transcript.data(), 1, transcript.size(), stderr);
    fprintf(stderr, "\nin one read (or cut only where RST_STREAMs went out):\n");
    fwrite(expected.data(), 1, expected.size(), stderr);
  }
  FUZZ_CHECK(transcript == expected);
  return 0;
}
