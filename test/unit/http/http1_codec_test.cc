#include "source/http/http1_codec.h"

#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/unit/fakes/fake_connection.h"

namespace phoenix::http {
namespace {

using fakes::FakeConnection;

// The connection manager's side of the codec: records every stream's request.
class RecordingServerCallbacks : public ServerConnectionCallbacks, public RequestDecoder {
 public:
  void OnRequestBegin() override { ++begins; }
  RequestDecoder& NewStream(ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return *this;
  }
  void OnProtocolError(int status, std::string_view, bool answered) override {
    error_status = status;
    error_answered = answered;
  }
  void DecodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    requests.push_back(std::move(headers));
    header_end_stream.push_back(end_stream);
    if (answer_at_once) encoder_->EncodeHeaders(ResponseHeaders(), true);
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    if (end_stream) ++body_ends;
  }
  void DecodeTrailers(HeaderMap t) override { trailers = std::move(t); }

  int begins = 0;
  std::vector<RequestHeadersPtr> requests;
  std::vector<bool> header_end_stream;
  std::string body;
  int body_ends = 0;
  HeaderMap trailers;
  int error_status = 0;
  bool error_answered = false;
  bool answer_at_once = false;  // Respond from inside DecodeHeaders, as a local reply does.

 private:
  ResponseEncoder* encoder_ = nullptr;
};

class ServerCodecTest : public ::testing::Test {
 protected:
  void Feed(std::string_view bytes) { codec_.Dispatch(bytes.data(), bytes.size()); }
  int ErrorFor(std::string_view bytes) {
    Feed(bytes);
    return callbacks_.error_status;
  }

