#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/http/http2_codec.h"
#include "test/unit/fakes/fake_connection.h"
#include "test/unit/fakes/http2_test_server.h"

namespace phoenix::http {
namespace {

using fakes::FakeConnection;
using fakes::Http2TestServer;

// One request as the router sees it: the decoder it gave NewStream and the StreamCallbacks it
// set on the encoder's stream. Anything heard after the response ended or the stream was
// reset is counted as `late`.
class RecordedResponse : public ResponseDecoder, public StreamCallbacks {
 public:
  void DecodeHeaders(ResponseHeadersPtr h, bool end_stream) override {
    Heard();
    ++heads;
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    Heard();
    body.append(data);
    ended = end_stream;
  }
  void DecodeTrailers(HeaderMap t) override {
    Heard();
    trailers = std::move(t);
    ended = true;
  }
  void OnResetStream(StreamResetReason reason) override {
    Heard();
    reset = reason;
  }
  void OnAboveWriteBufferHighWatermark() override { ++above; }
  void OnBelowWriteBufferLowWatermark() override { ++below; }

  Stream& stream() { return encoder->stream(); }

  RequestEncoder* encoder = nullptr;
  ResponseHeadersPtr headers;
  int heads = 0;
  std::string body;
  HeaderMap trailers;
  bool ended = false;
  std::optional<StreamResetReason> reset;
  int above = 0;
  int below = 0;
  int late = 0;

 private:
  void Heard() {
    if (ended || reset.has_value()) ++late;
  }
};

class RecordingConnectionCallbacks : public Http2ClientConnectionCallbacks {
 public:
  void OnProtocolError(std::string_view details) override {
    ++protocol_errors;
    protocol_error = std::string(details);
  }
  void OnStreamEnded() override { ++streams_ended; }
  void OnGoAway() override { ++goaways; }

  int protocol_errors = 0;
  std::string protocol_error;
  int streams_ended = 0;
  int goaways = 0;
};

RequestHeaders Get(std::string path = "/") {
  RequestHeaders request;
  request.method = "GET";
  request.path = std::move(path);
  request.authority = "upstream.example";
  return request;
}

RequestHeaders Post(std::string path = "/up") {
  RequestHeaders request = Get(std::move(path));
  request.method = "POST";
  return request;
}

class Http2ClientCodecTest : public ::testing::Test {
 protected:
  Http2ClientCodecTest() { MakeCodec(); }

  // A codec with the options as the test set them, talking to a fresh server.
  void MakeCodec(std::string_view scheme = "http", uint32_t server_max_streams = 0) {
    codec_.reset();
    connection_.written.clear();
    server_ = std::make_unique<Http2TestServer>(server_max_streams);
    codec_ = std::make_unique<Http2ClientCodec>(connection_, callbacks_, options_, scheme);
  }

  // Opens a stream and sends its head.
  RecordedResponse& Start(const RequestHeaders& request, bool end_stream = true) {
    responses_.push_back(std::make_unique<RecordedResponse>());
    RecordedResponse& response = *responses_.back();
    response.encoder = &codec_->NewStream(response);
    response.stream().SetCallbacks(&response);
    response.encoder->EncodeHeaders(request, end_stream);
    return response;
  }

  // The codec's bytes to the server and the server's back, until both are quiet.
  void Exchange() { ASSERT_NO_FATAL_FAILURE(ExchangeOnce()); }
  void ExchangeOnce() {
    for (int i = 0; i < 100; ++i) {
      std::string out = std::move(connection_.written);
      connection_.written.clear();
      if (!out.empty())
        ASSERT_TRUE(server_->Receive(out)) << "the server refused the codec's bytes";
      std::string in = server_->Take();
      if (!in.empty()) codec_->Dispatch(in.data(), in.size());
      if (out.empty() && in.empty()) return;
    }
    FAIL() << "the exchange did not settle";
  }

