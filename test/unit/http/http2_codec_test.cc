#include "source/http/http2_codec.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/http/http1_codec.h"
#include "test/unit/fakes/fake_connection.h"
#include "test/unit/fakes/http2_test_client.h"

namespace phoenix::http {
namespace {

using fakes::FakeConnection;
using fakes::Http2TestClient;

// One request as the connection manager sees it: the decoder it returned for the stream,
// and the StreamCallbacks it registered on the stream's encoder.
class RecordedStream : public RequestDecoder, public StreamCallbacks {
 public:
  explicit RecordedStream(ResponseEncoder& encoder) : encoder(encoder) {
    encoder.stream().SetCallbacks(this);
  }
  void DecodeHeaders(RequestHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    ended = end_stream;
  }
  void DecodeTrailers(HeaderMap t) override {
    trailers = std::move(t);
    ended = true;
  }
  void OnResetStream(StreamResetReason reason) override { reset = reason; }
  void OnAboveWriteBufferHighWatermark() override { ++above; }
  void OnBelowWriteBufferLowWatermark() override { ++below; }

  ResponseEncoder& encoder;
  RequestHeadersPtr headers;
  std::string body;
  HeaderMap trailers;
  bool ended = false;
  std::optional<StreamResetReason> reset;
  int above = 0;
  int below = 0;
};

class RecordingCallbacks : public ServerConnectionCallbacks {
 public:
  void OnRequestBegin() override { ++begins; }
  RequestDecoder& NewStream(ResponseEncoder& encoder) override {
    streams.push_back(std::make_unique<RecordedStream>(encoder));
    return *streams.back();
  }
  void OnProtocolError(int status, std::string_view details, bool) override {
    protocol_error = std::string(details);
  }

  int begins = 0;
  std::vector<std::unique_ptr<RecordedStream>> streams;
  std::string protocol_error;
};

class Http2ServerCodecTest : public ::testing::Test {
 protected:
  Http2ServerCodecTest() { MakeCodec(); }

  // A codec with the options and limits as the test set them (the fixture's first one has
  // not spoken to the client yet: its SETTINGS are dropped with it).
  void MakeCodec() {
    codec_.reset();
    connection_.written.clear();
    codec_ = std::make_unique<Http2ServerCodec>(connection_, callbacks_, limits_, options_, stats_);
  }
  // Client bytes to the codec and the codec's bytes back, until both are quiet.
  void Exchange() { ASSERT_NO_FATAL_FAILURE(ExchangeOnce()); }
  void ExchangeOnce() {
    for (int i = 0; i < 100; ++i) {
      std::string out = client_.Take();
      if (!out.empty()) codec_->Dispatch(out.data(), out.size());
      std::string in = std::move(connection_.written);
      connection_.written.clear();
      if (!in.empty()) ASSERT_TRUE(client_.Receive(in)) << "the client refused the codec's bytes";
      if (out.empty() && in.empty()) return;
    }
  }
  RecordedStream& Stream(size_t i) { return *callbacks_.streams.at(i); }
  uint64_t Stat(const std::string& name) {
    return store_.counter("http.test.http2." + name).Value();
  }

  StatsStore store_;
  Http2Stats stats_{store_, "test"};
  CodecLimits limits_;
  Http2Options options_;
  FakeConnection connection_;
  RecordingCallbacks callbacks_;
  Http2TestClient client_;
  std::unique_ptr<Http2ServerCodec> codec_;
};

TEST_F(Http2ServerCodecTest, RequestHeadBecomesAStream) {
  client_.Request("GET", "/a?b=1",
                  {{"x-thing", "v"}, {"cookie", "a=1"}, {"cookie", "b=2"}, {"te", "trailers"}});
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 1u);
  const RequestHeaders& h = *Stream(0).headers;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/a?b=1");
  EXPECT_EQ(h.authority, "example.com");
  EXPECT_EQ(h.protocol, Protocol::kHttp2);
  EXPECT_EQ(*h.headers.Get("x-thing"), "v");
  EXPECT_EQ(*h.headers.Get("cookie"), "a=1; b=2");
  ASSERT_NE(h.headers.Get("te"), nullptr) << "an HTTP/2 upstream (gRPC) may need it";
  EXPECT_EQ(*h.headers.Get("te"), "trailers");
  EXPECT_TRUE(Stream(0).ended);
  EXPECT_EQ(callbacks_.begins, 1);
  EXPECT_TRUE(codec_->idle());
}

TEST_F(Http2ServerCodecTest, HostStandsInForAMissingAuthority) {
  client_.authority = "";
  client_.Request("GET", "/", {{"host", "h.example"}});
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 1u);
  EXPECT_EQ(Stream(0).headers->authority, "h.example");
  EXPECT_EQ(Stream(0).headers->headers.Get("host"), nullptr);
}

