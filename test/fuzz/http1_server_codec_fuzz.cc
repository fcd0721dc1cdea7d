// Fuzzes phoenix::http::Http1ServerCodec the way the connection manager drives it: the bytes
// arrive in a few reads of random size, each request is answered (as a local reply at its
// headers, or once it is complete, inline or after Dispatch returns; empty, sized, chunked or
// with trailers) and pipelined requests resume with ResumeDispatch().
//
// Input: 4 option bytes (see Options), then the bytes the client sends.
//
// Invariants checked:
//  - callbacks come in order: begin, headers, data..., end of stream; nothing after a
//    protocol error; one request at a time (no new request before the previous one ended and
//    was answered), and none after a response that closes the connection;
//  - a request head is safe to forward: a method, a path that starts with '/' (or OPTIONS *),
//    no CR/LF/NUL in path or authority, lowercase token field names, values without control
//    characters or surrounding whitespace, no hop-by-hop, Host or Expect field;
//  - with a Content-Length, exactly that many body bytes arrive before the end of stream;
//  - protocol errors are 4xx; every response is complete once encoded;
//  - how the bytes are split into reads changes nothing the client can see: the requests,
//    bodies, trailers and rejection (if any; its 4xx may differ) are the same as when the input
//    arrives in one read.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "source/http/http1_codec.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

struct Options {
  explicit Options(const uint8_t* b)
      : small_limits(b[0] & 0x01),
        reply_at_headers(b[0] & 0x02),
        respond_inline(b[0] & 0x04),
        response_style((b[0] >> 3) & 0x03),
        status_choice((b[0] >> 5) & 0x03),
        drain(b[0] & 0x80),
        chunks(1 + b[1] % 8),
        split_seed(static_cast<uint32_t>(b[2]) << 8 | b[3]) {}
  static constexpr size_t kSize = 4;

  bool small_limits;
  bool reply_at_headers;  // Answer at the headers, before the body (like a filter's 403).
  bool respond_inline;    // Answer from within the codec callback, not after Dispatch.
  int response_style;     // 0: no body; 1: content-length; 2: chunked; 3: chunked + trailers.
  int status_choice;
  bool drain;  // Shutdown() before the second response, as a draining listener does.
  size_t chunks;
  uint32_t split_seed;
};

class Harness : public http::ServerConnectionCallbacks, public http::RequestDecoder {
 public:
  explicit Harness(const Options& options) : options_(options) {
    if (options.small_limits) {
      limits_.max_request_headers_bytes = 256;
      limits_.max_headers_count = 4;
      limits_.max_request_uri_bytes = 64;
    }
    codec_ = std::make_unique<http::Http1ServerCodec>(connection_, *this, limits_);
  }

  // Feeds `input` in `chunks` reads; returns what the client would see as the transcript.
  const std::string& Run(std::string_view input, size_t chunks) {
    for (std::string_view chunk : SplitIntoChunks(input, chunks, options_.split_seed)) {
      if (error_ || closing_ || known_bug_) break;
      codec_->Dispatch(chunk.data(), chunk.size());
      Pump();
    }
    Note("");
    return transcript_;
  }

  bool known_bug() const { return known_bug_; }

  // ServerConnectionCallbacks
  http::RequestDecoder& NewStream(http::ResponseEncoder&) override { return *this; }
  void OnRequestBegin() override {
    if (known_bug_) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(!Closed());  // Nothing is parsed after a response that closes the connection.
    FUZZ_CHECK(!in_request_);
    FUZZ_CHECK(requests_ == 0 || responded_);
    ++requests_;
    in_request_ = true;
    headers_seen_ = false;
    responded_ = false;
    has_length_ = false;
    body_bytes_ = 0;
  }

  void DecodeHeaders(http::RequestHeadersPtr headers, bool end_stream) override {
    FUZZ_CHECK(headers != nullptr);
    if (known_bug_ || (known_bug_ = HitsEmptyHeaderNameBug(headers->headers))) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(in_request_ && !headers_seen_);
    headers_seen_ = true;
    const http::RequestHeaders& h = *headers;
    FUZZ_CHECK(!h.method.empty());
    FUZZ_CHECK(h.protocol == http::Protocol::kHttp10 || h.protocol == http::Protocol::kHttp11);
    FUZZ_CHECK(h.path.starts_with("/") || (h.path == "*" && h.method == "OPTIONS"));
    FUZZ_CHECK(HasNoLineBreaks(h.path) && h.path.find(' ') == std::string::npos);
    FUZZ_CHECK(HasNoLineBreaks(h.authority));
    CheckForwardableHeaders(h.headers);
    FUZZ_CHECK(h.headers.Get("host") == nullptr);
    FUZZ_CHECK(h.headers.Get("expect") == nullptr);
    std::string note = h.method + " " + h.path + " " + h.authority + " " +
                       std::string(http::ProtocolName(h.protocol)) + (end_stream ? " end" : "");
    for (const auto& [name, value] : h.headers)
      note += "\n  " + std::string(name) + ": " + std::string(value);
    Note(note);
    has_length_ = SingleContentLength(h.headers, &content_length_);
    if (end_stream && has_length_) FUZZ_CHECK(content_length_ == 0);
    if (end_stream) EndRequest();
    if (options_.reply_at_headers || (end_stream && options_.respond_inline)) Respond();
  }

