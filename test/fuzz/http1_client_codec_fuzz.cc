// Fuzzes phoenix::http::Http1ClientCodec, the upstream side: it encodes a request (GET, HEAD,
// POST or PUT; with a sized or chunked body, trailers, sent before or after the response
// arrives), then Dispatches the fuzz input as the response in a few reads of random size,
// optionally Reset()s for a second exchange on a reusable connection, and ends with
// OnConnectionClosed().
//
// Input: 3 option bytes (see Options), then the bytes the upstream sends.
//
// Invariants checked:
//  - callbacks come in order: headers (once; 1xx are swallowed), data..., end of stream, with
//    nothing after the end or after a protocol error;
//  - the status is a final one (200-999) and the headers are safe to forward (lowercase token
//    names, no control characters, no hop-by-hop field);
//  - a response to HEAD, and a 204 or 304, ends at its headers;
//  - with a Content-Length, exactly that many body bytes arrive (unless the response ends at
//    its headers);
//  - response_complete() matches the end of stream the callbacks saw; OnConnectionClosed()
//    reports success exactly when the response ended or failed as a protocol error; the
//    connection is never reusable after it closed, nor after an error;
//  - how the bytes are split into reads changes nothing the router sees: the same headers,
//    body, trailers, error (if any) and outcome of the close as when they arrive in one read.
#include <cstdint>
#include <string>
#include <string_view>

#include "source/http/http1_codec.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

struct Options {
  explicit Options(const uint8_t* b)
      : method(b[0] & 0x03),
        request_body(b[0] & 0x04),
        chunked_body(b[0] & 0x08),
        request_trailers(b[0] & 0x10),
        second_exchange(b[0] & 0x20),
        body_after_response(b[0] & 0x40),
        chunks(1 + b[1] % 8),
        split_seed(b[2]) {}
  static constexpr size_t kSize = 3;

  int method;  // GET, HEAD, POST, PUT.
  bool request_body;
  bool chunked_body;         // No content-length: the codec frames the body as chunked.
  bool request_trailers;     // Ends a chunked body with trailers.
  bool second_exchange;      // Reset() and send another request once the connection is reusable.
  bool body_after_response;  // The request body is still being sent when the response arrives.
  size_t chunks;
  uint32_t split_seed;
};

class Harness : public http::ClientConnectionCallbacks, public http::ResponseDecoder {
 public:
  explicit Harness(const Options& options) : options_(options), codec_(connection_, *this) {}

  // Feeds `input` in `chunks` reads; returns what the router would see as the transcript.
  const std::string& Run(std::string_view input, size_t chunks) {
    SendRequestHead();
    if (!options_.body_after_response) SendRequestBody();
    bool second_sent = false;
    for (std::string_view chunk : SplitIntoChunks(input, chunks, options_.split_seed)) {
      if (known_bug_) return transcript_;
      if (options_.second_exchange && !second_sent && codec_.reusable()) {
        FUZZ_CHECK(exchange_.end_seen && !error_);
        second_sent = true;
        codec_.NewStream(*this);
        FUZZ_CHECK(!codec_.response_complete() && !codec_.reusable());
        exchange_ = Exchange();
        SendRequestHead();
        SendRequestBody();
      }
      codec_.Dispatch(chunk.data(), chunk.size());
      if (known_bug_ || (known_bug_ = HitsNoBodyStatusBug())) return transcript_;
      FUZZ_CHECK(codec_.response_complete() == exchange_.end_seen);
      if (error_) FUZZ_CHECK(!codec_.reusable());
    }
    if (options_.body_after_response) SendRequestBody();
    bool ok = codec_.OnConnectionClosed();
    FUZZ_CHECK(ok == (error_ || exchange_.end_seen));
    FUZZ_CHECK(codec_.response_complete() == exchange_.end_seen);
    FUZZ_CHECK(!codec_.reusable());
    Note(ok ? "closed" : "closed early");
    return transcript_;
  }

  bool known_bug() const { return known_bug_; }