TEST_F(Http2ServerCodecTest, RequestBodyAndTrailersArrive) {
  client_.Request("POST", "/up", {}, std::string(40000, 'x'), /*end=*/false, {{"x-trailer", "t"}});
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 1u);
  EXPECT_EQ(Stream(0).body.size(), 40000u);
  ASSERT_NE(Stream(0).trailers.Get("x-trailer"), nullptr);
  EXPECT_EQ(*Stream(0).trailers.Get("x-trailer"), "t");
  EXPECT_TRUE(Stream(0).ended);
}

TEST_F(Http2ServerCodecTest, ResponseWithBodyAndTrailersReachesTheClient) {
  int32_t id = client_.Request("GET", "/");
  Exchange();
  ResponseHeaders response;
  response.status = 201;
  response.headers.Add("x-answer", "42");
  response.headers.Add("connection", "close");  // Connection-specific: not in HTTP/2.
  response.headers.Add("transfer-encoding", "chunked");
  Stream(0).encoder.EncodeHeaders(response, false);
  Stream(0).encoder.EncodeData("hello ", false);
  Stream(0).encoder.EncodeData("world", false);
  HeaderMap trailers;
  trailers.Add("grpc-status", "0");
  Stream(0).encoder.EncodeTrailers(trailers);
  Exchange();
  const Http2TestClient::Response& r = client_.responses[id];
  EXPECT_EQ(r.Header(":status"), "201");
  EXPECT_EQ(r.Header("x-answer"), "42");
  EXPECT_EQ(r.Header("connection"), "");
  EXPECT_EQ(r.Header("transfer-encoding"), "");
  EXPECT_EQ(r.body, "hello world");
  ASSERT_EQ(r.trailers.size(), 1u);
  EXPECT_EQ(r.trailers[0], std::make_pair(std::string("grpc-status"), std::string("0")));
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(stats_.streams_active.Value(), 0);
}

TEST_F(Http2ServerCodecTest, ManyStreamsInterleave) {
  int32_t a = client_.Request("GET", "/a");
  int32_t b = client_.Request("GET", "/b");
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 2u);
  ResponseHeaders response;
  Stream(1).encoder.EncodeHeaders(response, false);
  Stream(0).encoder.EncodeHeaders(response, false);
  Stream(1).encoder.EncodeData("B", true);
  Stream(0).encoder.EncodeData("A", true);
  Exchange();
  EXPECT_EQ(client_.responses[a].body, "A");
  EXPECT_EQ(client_.responses[b].body, "B");
}

TEST_F(Http2ServerCodecTest, AStalledStreamStopsItsClientWithinOneWindow) {
  options_.initial_stream_window_size = 65535;
  MakeCodec();
  // A body four windows long. The first window arrives with the head, before the stream is
  // held, and is acknowledged; once held, the client can send one window more, then waits.
  int32_t id = client_.Request("POST", "/up", {}, std::string(4 * 65535, 'x'), /*end=*/true);
  std::string first = client_.Take();
  codec_->Dispatch(first.data(), first.size());
  ASSERT_EQ(callbacks_.streams.size(), 1u);
  Stream(0).encoder.stream().ReadDisable(true);
  Exchange();
  EXPECT_EQ(Stream(0).body.size(), 2u * 65535) << "the held stream got more than its window";
  EXPECT_EQ(client_.SendWindow(id), 0);
  EXPECT_FALSE(Stream(0).ended);
  Stream(0).encoder.stream().ReadDisable(false);
  Exchange();
  EXPECT_EQ(Stream(0).body.size(), 4u * 65535);
  EXPECT_TRUE(Stream(0).ended);
}