  // The server's id of the i-th request it received.
  int32_t Id(size_t i) const { return server_->stream_ids.at(i); }
  const Http2TestServer::Request& ServerRequest(size_t i) const {
    return server_->requests.at(Id(i));
  }

  Http2Options options_;
  FakeConnection connection_;
  RecordingConnectionCallbacks callbacks_;
  std::unique_ptr<Http2TestServer> server_;
  std::vector<std::unique_ptr<RecordedResponse>> responses_;
  // Last: destroyed first, while the decoders it points at are alive.
  std::unique_ptr<Http2ClientCodec> codec_;
};

TEST_F(Http2ClientCodecTest, AnnouncesItsSettings) {
  options_.initial_stream_window_size = 100000;
  MakeCodec();
  Exchange();
  EXPECT_EQ(server_->ClientSetting(NGHTTP2_SETTINGS_ENABLE_PUSH), 0u);
  EXPECT_EQ(server_->ClientSetting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 100000u);
}

TEST_F(Http2ClientCodecTest, RequestHeadBecomesPseudoHeadersAndFields) {
  RequestHeaders request = Get("/a?b=1");
  request.headers.Add("x-thing", "v");
  request.headers.Add("X-Upper", "kept");
  Start(request);
  Exchange();
  ASSERT_EQ(server_->stream_ids.size(), 1u);
  const Http2TestServer::Request& r = ServerRequest(0);
  EXPECT_EQ(r.Header(":method"), "GET");
  EXPECT_EQ(r.Header(":scheme"), "http");
  EXPECT_EQ(r.Header(":authority"), "upstream.example");
  EXPECT_EQ(r.Header(":path"), "/a?b=1");
  EXPECT_EQ(r.Header("x-thing"), "v");
  EXPECT_EQ(r.Header("x-upper"), "kept");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.body, "");
}

// A request id is unique to its request: in the HPACK table it would only push out the
// fields that repeat, so it goes out never indexed; the rest may be indexed.
TEST_F(Http2ClientCodecTest, RequestIdIsSentNeverIndexed) {
  RequestHeaders request = Get();
  request.headers.AddStored("x-request-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                            WellKnownHeader::kXRequestId);
  request.headers.Add("x-thing", "v");
  Start(request);
  Exchange();
  ASSERT_EQ(server_->stream_ids.size(), 1u);
  const Http2TestServer::Request& r = ServerRequest(0);
  EXPECT_EQ(r.Header("x-request-id"), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  EXPECT_EQ(r.never_indexed, std::vector<std::string>{"x-request-id"});
}

TEST_F(Http2ClientCodecTest, SchemeIsTheOneTheCodecWasMadeWith) {
  MakeCodec("https");
  Start(Get());
  Exchange();
  EXPECT_EQ(ServerRequest(0).Header(":scheme"), "https");
}

TEST_F(Http2ClientCodecTest, NoAuthorityWithoutOne) {
  RequestHeaders request = Get();
  request.authority.clear();
  Start(request);
  Exchange();
  EXPECT_EQ(ServerRequest(0).Count(":authority"), 0);
  EXPECT_EQ(ServerRequest(0).Header(":path"), "/");
}

// RFC 9113 8.2.2: connection-specific fields would make the request malformed. The codec
// drops every hop-by-hop field, `te` too, even "te: trailers" (the server codec drops it on
// the way in, so a request never carries it here anyway).
TEST_F(Http2ClientCodecTest, ConnectionSpecificFieldsAreDropped) {
  RequestHeaders request = Get();
  request.headers.Add("connection", "keep-alive");
  request.headers.Add("keep-alive", "timeout=5");
  request.headers.Add("proxy-connection", "keep-alive");
  request.headers.Add("transfer-encoding", "chunked");
  request.headers.Add("upgrade", "h2c");
  request.headers.Add("te", "gzip");  // HTTP/2 allows TE only as "trailers".
  request.headers.Add("trailer", "x-sum");
  request.headers.Add("x-kept", "1");
  Start(request);
  Exchange();
  const Http2TestServer::Request& r = ServerRequest(0);
  EXPECT_FALSE(r.reset) << "the server found the request malformed";
  for (const char* name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                           "upgrade", "te", "trailer"}) {
    EXPECT_EQ(r.Count(name), 0) << name;
  }
  EXPECT_EQ(r.Header("x-kept"), "1");
}

TEST_F(Http2ClientCodecTest, TeTrailersReachesTheUpstream) {
  // gRPC servers may insist on it; RFC 9113 8.2.2 allows exactly this TE.
  RequestHeaders request = Post();
  request.headers.Add("content-type", "application/grpc");
  request.headers.Add("te", "trailers");
  Start(request);
  Exchange();
  EXPECT_EQ(ServerRequest(0).Header("te"), "trailers");
  EXPECT_EQ(ServerRequest(0).Header("content-type"), "application/grpc");
}

TEST_F(Http2ClientCodecTest, RequestBodyAndTrailersArrive) {
  RecordedResponse& response = Start(Post(), /*end_stream=*/false);
  EXPECT_FALSE(codec_->requests_complete());
  response.encoder->EncodeData(std::string(40000, 'x'), false);
  response.encoder->EncodeData("tail", false);
  HeaderMap trailers;
  trailers.Add("x-checksum", "abc");
  response.encoder->EncodeTrailers(trailers);
  EXPECT_TRUE(codec_->requests_complete());
  Exchange();
  const Http2TestServer::Request& r = ServerRequest(0);
  EXPECT_EQ(r.body, std::string(40000, 'x') + "tail");
  ASSERT_EQ(r.trailers.size(), 1u);
  EXPECT_EQ(r.trailers[0], std::make_pair(std::string("x-checksum"), std::string("abc")));
  EXPECT_TRUE(r.ended);
}

TEST_F(Http2ClientCodecTest, RequestBodyEndedByItsLastData) {
  RecordedResponse& response = Start(Post(), /*end_stream=*/false);
  response.encoder->EncodeData("abc", true);
  Exchange();
  EXPECT_EQ(ServerRequest(0).body, "abc");
  EXPECT_TRUE(ServerRequest(0).ended);
  EXPECT_TRUE(ServerRequest(0).trailers.empty());
}

TEST_F(Http2ClientCodecTest, ResponseHeadBodyAndTrailersReachTheDecoder) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Respond(Id(0), 201, {{"x-answer", "42"}, {"content-type", "text/plain"}});
  server_->SendData(Id(0), "hello ");
  Exchange();
  ASSERT_NE(response.headers, nullptr);
  EXPECT_EQ(response.headers->status, 201);
  ASSERT_NE(response.headers->headers.Get("x-answer"), nullptr);
  EXPECT_EQ(*response.headers->headers.Get("x-answer"), "42");
  EXPECT_EQ(response.headers->headers.Get(":status"), nullptr) << "pseudo-headers stay out";
  EXPECT_EQ(response.body, "hello ");
  EXPECT_FALSE(response.ended);
  server_->SendData(Id(0), "world");
  server_->SendTrailers(Id(0), {{"grpc-status", "0"}, {"grpc-message", "fine"}});
  Exchange();
  EXPECT_EQ(response.body, "hello world");
  ASSERT_NE(response.trailers.Get("grpc-status"), nullptr);
  EXPECT_EQ(*response.trailers.Get("grpc-status"), "0");
  EXPECT_EQ(*response.trailers.Get("grpc-message"), "fine");
  EXPECT_TRUE(response.ended);
  EXPECT_FALSE(response.reset.has_value());
  EXPECT_EQ(response.late, 0);
  EXPECT_EQ(callbacks_.streams_ended, 1);
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_TRUE(codec_->reusable());
}

TEST_F(Http2ClientCodecTest, ResponseEndedByItsHead) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Respond(Id(0), 204, {}, /*end=*/true);
  Exchange();
  ASSERT_NE(response.headers, nullptr);
  EXPECT_EQ(response.headers->status, 204);
  EXPECT_TRUE(response.ended);
  EXPECT_EQ(codec_->active_streams(), 0u);
}