  void DecodeData(std::string_view data, bool end_stream) override {
    if (known_bug_) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(in_request_ && headers_seen_);
    body_bytes_ += data.size();
    if (!Closed()) body_.append(data);
    if (has_length_) FUZZ_CHECK(body_bytes_ <= content_length_);
    if (end_stream) {
      Note("end");
      EndRequest();
      if (options_.respond_inline) Respond();
    }
  }

  void DecodeTrailers(http::HeaderMap trailers) override {
    if (known_bug_ || (known_bug_ = HitsEmptyHeaderNameBug(trailers))) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(in_request_ && headers_seen_);
    FUZZ_CHECK(!trailers.empty());
    CheckForwardableHeaders(trailers);
    std::string note = "trailers";
    for (const auto& [name, value] : trailers)
      note += "\n  " + std::string(name) + ": " + std::string(value);
    Note(note);
    EndRequest();
    if (options_.respond_inline) Respond();
  }

  void OnProtocolError(int status, std::string_view details, bool answered) override {
    if (known_bug_) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(status >= 400 && status <= 499);
    FUZZ_CHECK(!details.empty());
    // Which 4xx may depend on where a read ends (a URI too long by the end of one read, or an
    // invalid byte seen first in one big read): only the rejection itself must not.
    Note("error");
    error_ = true;
  }

 private:
  // After a response that closes the connection the client sees nothing more, however far the
  // codec got into the bytes it already had.
  bool Closed() const { return closing_ || response_closed_; }

  // Appends an event (and the body bytes received before it) to the transcript.
  void Note(const std::string& event) {
    if (!body_.empty()) {
      transcript_ += "body " + body_ + "\n";
      body_.clear();
    }
    if (!event.empty() && !Closed()) transcript_ += event + "\n";
  }

  void EndRequest() {
    in_request_ = false;
    if (has_length_) FUZZ_CHECK(body_bytes_ == content_length_);
  }

  // Encodes the whole response to the current request.
  void Respond() {
    if (responded_ || codec_->response_started()) return;
    if (options_.drain && requests_ >= 2) codec_->Shutdown();
    static constexpr int kStatuses[] = {200, 204, 404, 503};
    http::ResponseHeaders response;
    response.status = kStatuses[options_.status_choice];
    switch (options_.response_style) {
      case 0:
        codec_->EncodeHeaders(response, true);
        break;
      case 1:
        response.headers.Add("content-length", "5");
        codec_->EncodeHeaders(response, false);
        codec_->EncodeData("hello", true);
        break;
      case 2:
        codec_->EncodeHeaders(response, false);
        codec_->EncodeData("hel", false);
        codec_->EncodeData("lo", true);
        break;
      default: {
        codec_->EncodeHeaders(response, false);
        codec_->EncodeData("hello", false);
        http::HeaderMap trailers;
        trailers.Add("x-checksum", "1");
        codec_->EncodeTrailers(trailers);
        break;
      }
    }
    FUZZ_CHECK(codec_->response_started() && codec_->response_complete());
    responded_ = true;
    response_closed_ = !codec_->keep_alive();
    // A response that keeps the connection open must not be answering an unfinished request.
    if (codec_->keep_alive()) FUZZ_CHECK(!in_request_);
  }

  // What the connection manager does between reads: answer a finished request, then close
  // the connection or parse the pipelined bytes held back.
  void Pump() {
    for (int guard = 0; guard < 100000; ++guard) {
      if (error_ || closing_ || known_bug_) return;
      if (requests_ > 0 && headers_seen_ && !in_request_ && !responded_) Respond();
      if (requests_ == 0 || !responded_) return;
      if (!codec_->keep_alive()) {
        closing_ = true;  // The manager closes the connection after this response.
        return;
      }
      int before = requests_;
      codec_->ResumeDispatch();
      if (requests_ == before && !error_) return;  // Nothing more was pipelined.
    }
    FUZZ_CHECK(false && "pipelining loop did not settle");
  }

  const Options& options_;
  http::CodecLimits limits_;
  FakeConnection connection_;
  std::unique_ptr<http::Http1ServerCodec> codec_;

  int requests_ = 0;
  bool in_request_ = false;  // Begun and not yet ended.
  bool headers_seen_ = false;
  bool responded_ = false;
  bool has_length_ = false;
  uint64_t content_length_ = 0;
  uint64_t body_bytes_ = 0;
  bool error_ = false;
  bool closing_ = false;
  bool response_closed_ = false;  // A response said "connection: close".
  bool known_bug_ = false;        // See SkipKnownBugs().
  std::string transcript_;
  std::string body_;  // Body bytes not yet in the transcript.
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
  const std::string& transcript = harness.Run(input, options.chunks);
  if (options.chunks == 1 || harness.known_bug()) return 0;
  // See SkipKnownBugs(). Known bug "obs-fold-in-pipelined-request": a folded header line in a
  // request parsed in the same read as the previous one (answered before it ended) is accepted.
  if (phoenix::fuzz::SkipKnownBugs() && (input.find("\n ") != std::string_view::npos ||
                                         input.find("\n\t") != std::string_view::npos)) {
    return 0;
  }
  // The same bytes in one read must mean the same requests.
  phoenix::fuzz::Harness whole(options);
  const std::string& expected = whole.Run(input, 1);
  if (whole.known_bug()) return 0;
  if (transcript != expected) {
    fprintf(stderr, "in %zu reads:\n%s\nin one read:\n%s\n", options.chunks, transcript.c_str(),
            expected.c_str());
  }
  FUZZ_CHECK(transcript == expected);
  return 0;
}