TEST_F(Http2ServerCodecTest, OneHeldStreamDoesNotBlockTheOthers) {
  options_.initial_stream_window_size = 65535;
  MakeCodec();
  client_.Request("POST", "/held", {}, std::string(65535, 'x'), /*end=*/false);
  std::string preface = client_.Take();
  codec_->Dispatch(preface.data(), preface.size());
  Stream(0).encoder.stream().ReadDisable(true);
  Exchange();
  // The connection window was acknowledged: another stream still gets its bytes through.
  client_.Request("POST", "/free", {}, std::string(65535, 'y'), /*end=*/true);
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 2u);
  EXPECT_EQ(Stream(1).body.size(), 65535u);
  EXPECT_TRUE(Stream(1).ended);
}

TEST_F(Http2ServerCodecTest, ResponseBeyondTheClientsWindowPushesBackOnTheStream) {
  options_.stream_buffer_limit = 100000;
  MakeCodec();
  client_.hold_window = true;  // The client reads nothing: its window closes at 64 KiB.
  int32_t id = client_.Request("GET", "/big");
  Exchange();
  ResponseHeaders response;
  Stream(0).encoder.EncodeHeaders(response, false);
  Stream(0).encoder.EncodeData(std::string(200000, 'z'), false);
  Exchange();
  EXPECT_EQ(client_.responses[id].body.size(), 65535u);
  EXPECT_EQ(Stream(0).above, 1);
  EXPECT_EQ(Stream(0).below, 0);
  client_.hold_window = false;
  client_.Consume(id);
  Exchange();
  EXPECT_EQ(client_.responses[id].body.size(), 200000u);
  EXPECT_EQ(Stream(0).below, 1);
}

TEST_F(Http2ServerCodecTest, AClientResetReachesTheStream) {
  int32_t id = client_.Request("GET", "/slow");
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 1u);
  client_.Reset(id);
  Exchange();
  ASSERT_TRUE(Stream(0).reset.has_value());
  EXPECT_EQ(*Stream(0).reset, StreamResetReason::kRemoteReset);
  EXPECT_EQ(Stat("rx_reset"), 1u);
  // The encoder is still safe to use (the manager may answer before it hears the reset).
  Stream(0).encoder.EncodeHeaders(ResponseHeaders(), true);
  Exchange();
  EXPECT_EQ(client_.responses[id].Header(":status"), "");
}

TEST_F(Http2ServerCodecTest, RapidResetClosesTheConnection) {
  options_.premature_reset_min_streams = 10;
  MakeCodec();
  for (int i = 0; i < 10; ++i) {
    int32_t id = client_.Request("GET", "/x");
    Exchange();
    client_.Reset(id);
    Exchange();
  }
  EXPECT_EQ(callbacks_.protocol_error,
            "too many streams reset before their response (rapid reset)");
  EXPECT_TRUE(client_.goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_EQ(Stat("premature_reset_flood"), 1u);
}

TEST_F(Http2ServerCodecTest, StreamsAnsweredBeforeTheirResetDoNotCount) {
  options_.premature_reset_min_streams = 10;
  MakeCodec();
  for (int i = 0; i < 20; ++i) {
    client_.Request("GET", "/x");
    Exchange();
    callbacks_.streams.back()->encoder.EncodeHeaders(ResponseHeaders(), true);
    Exchange();
  }
  EXPECT_EQ(callbacks_.protocol_error, "");
  EXPECT_EQ(Stat("rx_reset"), 0u);
}

TEST_F(Http2ServerCodecTest, OversizedHeadIsAnswered431ByTheCodec) {
  limits_.max_request_headers_bytes = 1024;
  MakeCodec();
  int32_t id = client_.Request("GET", "/", {{"x-big", std::string(2000, 'a')}});
  Exchange();
  EXPECT_TRUE(callbacks_.streams.empty());
  EXPECT_EQ(client_.responses[id].Header(":status"), "431");
  EXPECT_EQ(Stat("header_overflow"), 1u);
  // The connection goes on.
  client_.Request("GET", "/next");
  Exchange();
  EXPECT_EQ(callbacks_.streams.size(), 1u);
}

TEST_F(Http2ServerCodecTest, TooManyHeadersIsAnswered431) {
  limits_.max_headers_count = 3;
  MakeCodec();
  int32_t id = client_.Request("GET", "/", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}});
  Exchange();
  EXPECT_EQ(client_.responses[id].Header(":status"), "431");
}

TEST_F(Http2ServerCodecTest, LongPathIsAnswered414) {
  limits_.max_request_uri_bytes = 100;
  MakeCodec();
  int32_t id = client_.Request("GET", "/" + std::string(200, 'p'));
  Exchange();
  EXPECT_EQ(client_.responses[id].Header(":status"), "414");
  EXPECT_TRUE(callbacks_.streams.empty());
}