TEST_F(Http2ClientCodecTest, InformationalHeadsAreSkipped) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Informational(Id(0), 100);
  server_->Informational(Id(0), 103);
  Exchange();
  EXPECT_EQ(response.heads, 0) << "no 1xx reaches the router";
  server_->Respond(Id(0), 200, {{"x-final", "1"}});
  server_->SendData(Id(0), "body", true);
  Exchange();
  EXPECT_EQ(response.heads, 1);
  EXPECT_EQ(response.headers->status, 200);
  EXPECT_NE(response.headers->headers.Get("x-final"), nullptr);
  EXPECT_EQ(response.body, "body");
  EXPECT_TRUE(response.ended);
}

TEST_F(Http2ClientCodecTest, SeveralStreamsInterleave) {
  RecordedResponse& a = Start(Get("/a"));
  RecordedResponse& b = Start(Post("/b"), /*end_stream=*/false);
  RecordedResponse& c = Start(Get("/c"));
  b.encoder->EncodeData("b-body", true);
  Exchange();
  ASSERT_EQ(server_->stream_ids.size(), 3u);
  EXPECT_EQ(ServerRequest(0).Header(":path"), "/a");
  EXPECT_EQ(ServerRequest(1).Header(":path"), "/b");
  EXPECT_EQ(ServerRequest(1).body, "b-body");
  EXPECT_EQ(ServerRequest(2).Header(":path"), "/c");
  EXPECT_EQ(codec_->active_streams(), 3u);
  // Answered out of order, their frames mixed.
  server_->Respond(Id(2), 200);
  server_->Respond(Id(0), 202);
  server_->SendData(Id(2), "C1");
  server_->Respond(Id(1), 203);
  server_->SendData(Id(0), "A1");
  server_->SendData(Id(1), "B1", true);
  server_->SendData(Id(2), "C2", true);
  Exchange();
  server_->SendData(Id(0), "A2", true);
  Exchange();
  EXPECT_EQ(a.headers->status, 202);
  EXPECT_EQ(b.headers->status, 203);
  EXPECT_EQ(c.headers->status, 200);
  EXPECT_EQ(a.body, "A1A2");
  EXPECT_EQ(b.body, "B1");
  EXPECT_EQ(c.body, "C1C2");
  EXPECT_TRUE(a.ended && b.ended && c.ended);
  EXPECT_EQ(callbacks_.streams_ended, 3);
  EXPECT_EQ(codec_->active_streams(), 0u);
}