  CodecLimits limits_;
  FakeConnection connection_;
  RecordingServerCallbacks callbacks_;
  Http1ServerCodec codec_{connection_, callbacks_, limits_};
};

TEST_F(ServerCodecTest, ParsesRequestHead) {
  Feed("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  v  \r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  const auto& r = *callbacks_.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/a/b?x=1");
  EXPECT_EQ(r.PathWithoutQuery(), "/a/b");
  EXPECT_EQ(r.Query(), "x=1");
  EXPECT_EQ(r.authority, "example.com");
  EXPECT_EQ(*r.headers.Get("x-thing"), "v");
  EXPECT_EQ(r.headers.Get("host"), nullptr);
  EXPECT_TRUE(callbacks_.header_end_stream[0]);
}

TEST_F(ServerCodecTest, StripsHopByHopAndConnectionNamedHeaders) {
  Feed(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: 2\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  const auto& h = callbacks_.requests[0]->headers;
  EXPECT_EQ(h.Get("connection"), nullptr);
  EXPECT_EQ(h.Get("x-secret"), nullptr);
  EXPECT_EQ(h.Get("keep-alive"), nullptr);
  EXPECT_EQ(h.Get("te"), nullptr);
  EXPECT_NE(h.Get("x-kept"), nullptr);
}

TEST_F(ServerCodecTest, HeadArrivingOneByteAtATimeIsKeptWhenEachReadIsGone) {
  // Each byte lives in the same one-byte buffer, overwritten by the next read: a piece the
  // codec kept as a view into an earlier read would read the wrong bytes.
  std::string head =
      "POST /a/long/path?with=query HTTP/1.1\r\nHost: Example.COM\r\n"
      "X-Long-Header-Name-Mixed-CASE: a value longer than eight bytes\r\n"
      "Connection: X-Dropped\r\nX-Dropped: 1\r\nShort: v\r\nContent-Length: 2\r\n\r\nok";
  char buffer;
  for (char c : head) {
    buffer = c;
    codec_.Dispatch(&buffer, 1);
  }
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  const auto& r = *callbacks_.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/a/long/path?with=query");
  EXPECT_EQ(r.authority, "Example.COM");
  ASSERT_NE(r.headers.Get("x-long-header-name-mixed-case"), nullptr);
  EXPECT_EQ(*r.headers.Get("x-long-header-name-mixed-case"), "a value longer than eight bytes");
  EXPECT_EQ(r.headers.Get("x-dropped"), nullptr);
  ASSERT_NE(r.headers.Get("short"), nullptr);
  EXPECT_EQ(*r.headers.Get("short"), "v");
  ASSERT_NE(r.headers.Get(WellKnownHeader::kContentLength), nullptr);
  EXPECT_EQ(*r.headers.Get(WellKnownHeader::kContentLength), "2");
  EXPECT_EQ(callbacks_.body, "ok");
}

TEST_F(ServerCodecTest, EveryConnectionFieldNamesHeadersToDrop) {
  Feed(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nconnection: X-A\r\n"
      "X-A: 1\r\nX-B: 2\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  const auto& h = callbacks_.requests[0]->headers;
  EXPECT_EQ(h.Get("x-a"), nullptr);
  EXPECT_NE(h.Get("x-b"), nullptr);
  EXPECT_FALSE(codec_.keep_alive());
}

TEST_F(ServerCodecTest, TwoHostFieldsAreRejectedWhateverTheirCase) {
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n"), 400);
}

TEST_F(ServerCodecTest, AbsoluteFormTargetSetsAuthority) {
  Feed("GET http://other.example/p?q HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.requests[0]->authority, "other.example");
  EXPECT_EQ(callbacks_.requests[0]->path, "/p?q");
}

TEST_F(ServerCodecTest, ChunkedBodyAndTrailers) {
  Feed(
      "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_FALSE(callbacks_.header_end_stream[0]);
  EXPECT_EQ(callbacks_.body, "hello world");
  ASSERT_NE(callbacks_.trailers.Get("x-sum"), nullptr);
  EXPECT_EQ(*callbacks_.trailers.Get("x-sum"), "9");
}

TEST_F(ServerCodecTest, HoldsPipelinedRequestUntilResponseDone) {
  Feed("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  ResponseHeaders response;
  codec_.EncodeHeaders(response, true);
  codec_.ResumeDispatch();
  ASSERT_EQ(callbacks_.requests.size(), 2u);
  EXPECT_EQ(callbacks_.requests[1]->path, "/2");
}

TEST_F(ServerCodecTest, PipelinedRequestAfterAnImmediateAnswerIsCheckedForObsFold) {
  callbacks_.answer_at_once = true;
  EXPECT_EQ(ErrorFor("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /2 HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"),
            400);
  EXPECT_EQ(callbacks_.requests.size(), 1u);
}

TEST_F(ServerCodecTest, PipelinedRequestsAnsweredAtOnceAreAllParsed) {
  callbacks_.answer_at_once = true;
  Feed("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 2u);
  EXPECT_EQ(callbacks_.requests[1]->path, "/2");
}

TEST_F(ServerCodecTest, AnswersExpectContinue) {
  Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(connection_.written, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.requests[0]->headers.Get("expect"), nullptr);
}

struct Rejection {
  const char* name;  // the test name suffix: [A-Za-z0-9_]
  const char* request;
  int status;
};

// Shown by --gtest_list_tests and in failures instead of the struct's bytes.
void PrintTo(const Rejection& r, std::ostream* os) {
  *os << r.status << " for " << ::testing::PrintToString(std::string(r.request));
}

class RejectionTest : public ServerCodecTest, public ::testing::WithParamInterface<Rejection> {};

TEST_P(RejectionTest, RejectsWithStatus) {
  limits_.max_request_uri_bytes = 64;
  limits_.max_request_headers_bytes = 256;
  limits_.max_headers_count = 5;
  EXPECT_EQ(ErrorFor(GetParam().request), GetParam().status) << GetParam().name;
  // The codec itself answers, briefly, and closes: the connection manager writes no HTTP/1.
  EXPECT_TRUE(callbacks_.error_answered);
  EXPECT_NE(connection_.written.find("HTTP/1.1 " + std::to_string(GetParam().status) + " "),
            std::string::npos);
  EXPECT_NE(connection_.written.find("connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(callbacks_.requests.empty()) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, RejectionTest,
    ::testing::Values(
        Rejection{"ContentLengthAndChunked",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n",
                  400},
        Rejection{
            "EmptyTransferEncodingWithContentLength",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc",
            400},
        Rejection{
            "BlankTransferEncodingWithContentLength",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding:  \r\n\r\nabc",
            400},
        Rejection{"EmptyTransferEncoding",
                  "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:\r\n\r\n", 400},
        Rejection{"DuplicateContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                  400},
        Rejection{"InvalidContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
        Rejection{"ObsoleteLineFolding", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
        Rejection{"BareCr", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400},
        Rejection{"SpaceInHeaderName", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: a\r\n\r\n", 400},
        Rejection{"ParenInHeaderName", "GET / HTTP/1.1\r\nHost: h\r\nBad(: a\r\n\r\n", 400},
        Rejection{"EmptyHeaderName", "GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", 400},
        Rejection{"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
        Rejection{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        Rejection{"RelativeTarget", "GET foo HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        Rejection{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        Rejection{"UriTooLong",
                  "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  " HTTP/1.1\r\nHost: h\r\n\r\n",
                  414},
        Rejection{"TooManyHeaders",
                  "GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n", 431},
        Rejection{"HeadersTooLarge",
                  "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "\r\n\r\n",
                  431},
        Rejection{"UnsupportedExpect",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n", 417}),
    [](const ::testing::TestParamInfo<Rejection>& info) { return std::string(info.param.name); });

TEST_F(ServerCodecTest, BadChunkSizeIsRejected) {
  Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  EXPECT_EQ(callbacks_.error_status, 400);
}

TEST_F(ServerCodecTest, ChunkedResponseForHttp11WithoutLength) {
  Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ResponseHeaders response;
  codec_.EncodeHeaders(response, false);
  codec_.EncodeData("abc", false);
  codec_.EncodeData("", true);
  EXPECT_EQ(connection_.written,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(codec_.keep_alive());
}

TEST_F(ServerCodecTest, Http10WithoutLengthClosesConnection) {
  Feed("GET / HTTP/1.0\r\n\r\n");
  ResponseHeaders response;
  codec_.EncodeHeaders(response, false);
  codec_.EncodeData("abc", true);
  EXPECT_EQ(connection_.written, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc");
  EXPECT_FALSE(codec_.keep_alive());
}

TEST_F(ServerCodecTest, HeadResponseHasNoBody) {
  Feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  ResponseHeaders response;
  response.headers.Add("content-length", "10");
  codec_.EncodeHeaders(response, false);
  codec_.EncodeData("0123456789", true);
  EXPECT_EQ(connection_.written, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n");
}

constexpr std::string_view kWebSocketHead =
    "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: k\r\n\r\n";

TEST_F(ServerCodecTest, WebSocketUpgradeHoldsBytesUntil101ThenTunnelsRaw) {
  Feed(std::string(kWebSocketHead) + "EARLY");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  const RequestHeaders& r = *callbacks_.requests[0];
  EXPECT_EQ(r.upgrade, "websocket");
  EXPECT_FALSE(callbacks_.header_end_stream[0]);  // The tunnel is the rest of the request.
  EXPECT_EQ(r.headers.Get("upgrade"), nullptr);
  EXPECT_EQ(r.headers.Get("connection"), nullptr);
  EXPECT_EQ(*r.headers.Get("sec-websocket-key"), "k");
  // Nothing the client sends before the 101 may reach an upstream still reading HTTP.
  EXPECT_EQ(callbacks_.body, "");

  ResponseHeaders switched;
  switched.status = 101;
  switched.headers.Add("sec-websocket-accept", "a");
  codec_.EncodeHeaders(switched, false);
  EXPECT_EQ(connection_.written,
            "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: a\r\n"
            "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
  EXPECT_EQ(callbacks_.body, "EARLY");
  // From now on HTTP-looking bytes are data too, both ways, unframed.
  Feed("GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.body, "EARLYGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
  connection_.written.clear();
  codec_.EncodeData("0\r\n\r\n", false);
  EXPECT_EQ(connection_.written, "0\r\n\r\n");
  EXPECT_EQ(callbacks_.body_ends, 0);
  codec_.EncodeData("", true);
  EXPECT_FALSE(codec_.keep_alive());  // The tunnel's end is the connection's.
  EXPECT_TRUE(codec_.response_complete());
}

TEST_F(ServerCodecTest, UpgradeAnsweredWithout101ClosesAndDropsWhatFollowed) {
  Feed(std::string(kWebSocketHead) + "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ResponseHeaders refused;
  refused.status = 403;
  codec_.EncodeHeaders(refused, true);
  EXPECT_NE(connection_.written.find("HTTP/1.1 403 Forbidden\r\n"), std::string::npos);
  EXPECT_NE(connection_.written.find("connection: close\r\n"), std::string::npos);
  EXPECT_EQ(connection_.written.find("upgrade"), std::string::npos);
  EXPECT_FALSE(codec_.keep_alive());
  codec_.ResumeDispatch();
  EXPECT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.body, "");
}

TEST_F(ServerCodecTest, OtherUpgradesAreServedAsPlainRequests) {
  callbacks_.answer_at_once = true;
  Feed(
      "GET /1 HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 2u);
  EXPECT_EQ(callbacks_.requests[0]->upgrade, "");
  EXPECT_TRUE(callbacks_.header_end_stream[0]);
  EXPECT_EQ(callbacks_.requests[0]->headers.Get("upgrade"), nullptr);
  EXPECT_EQ(callbacks_.requests[0]->headers.Get("http2-settings"), nullptr);
  EXPECT_EQ(callbacks_.requests[1]->path, "/2");
  EXPECT_EQ(callbacks_.error_status, 0);
}

TEST_F(ServerCodecTest, WebSocketUpgradeNeedsGetOverHttp11WithoutBody) {
  Feed(
      "POST /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
      "Content-Length: 2\r\n\r\nhi");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.requests[0]->upgrade, "");
  EXPECT_EQ(callbacks_.body, "hi");
}

TEST_F(ServerCodecTest, UpgradeWithoutConnectionUpgradeIsPlain) {
  Feed("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(callbacks_.requests.size(), 1u);
  EXPECT_EQ(callbacks_.requests[0]->upgrade, "");
  EXPECT_TRUE(callbacks_.header_end_stream[0]);
}

// The pool's side of the client codec: records the response.
class RecordingClientCallbacks : public ClientConnectionCallbacks, public ResponseDecoder {
 public:
  void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    status = headers->status;
    fields = headers->headers;
    headers_end = end_stream;
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    if (end_stream) ended = true;
  }
  void DecodeTrailers(HeaderMap) override { ended = true; }
  void OnProtocolError(std::string_view) override { error = true; }
  int status = 0;
  HeaderMap fields;
  bool headers_end = false;
  std::string body;
  bool ended = false;
  bool error = false;
};

class ClientCodecTest : public ::testing::Test {
 protected:
  // Sends a GET and feeds `response` back.
  void Exchange(const std::string& response) {
    RequestHeaders request{"GET", "/", "up"};
    codec.NewStream(callbacks).EncodeHeaders(request, true);
    codec.Dispatch(response.data(), response.size());
  }

  FakeConnection connection;
  RecordingClientCallbacks callbacks;
  Http1ClientCodec codec{connection, callbacks};
};

TEST_F(ClientCodecTest, AOneDigitStatusCodeIsAnError) {
  Exchange("HTTP/1.1 2 OK\r\ncontent-length: 0\r\n\r\n");
  EXPECT_TRUE(callbacks.error);
  EXPECT_EQ(callbacks.status, 0);
}

TEST_F(ClientCodecTest, TwoSpacesBeforeTheStatusCodeAreAnError) {
  Exchange("HTTP/1.1  200 OK\r\ncontent-length: 0\r\n\r\n");
  EXPECT_TRUE(callbacks.error);
  EXPECT_EQ(callbacks.status, 0);
}

TEST_F(ClientCodecTest, AStatusLineSplitAcrossReadsIsChecked) {
  RequestHeaders request{"GET", "/", "up"};
  codec.NewStream(callbacks).EncodeHeaders(request, true);
  for (std::string_view piece : {"HTTP/1.1 ", " 200 OK\r\ncontent-length: 0\r\n\r\n"}) {
    codec.Dispatch(piece.data(), piece.size());
  }
  EXPECT_TRUE(callbacks.error);
  EXPECT_EQ(callbacks.status, 0);
}

TEST_F(ClientCodecTest, AReasonPhraseMayBeEmpty) {
  Exchange("HTTP/1.1 204 \r\n\r\n");
  EXPECT_FALSE(callbacks.error);
  EXPECT_EQ(callbacks.status, 204);
}

TEST_F(ClientCodecTest, EncodesChunkedRequestWithoutLength) {
  RequestHeaders request;
  request.method = "POST";
  request.path = "/x";
  request.authority = "up";
  RequestEncoder& encoder = codec.NewStream(callbacks);
  encoder.EncodeHeaders(request, false);
  encoder.EncodeData("hi", true);
  EXPECT_EQ(
      connection.written,
      "POST /x HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  EXPECT_TRUE(codec.requests_complete());
}

TEST_F(ClientCodecTest, TeFromAnHttp2ClientStaysOnItsHop) {
  RequestHeaders request{"POST", "/svc/M", "up"};
  request.headers.Add("te", "trailers");
  request.headers.Add("content-type", "application/grpc");
  codec.NewStream(callbacks).EncodeHeaders(request, true);
  EXPECT_EQ(connection.written,
            "POST /svc/M HTTP/1.1\r\nhost: up\r\ncontent-type: application/grpc\r\n\r\n");
}

TEST_F(ClientCodecTest, EncodesTrailersInTheLastChunk) {
  RequestHeaders request{"POST", "/x", "up"};
  RequestEncoder& encoder = codec.NewStream(callbacks);
  encoder.EncodeHeaders(request, false);
  encoder.EncodeData("hi", false);
  HeaderMap trailers;
  trailers.Add("X-Sum", "9");
  trailers.Add("grpc-status", "");
  encoder.EncodeTrailers(trailers);
  EXPECT_EQ(connection.written,
            "POST /x HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n"
            "0\r\nx-sum: 9\r\ngrpc-status: \r\n\r\n");
  EXPECT_TRUE(codec.requests_complete());
}

TEST_F(ClientCodecTest, ReadToCloseResponseCompletesOnClose) {
  Exchange("HTTP/1.1 200 OK\r\n\r\npartial");
  EXPECT_EQ(callbacks.body, "partial");
  EXPECT_FALSE(callbacks.ended);
  EXPECT_TRUE(codec.OnConnectionClosed());
  EXPECT_TRUE(callbacks.ended);
  EXPECT_FALSE(codec.reusable());
}

TEST_F(ClientCodecTest, TruncatedResponseIsNotComplete) {
  Exchange("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_FALSE(codec.OnConnectionClosed());
}

TEST_F(ClientCodecTest, KeepAliveResponseIsReusableAndSwallows100Continue) {
  Exchange("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n");
  EXPECT_EQ(callbacks.status, 204);
  EXPECT_TRUE(callbacks.headers_end);
  EXPECT_TRUE(codec.reusable());
}

TEST_F(ClientCodecTest, ResponseHeadArrivingOneByteAtATimeIsKept) {
  RequestHeaders request{"GET", "/", "up"};
  codec.NewStream(callbacks).EncodeHeaders(request, true);
  std::string response =
      "HTTP/1.1 200 OK\r\nServer: Upstream/1.0\r\nContent-Type: text/plain\r\n"
      "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\nhello";
  char buffer;
  for (char c : response) {
    buffer = c;
    codec.Dispatch(&buffer, 1);
  }
  EXPECT_EQ(callbacks.status, 200);
  ASSERT_NE(callbacks.fields.Get("server"), nullptr);
  EXPECT_EQ(*callbacks.fields.Get("server"), "Upstream/1.0");
  ASSERT_NE(callbacks.fields.Get(WellKnownHeader::kContentType), nullptr);
  EXPECT_EQ(*callbacks.fields.Get(WellKnownHeader::kContentType), "text/plain");
  EXPECT_EQ(callbacks.fields.Get("connection"), nullptr);
  EXPECT_EQ(callbacks.fields.Get("keep-alive"), nullptr);
  EXPECT_EQ(callbacks.body, "hello");
  EXPECT_TRUE(callbacks.ended);
  EXPECT_TRUE(codec.reusable());
}

TEST_F(ClientCodecTest, WebSocketUpgradeTunnelsAfter101AndIsNeverReused) {
  RequestHeaders request{"GET", "/chat", "up"};
  request.upgrade = "websocket";
  request.headers.Add("sec-websocket-key", "k");
  RequestEncoder& encoder = codec.NewStream(callbacks);
  encoder.EncodeHeaders(request, false);
  EXPECT_EQ(connection.written,
            "GET /chat HTTP/1.1\r\nhost: up\r\nsec-websocket-key: k\r\n"
            "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
  connection.written.clear();
  std::string response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: a\r\n\r\nFRAME";
  codec.Dispatch(response.data(), response.size());
  EXPECT_FALSE(callbacks.error);
  EXPECT_EQ(callbacks.status, 101);
  EXPECT_FALSE(callbacks.headers_end);
  EXPECT_EQ(*callbacks.fields.Get("sec-websocket-accept"), "a");
  EXPECT_EQ(callbacks.fields.Get("upgrade"), nullptr);
  EXPECT_EQ(callbacks.body, "FRAME");
  std::string more = "HTTP/1.1 200 OK\r\n\r\n";
  codec.Dispatch(more.data(), more.size());
  EXPECT_EQ(callbacks.body, "FRAME" + more);
  encoder.EncodeData("0\r\n\r\n", false);
  EXPECT_EQ(connection.written, "0\r\n\r\n");  // Raw: no chunk framing.
  EXPECT_FALSE(codec.reusable());
  EXPECT_FALSE(callbacks.ended);
  EXPECT_TRUE(codec.OnConnectionClosed());  // The upstream's close ends the stream.
  EXPECT_TRUE(callbacks.ended);
  EXPECT_FALSE(codec.reusable());
}

TEST_F(ClientCodecTest, BytesBeforeThe101AreNotSent) {
  RequestHeaders request{"GET", "/chat", "up"};
  request.upgrade = "websocket";
  RequestEncoder& encoder = codec.NewStream(callbacks);
  encoder.EncodeHeaders(request, false);
  connection.written.clear();
  encoder.EncodeData("GET /smuggled HTTP/1.1\r\n\r\n", false);
  EXPECT_EQ(connection.written, "");
}

TEST_F(ClientCodecTest, UpgradeRefusedIsAPlainResponseOnAClosingConnection) {
  RequestHeaders request{"GET", "/chat", "up"};
  request.upgrade = "websocket";
  codec.NewStream(callbacks).EncodeHeaders(request, false);
  std::string response = "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno";
  codec.Dispatch(response.data(), response.size());
  EXPECT_EQ(callbacks.status, 400);
  EXPECT_EQ(callbacks.body, "no");
  EXPECT_TRUE(callbacks.ended);
  EXPECT_FALSE(codec.reusable());
}

TEST_F(ClientCodecTest, A101NobodyAskedForIsAnError) {
  Exchange("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
  EXPECT_TRUE(callbacks.error);
  EXPECT_EQ(callbacks.status, 0);
}

TEST_F(ClientCodecTest, A101ToAnotherProtocolIsAnError) {
  RequestHeaders request{"GET", "/chat", "up"};
  request.upgrade = "websocket";
  codec.NewStream(callbacks).EncodeHeaders(request, false);
  std::string response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n";
  codec.Dispatch(response.data(), response.size());
  EXPECT_TRUE(callbacks.error);
  EXPECT_EQ(callbacks.status, 0);
}

}  // namespace
}  // namespace phoenix::http