TEST_F(Http2ServerCodecTest, ShutdownSendsGoawayAndEndsKeepAlive) {
  int32_t id = client_.Request("GET", "/");
  Exchange();
  codec_->Shutdown();
  Exchange();
  EXPECT_TRUE(client_.goaway);
  EXPECT_EQ(client_.goaway_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(client_.goaway_last_stream, id);
  EXPECT_FALSE(codec_->keep_alive());
  // The stream in progress still completes.
  Stream(0).encoder.EncodeHeaders(ResponseHeaders(), true);
  Exchange();
  EXPECT_EQ(client_.responses[id].Header(":status"), "200");
}

// Stream events wait for the end of the loop iteration to be sent, but never behind a read
// of the same connection: a close from inside that read would strand them.
TEST_F(Http2ServerCodecTest, ScheduledFramesLeaveBeforeTheNextRead) {
  connection_.defer_writes = true;
  int32_t id = client_.Request("GET", "/");
  Exchange();
  Stream(0).encoder.EncodeHeaders(ResponseHeaders(), true);
  EXPECT_TRUE(connection_.written.empty());
  EXPECT_NE(connection_.deferred_writer, nullptr);
  client_.Request("GET", "/2");
  Exchange();  // Reads, never runs the deferred writer itself.
  EXPECT_EQ(client_.responses[id].Header(":status"), "200");
  EXPECT_TRUE(client_.responses[id].ended);
  EXPECT_EQ(connection_.deferred_writer, nullptr);
}

TEST_F(Http2ServerCodecTest, ScheduledFramesLeaveAtTheEndOfTheIterationOnce) {
  connection_.defer_writes = true;
  int32_t first = client_.Request("GET", "/1");
  int32_t second = client_.Request("GET", "/2");
  Exchange();
  ASSERT_EQ(callbacks_.streams.size(), 2u);
  Stream(0).encoder.EncodeHeaders(ResponseHeaders(), false);
  Stream(0).encoder.EncodeData("one", true);
  Stream(1).encoder.EncodeHeaders(ResponseHeaders(), true);
  EXPECT_TRUE(connection_.written.empty());
  connection_.RunDeferredWriter();
  Exchange();
  EXPECT_EQ(client_.responses[first].body, "one");
  EXPECT_TRUE(client_.responses[first].ended);
  EXPECT_TRUE(client_.responses[second].ended);
}

TEST_F(Http2ServerCodecTest, NotAPrefaceIsAProtocolError) {
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  codec_->Dispatch(junk.data(), junk.size());
  EXPECT_EQ(callbacks_.protocol_error, "no HTTP/2 connection preface");
}

TEST_F(Http2ServerCodecTest, AConnectionAboveItsWatermarkGetsNoMoreFrames) {
  int32_t id = client_.Request("GET", "/");
  Exchange();
  codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
  Stream(0).encoder.EncodeHeaders(ResponseHeaders(), false);
  Stream(0).encoder.EncodeData("data", true);
  EXPECT_TRUE(connection_.written.empty());
  codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
  Exchange();
  EXPECT_EQ(client_.responses[id].body, "data");
}

TEST(DetectingServerCodecFactoryTest, ThePrefaceDecides) {
  auto http1 = std::make_shared<Http1ServerCodecFactory>(CodecLimits());
  StatsStore store;
  auto http2 = std::make_shared<Http2ServerCodecFactory>(CodecLimits(), Http2Options(), store, "t");
  DetectingServerCodecFactory detect(http1, http2);
  EXPECT_TRUE(detect.detects());
  EXPECT_EQ(detect.Detect("GET / HTTP/1.1\r\n"), http1.get());
  EXPECT_EQ(detect.Detect("P"), nullptr);
  EXPECT_EQ(detect.Detect("PRI * HTTP/2.0\r\n"), nullptr);
  EXPECT_EQ(detect.Detect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), http2.get());
  EXPECT_EQ(detect.Detect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"), http2.get());
  EXPECT_EQ(detect.Detect("POST / HTTP/1.1"), http1.get());
  EXPECT_EQ(detect.Detect("PRI /x HTTP/1.1"), http1.get());
}

}  // namespace
}  // namespace phoenix::http