TEST_F(Http2ClientCodecTest, ServerResetReachesTheStreamAsARemoteReset) {
  RecordedResponse& reset = Start(Get("/reset"));
  RecordedResponse& other = Start(Get("/other"));
  Exchange();
  server_->Respond(Id(0), 200);
  server_->SendData(Id(0), "partial");
  Exchange();
  server_->Reset(Id(0), NGHTTP2_INTERNAL_ERROR);
  Exchange();
  EXPECT_EQ(reset.reset, StreamResetReason::kRemoteReset);
  EXPECT_EQ(reset.body, "partial");
  EXPECT_FALSE(reset.ended);
  // The other stream goes on.
  server_->RespondOk(Id(1));
  Exchange();
  EXPECT_TRUE(other.ended);
  EXPECT_FALSE(other.reset.has_value());
  EXPECT_EQ(callbacks_.streams_ended, 2);
  EXPECT_TRUE(codec_->reusable());
  EXPECT_EQ(reset.late + other.late, 0);
}

TEST_F(Http2ClientCodecTest, RefusedStreamIsSafeToRetry) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Reset(Id(0), NGHTTP2_REFUSED_STREAM);
  Exchange();
  EXPECT_EQ(response.reset, StreamResetReason::kRemoteRefusedStreamReset);
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_TRUE(codec_->reusable());
}