  // ClientConnectionCallbacks, ResponseDecoder
  void DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) override {
    FUZZ_CHECK(headers != nullptr);
    if (known_bug_ || (known_bug_ = HitsEmptyHeaderNameBug(headers->headers) ||
                                    (SkipKnownBugs() && headers->status < 100))) {
      return;  // Known bug "status-below-100": "HTTP/1.1 2 OK" and "099" are passed on.
    }
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(!exchange_.headers_seen && !exchange_.end_seen);
    exchange_.headers_seen = true;
    int status = status_ = headers->status;
    FUZZ_CHECK(status >= 200 && status <= 999);
    CheckForwardableHeaders(headers->headers);
    if (head_request_ || status == 204 || status == 304) FUZZ_CHECK(end_stream);
    exchange_.has_length = SingleContentLength(headers->headers, &exchange_.content_length);
    std::string note = std::to_string(status) + (end_stream ? " end" : "");
    for (const auto& [name, value] : headers->headers)
      note += "\n  " + std::string(name) + ": " + std::string(value);
    Note(note);
    if (end_stream) {
      if (exchange_.has_length && !head_request_ && status != 204 && status != 304) {
        FUZZ_CHECK(exchange_.content_length == 0);
      }
      exchange_.end_seen = true;
    }
  }

  void DecodeData(std::string_view data, bool end_stream) override {
    if (known_bug_ || (known_bug_ = HitsNoBodyStatusBug() || HitsInterimBodyBug())) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(exchange_.headers_seen && !exchange_.end_seen);
    exchange_.body_bytes += data.size();
    body_.append(data);
    if (exchange_.has_length) FUZZ_CHECK(exchange_.body_bytes <= exchange_.content_length);
    if (end_stream) {
      Note("end");
      End();
    }
  }

  void DecodeTrailers(http::HeaderMap trailers) override {
    if (known_bug_ || (known_bug_ = HitsEmptyHeaderNameBug(trailers) || HitsNoBodyStatusBug() ||
                                    HitsInterimBodyBug())) {
      return;
    }
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(exchange_.headers_seen && !exchange_.end_seen);
    FUZZ_CHECK(!trailers.empty());
    CheckForwardableHeaders(trailers);
    std::string note = "trailers";
    for (const auto& [name, value] : trailers)
      note += "\n  " + std::string(name) + ": " + std::string(value);
    Note(note);
    End();
  }

  void OnProtocolError(std::string_view details) override {
    if (known_bug_ || (known_bug_ = HitsNoBodyStatusBug())) return;
    FUZZ_CHECK(!error_);
    FUZZ_CHECK(!exchange_.end_seen);
    FUZZ_CHECK(!details.empty());
    Note("error");  // Which error may depend on where a read ends; that there is one must not.
    error_ = true;
  }

 private:
  struct Exchange {
    bool headers_seen = false;
    bool end_seen = false;
    bool has_length = false;
    uint64_t content_length = 0;
    uint64_t body_bytes = 0;
  };

  // See SkipKnownBugs(). Known bug "no-body-status-with-length": for a 204 or 304 that has a
  // Content-Length (or is chunked) the codec reports the end of the response at its headers
  // while llhttp goes on to parse a body.
  bool HitsNoBodyStatusBug() {
    return SkipKnownBugs() && exchange_.end_seen && (status_ == 204 || status_ == 304) &&
           !codec_.response_complete();
  }

  // See SkipKnownBugs(). Known bug "interim-response-with-body": the body of a 1xx response
  // (with a Content-Length or a Transfer-Encoding) is passed on as response data before any
  // response headers.
  bool HitsInterimBodyBug() { return SkipKnownBugs() && !exchange_.headers_seen; }

  // Appends an event (and the body bytes received before it) to the transcript.
  void Note(const std::string& event) {
    if (!body_.empty()) {
      transcript_ += "body " + body_ + "\n";
      body_.clear();
    }
    transcript_ += event + "\n";
  }

  void End() {
    exchange_.end_seen = true;
    if (exchange_.has_length) FUZZ_CHECK(exchange_.body_bytes == exchange_.content_length);
  }

  void SendRequestHead() {
    static constexpr const char* kMethods[] = {"GET", "HEAD", "POST", "PUT"};
    http::RequestHeaders request;
    request.method = kMethods[options_.method];
    request.path = "/upload?x=1";
    request.authority = "upstream.example";
    request.headers.Add("x-request-id", "fuzz");
    body_pending_ = options_.request_body && requests_ == 0;  // The second request has none.
    if (body_pending_ && !options_.chunked_body) request.headers.Add("content-length", "5");
    head_request_ = request.method == "HEAD";
    if (requests_ == 0) codec_.NewStream(*this);
    ++requests_;
    codec_.EncodeHeaders(request, !body_pending_);
    FUZZ_CHECK(codec_.requests_complete() == !body_pending_);
  }

  void SendRequestBody() {
    if (!body_pending_) return;
    body_pending_ = false;
    codec_.EncodeData("abc", false);
    if (options_.chunked_body && options_.request_trailers) {
      codec_.EncodeData("de", false);
      http::HeaderMap trailers;
      trailers.Add("x-checksum", "1");
      codec_.EncodeTrailers(trailers);
    } else {
      codec_.EncodeData("de", true);
    }
    FUZZ_CHECK(codec_.requests_complete());
  }

  const Options& options_;
  FakeConnection connection_;
  http::Http1ClientCodec codec_;
  Exchange exchange_;
  int requests_ = 0;
  bool head_request_ = false;
  bool body_pending_ = false;
  bool error_ = false;
  int status_ = 0;
  bool known_bug_ = false;  // See SkipKnownBugs().
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
  // The same bytes in one read must mean the same response. (Not with a second exchange: it
  // starts between reads, and bytes after a complete response in the same read are dropped.)
  if (options.chunks == 1 || options.second_exchange || harness.known_bug()) return 0;
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