TEST_F(Http2ClientCodecTest, AConnectionWhoseStreamIdsAreUsedUpTakesNoMoreRequests) {
  options_.last_stream_id = 3;
  MakeCodec();
  RecordedResponse& first = Start(Get("/1"));
  EXPECT_TRUE(codec_->reusable());
  RecordedResponse& second = Start(Get("/2"));
  EXPECT_FALSE(codec_->reusable()) << "ids 1 and 3 used: none left";
  Exchange();
  EXPECT_FALSE(first.reset.has_value());
  EXPECT_FALSE(second.reset.has_value());
  // Were it asked anyway, the request never leaves, and is safe to retry elsewhere.
  RecordedResponse& third = Start(Get("/3"));
  EXPECT_EQ(third.reset, StreamResetReason::kRemoteRefusedStreamReset);
  Exchange();
  EXPECT_EQ(server_->stream_ids.size(), 2u);
}

TEST_F(Http2ClientCodecTest, GoAwayRefusesTheStreamsAboveItsLastStreamId) {
  RecordedResponse& processed = Start(Get("/1"));
  RecordedResponse& refused = Start(Get("/2"));
  Exchange();
  ASSERT_EQ(server_->stream_ids.size(), 2u);
  server_->GoAway(Id(0));
  Exchange();
  EXPECT_EQ(callbacks_.goaways, 1);
  EXPECT_FALSE(codec_->reusable());
  EXPECT_EQ(refused.reset, StreamResetReason::kRemoteRefusedStreamReset);
  EXPECT_FALSE(processed.reset.has_value());
  EXPECT_EQ(codec_->active_streams(), 1u);
  // The processed stream completes.
  server_->RespondOk(Id(0), "done");
  Exchange();
  EXPECT_EQ(processed.body, "done");
  EXPECT_TRUE(processed.ended);
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_EQ(refused.late + processed.late, 0);
}

// A request whose HEADERS had not left (the connection was above its watermark) when GOAWAY
// came was never seen by the server: it is refused, so it can go elsewhere.
TEST_F(Http2ClientCodecTest, RequestQueuedWhenGoAwayArrivesIsRefused) {
  Exchange();
  codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
  RecordedResponse& queued = Start(Get());
  server_->GoAway(0);
  Exchange();
  EXPECT_EQ(callbacks_.goaways, 1);
  codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
  Exchange();
  EXPECT_TRUE(server_->stream_ids.empty());
  EXPECT_EQ(queued.reset, StreamResetReason::kRemoteRefusedStreamReset);
  EXPECT_EQ(codec_->active_streams(), 0u);
}

TEST_F(Http2ClientCodecTest, MaxConcurrentStreamsFollowsTheServersSettings) {
  options_.max_concurrent_streams = 50;
  MakeCodec("http", /*server_max_streams=*/10);
  EXPECT_EQ(codec_->max_concurrent_streams(), 50u) << "ours until the server has spoken";
  Exchange();
  EXPECT_EQ(codec_->max_concurrent_streams(), 10u);
  server_->SetMaxConcurrentStreams(2);
  Exchange();
  EXPECT_EQ(codec_->max_concurrent_streams(), 2u);
  server_->SetMaxConcurrentStreams(1000);
  Exchange();
  EXPECT_EQ(codec_->max_concurrent_streams(), 50u) << "capped by Http2Options";
}

TEST_F(Http2ClientCodecTest, ServerWithoutALimitGetsOurs) {
  options_.max_concurrent_streams = 7;
  MakeCodec();
  Exchange();
  EXPECT_EQ(codec_->max_concurrent_streams(), 7u);
}

// Back-pressure on the response: a read-disabled stream does not acknowledge its DATA, so
// the server can send one stream window and then waits.
TEST_F(Http2ClientCodecTest, ReadDisabledStreamWithholdsItsWindowUpdate) {
  options_.initial_stream_window_size = 65535;
  MakeCodec();
  RecordedResponse& held = Start(Get("/big"));
  RecordedResponse& free = Start(Get("/free"));
  Exchange();
  held.stream().ReadDisable(true);
  server_->Respond(Id(0), 200);
  server_->SendData(Id(0), std::string(4 * 65535, 'x'), true);
  Exchange();
  EXPECT_EQ(held.body.size(), 65535u) << "the held stream got more than one window";
  EXPECT_EQ(server_->SendWindow(Id(0)), 0);
  EXPECT_EQ(server_->Unsent(Id(0)), 3u * 65535);
  // The connection's window was acknowledged: another stream's data still flows.
  server_->Respond(Id(1), 200);
  server_->SendData(Id(1), std::string(65535, 'y'), true);
  Exchange();
  EXPECT_EQ(free.body.size(), 65535u);
  EXPECT_TRUE(free.ended);
  // Read again: the rest arrives.
  held.stream().ReadDisable(false);
  Exchange();
  EXPECT_EQ(held.body.size(), 4u * 65535);
  EXPECT_TRUE(held.ended);
}

// Back-pressure on the request: a body beyond the server's window waits in the stream, which
// raises its high watermark past the buffer limit and lowers it once drained.
TEST_F(Http2ClientCodecTest, RequestBodyBeyondTheServersWindowPushesBack) {
  options_.stream_buffer_limit = 100000;
  MakeCodec();
  server_->hold_window = true;  // The server reads nothing: our window closes at 64 KiB.
  Exchange();
  RecordedResponse& response = Start(Post(), /*end_stream=*/false);
  response.encoder->EncodeData(std::string(50000, 'a'), false);
  EXPECT_EQ(response.above, 0) << "under the limit";
  response.encoder->EncodeData(std::string(150000, 'b'), false);
  EXPECT_EQ(response.above, 1);
  Exchange();
  EXPECT_EQ(ServerRequest(0).body.size(), 65535u);
  EXPECT_EQ(response.below, 0);
  EXPECT_FALSE(codec_->requests_complete());
  server_->hold_window = false;
  server_->Consume(Id(0));
  Exchange();
  EXPECT_EQ(ServerRequest(0).body.size(), 200000u);
  EXPECT_EQ(response.below, 1);
  EXPECT_EQ(response.above, 1);
  response.encoder->EncodeData("", true);
  Exchange();
  EXPECT_TRUE(ServerRequest(0).ended);
  EXPECT_TRUE(codec_->requests_complete());
}

// RFC 9113 8.1: a server may answer before the request is complete; the codec then stops
// sending (RST_STREAM NO_ERROR) and the rest of the body goes nowhere.
TEST_F(Http2ClientCodecTest, ResponseCompleteBeforeTheRequestEndsTheStream) {
  RecordedResponse& response = Start(Post(), /*end_stream=*/false);
  response.encoder->EncodeData("part", false);
  Exchange();
  server_->Respond(Id(0), 413, {}, /*end=*/true);
  Exchange();
  EXPECT_EQ(response.headers->status, 413);
  EXPECT_TRUE(response.ended);
  EXPECT_TRUE(ServerRequest(0).reset);
  EXPECT_EQ(ServerRequest(0).reset_code, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  EXPECT_TRUE(codec_->requests_complete()) << "nothing more is to be sent";
  // Sending on (the encoder stays valid until the next Dispatch): nothing leaves, and the
  // decoder hears nothing more.
  response.encoder->EncodeData("more", false);
  HeaderMap trailers;
  trailers.Add("x-t", "1");
  response.encoder->EncodeTrailers(trailers);
  Exchange();
  EXPECT_EQ(ServerRequest(0).body, "part");
  EXPECT_TRUE(ServerRequest(0).trailers.empty());
  EXPECT_FALSE(response.reset.has_value());
  EXPECT_EQ(response.late, 0);
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_TRUE(codec_->reusable());
}

TEST_F(Http2ClientCodecTest, ResetStreamSendsCancel) {
  RecordedResponse& response = Start(Post(), /*end_stream=*/false);
  Exchange();
  response.stream().ResetStream();
  EXPECT_FALSE(response.reset.has_value()) << "the user's own reset is not reported back";
  EXPECT_TRUE(codec_->requests_complete());
  Exchange();
  EXPECT_TRUE(ServerRequest(0).reset);
  EXPECT_EQ(ServerRequest(0).reset_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_EQ(callbacks_.streams_ended, 1);
  // Whatever still comes for it is dropped.
  server_->Respond(Id(0), 200);
  Exchange();
  EXPECT_EQ(response.heads, 0);
  EXPECT_TRUE(codec_->reusable());
}

// A stream given up before its head was sent never reaches the server, and does not count
// against the connection's streams.
TEST_F(Http2ClientCodecTest, StreamResetBeforeItsHeadIsForgotten) {
  Exchange();
  RecordedResponse response;
  RequestEncoder& encoder = codec_->NewStream(response);
  encoder.stream().SetCallbacks(&response);
  EXPECT_EQ(codec_->active_streams(), 1u);
  encoder.stream().ResetStream();
  EXPECT_FALSE(response.reset.has_value());
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_TRUE(codec_->requests_complete());
  EXPECT_EQ(callbacks_.streams_ended, 1);
  Exchange();
  EXPECT_TRUE(server_->stream_ids.empty());
  EXPECT_TRUE(codec_->reusable());
}

TEST_F(Http2ClientCodecTest, ConnectionClosedResetsTheOpenStreams) {
  RecordedResponse& done = Start(Get("/done"));
  RecordedResponse& open = Start(Get("/open"));
  RecordedResponse& started = Start(Get("/started"));
  Exchange();
  server_->RespondOk(Id(0));
  server_->Respond(Id(2), 200);
  Exchange();
  EXPECT_FALSE(codec_->OnConnectionClosed()) << "HTTP/2 never delimits by the close";
  EXPECT_FALSE(done.reset.has_value());
  EXPECT_EQ(open.reset, StreamResetReason::kConnectionTermination);
  EXPECT_EQ(started.reset, StreamResetReason::kConnectionTermination);
  EXPECT_FALSE(codec_->reusable());
  EXPECT_EQ(done.late + open.late + started.late, 0);
}

TEST_F(Http2ClientCodecTest, GarbageFromTheServerIsAProtocolErrorThatResetsEveryStream) {
  RecordedResponse& a = Start(Get("/a"));
  RecordedResponse& b = Start(Post("/b"), /*end_stream=*/false);
  Exchange();
  server_->Respond(Id(0), 200);
  Exchange();
  // A frame header announcing a 16 MiB SETTINGS frame on stream 1: a connection error.
  std::string garbage("\xff\xff\xff\x04\x00\x00\x00\x00\x01garbage", 16);
  codec_->Dispatch(garbage.data(), garbage.size());
  EXPECT_EQ(callbacks_.protocol_errors, 1);
  EXPECT_EQ(callbacks_.protocol_error, "FRAME_SIZE_ERROR");
  EXPECT_EQ(a.reset, StreamResetReason::kConnectionTermination);
  EXPECT_EQ(b.reset, StreamResetReason::kConnectionTermination);
  EXPECT_FALSE(codec_->reusable());
  // The server hears why.
  std::string out = std::move(connection_.written);
  connection_.written.clear();
  server_->Receive(out);
  EXPECT_TRUE(server_->goaway);
  EXPECT_EQ(server_->goaway_code, static_cast<uint32_t>(NGHTTP2_FRAME_SIZE_ERROR));
  // Nothing more is heard, whatever comes next.
  b.encoder->EncodeData("x", true);
  codec_->Dispatch(garbage.data(), garbage.size());
  EXPECT_EQ(callbacks_.protocol_errors, 1);
  EXPECT_EQ(a.late + b.late, 0);
}

TEST_F(Http2ClientCodecTest, NoServerPrefaceIsAProtocolError) {
  RecordedResponse& response = Start(Get());
  std::string http1 = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
  codec_->Dispatch(http1.data(), http1.size());
  EXPECT_EQ(callbacks_.protocol_errors, 1);
  EXPECT_EQ(response.reset, StreamResetReason::kConnectionTermination);
}

TEST_F(Http2ClientCodecTest, ControlCharacterInAResponseHeaderResetsTheStream) {
  RecordedResponse& bad = Start(Get("/bad"));
  RecordedResponse& good = Start(Get("/good"));
  Exchange();
  server_->Respond(Id(0), 200,
                   {{"x-bad", std::string("a\x01"
                                          "b")}});
  server_->RespondOk(Id(1));
  Exchange();
  EXPECT_EQ(bad.heads, 0) << "the malformed head is not passed on";
  EXPECT_EQ(bad.reset, StreamResetReason::kProtocolError);
  EXPECT_TRUE(ServerRequest(0).reset);
  EXPECT_EQ(ServerRequest(0).reset_code, static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(good.ended) << "only that stream is reset";
  EXPECT_EQ(callbacks_.protocol_errors, 0);
  EXPECT_EQ(codec_->active_streams(), 0u);
  EXPECT_EQ(bad.late, 0);
}

TEST_F(Http2ClientCodecTest, ControlCharacterInResponseTrailersResetsTheStream) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Respond(Id(0), 200);
  server_->SendData(Id(0), "body");
  server_->SendTrailers(Id(0), {{"grpc-message", std::string("bad\x7f")}});
  Exchange();
  EXPECT_EQ(response.body, "body");
  EXPECT_EQ(response.reset, StreamResetReason::kProtocolError);
  EXPECT_FALSE(response.ended);
  EXPECT_EQ(response.late, 0);
}

// nghttp2 checks that :status has three digits, not that it is a status.
TEST_F(Http2ClientCodecTest, StatusBelow100IsMalformed) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->SendHeaderBlock(Id(0), {{":status", "099"}}, /*end=*/true);
  Exchange();
  EXPECT_EQ(response.heads, 0) << "status " << response.headers->status << " was passed on";
  EXPECT_EQ(response.reset, StreamResetReason::kProtocolError);
  EXPECT_EQ(ServerRequest(0).reset_code, static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
}

// What nghttp2 itself finds malformed (here a body shorter than its content-length) is the
// upstream's protocol error, not a reset by the upstream.
TEST_F(Http2ClientCodecTest, BodyShorterThanItsContentLengthIsAProtocolError) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->Respond(Id(0), 200, {{"content-length", "10"}});
  server_->SendData(Id(0), "abc", true);
  Exchange();
  EXPECT_EQ(response.headers->status, 200);
  EXPECT_FALSE(response.ended);
  EXPECT_EQ(response.reset, StreamResetReason::kProtocolError);
  EXPECT_EQ(ServerRequest(0).reset_code, static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_EQ(response.late, 0);
}

TEST_F(Http2ClientCodecTest, MissingStatusIsAProtocolError) {
  RecordedResponse& response = Start(Get());
  Exchange();
  server_->SendHeaderBlock(Id(0), {{"x-no-status", "1"}}, /*end=*/true);
  Exchange();
  EXPECT_EQ(response.heads, 0);
  EXPECT_EQ(response.reset, StreamResetReason::kProtocolError);
}

TEST_F(Http2ClientCodecTest, ConnectionAboveItsWatermarkGetsNoFrames) {
  Exchange();
  codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
  RecordedResponse& response = Start(Get());
  EXPECT_TRUE(connection_.written.empty());
  codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
  EXPECT_FALSE(connection_.written.empty());
  Exchange();
  server_->RespondOk(Id(0));
  Exchange();
  EXPECT_TRUE(response.ended);
}

}  // namespace
}  // namespace phoenix::http
