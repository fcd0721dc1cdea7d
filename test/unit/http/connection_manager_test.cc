#include "source/http/connection_manager.h"

#include <chrono>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/fakes/fake_codec.h"
#include "test/unit/fakes/fake_connection.h"
#include "test/unit/fakes/fake_worker_context.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::http {
namespace {

using fakes::FakeConnection;
using fakes::FakeServerConnection;
using fakes::MakeRequest;
using fakes::MakeResponse;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::Pointee;
using ::testing::Return;

// A route the connection manager only knows by name.
class FakeRoute : public Route {
 public:
  explicit FakeRoute(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  std::optional<bool> UpgradeEnabled(std::string_view type) const override {
    return type == "websocket" ? websocket : std::nullopt;
  }
  std::optional<bool> websocket;  // The route's upgrade_configs entry, if any.

 private:
  std::string name_;
};

// Stands for the listener's routing table: every request gets `route`.
class FakeRouteConfig : public RouteConfig {
 public:
  const Route* RouteFor(const RequestHeaders&) const override { return &route; }
  FakeRoute route{"default_route"};
};

// The routing table as a mock, where how often it is asked matters.
class MockRouteConfig : public RouteConfig {
 public:
  MOCK_METHOD(const Route*, RouteFor, (const RequestHeaders& request), (const, override));
};

// What one filter instance saw, kept after the filter is gone.
struct FilterTrace {
  std::string id;                           // "<filter name>#<n>": the n-th stream's instance.
  FilterCallbacks* callbacks = nullptr;     // Valid until `destroyed`.
  const RequestHeaders* request = nullptr;  // As the filter saw it; valid until `destroyed`.
  bool destroyed = false;
  std::string flags_at_destroy;  // The stream's response flags when it ended.
};

// A tiny filter for the chain under test. Writes each call it gets to a log shared by every
// filter (so the order across filters shows), and returns `decode_status` from DecodeHeaders:
// kStop makes it the end of the chain, holding the request as the router does, and the test
// answers through its callbacks.
class TracingFilter : public StreamFilter {
 public:
  TracingFilter(FilterTrace& trace, FilterStatus decode_status, std::vector<std::string>& log)
      : trace_(trace), decode_status_(decode_status), log_(log) {}

  void SetCallbacks(FilterCallbacks& callbacks) override {
    StreamFilter::SetCallbacks(callbacks);
    trace_.callbacks = &callbacks;
  }
  FilterStatus DecodeHeaders(RequestHeaders& headers, bool end_stream) override {
    trace_.request = &headers;
    Log("headers ", headers.path, end_stream ? " end" : "");
    return decode_status_;
  }
  FilterStatus DecodeData(std::string_view data, bool end_stream) override {
    Log("data ", data, end_stream ? " end" : "");
    return FilterStatus::kContinue;
  }
  FilterStatus DecodeTrailers(HeaderMap&) override {
    Log("trailers");
    return FilterStatus::kContinue;
  }
  void EncodeHeaders(ResponseHeaders& headers, bool end_stream) override {
    Log("encode-headers ", headers.status, end_stream ? " end" : "");
  }
  void OnDownstreamAboveWriteBufferHighWatermark() override { Log("above-watermark"); }
  void OnDownstreamBelowWriteBufferLowWatermark() override { Log("below-watermark"); }
  void OnDestroy() override {
    trace_.destroyed = true;
    trace_.flags_at_destroy = callbacks_->stream_info().response_flags;
  }

 private:
  template <typename... Parts>
  void Log(const Parts&... parts) {
    std::ostringstream line;
    line << trace_.id << " ";
    (line << ... << parts);
    log_.push_back(line.str());
  }

  FilterTrace& trace_;
  FilterStatus decode_status_;
  std::vector<std::string>& log_;
};

// Registers TracingFilter in ConnectionManagerConfig::filters under `name`.
class TracingFilterFactory : public FilterFactory {
 public:
  TracingFilterFactory(std::string name, FilterStatus decode_status,
                       std::deque<FilterTrace>& traces, std::vector<std::string>& log)
      : name_(std::move(name)), decode_status_(decode_status), traces_(traces), log_(log) {}

  std::unique_ptr<StreamFilter> Create() const override {
    traces_.push_back(FilterTrace{absl::StrCat(name_, "#", ++created_)});
    return std::make_unique<TracingFilter>(traces_.back(), decode_status_, log_);
  }

 private:
  std::string name_;
  FilterStatus decode_status_;
  std::deque<FilterTrace>& traces_;
  std::vector<std::string>& log_;
  mutable int created_ = 0;
};

class ConnectionManagerTest : public ::testing::Test {
 protected:
  using TestStream = FakeServerConnection::TestStream;

  ConnectionManagerTest() {
    config_->stat_prefix = "test";
    config_->codec_factory = std::make_shared<FakeServerConnection::Factory>();
    config_->route_config = route_config_;
    config_->stats = std::make_unique<ConnectionManagerStats>(stats_, "test");
    // The default chain: one filter that passes requests on, then one that keeps them (the
    // router's place), which the test answers through.
    AddFilter("first", FilterStatus::kContinue);
    AddFilter("router", FilterStatus::kStop);
  }

  ~ConnectionManagerTest() override {
    // Deferred deletes hold stats of this fixture: run them while it is alive.
    dispatcher_.RunPending();
    manager_.reset();
    dispatcher_.RunPending();
  }

  void AddFilter(std::string name, FilterStatus decode_status) {
    config_->filters.push_back(
        std::make_shared<TracingFilterFactory>(std::move(name), decode_status, traces_, log_));
  }

  // A downstream connection is accepted with the config built so far.
  void Connect() {
    listener_->config = config_;
    auto connection = std::make_unique<FakeConnection>();
    connection_ = connection.get();
    manager_ = std::make_unique<ConnectionManager>(worker_, listener_, std::move(connection));
    codec_ = FakeServerConnection::last();
    ASSERT_NE(codec_, nullptr);
    ASSERT_EQ(connection_->callbacks, manager_.get());
  }

  // A request head arrives on a new stream.
  TestStream& StartRequest(std::string path, bool end_stream = true) {
    TestStream& stream = codec_->NewStream();
    stream.decoder->DecodeHeaders(MakeRequest("GET", std::move(path)), end_stream);
    return stream;
  }

  // A WebSocket upgrade request arrives on a new stream (the codec says so in `upgrade`).
  TestStream& StartUpgrade(std::string path) {
    TestStream& stream = codec_->NewStream();
    auto request = MakeRequest("GET", std::move(path));
    request->upgrade = "websocket";
    stream.decoder->DecodeHeaders(std::move(request), /*end_stream=*/false);
    return stream;
  }

  // The trace of filter instance `id` ("router#1": the router of the first stream).
  FilterTrace& Trace(std::string_view id) {
    for (FilterTrace& trace : traces_) {
      if (trace.id == id) return trace;
    }
    ADD_FAILURE() << "no filter instance " << id;
    static FilterTrace none;
    return none;
  }

  // The terminal filter of stream `n` (1-based) answers 200 with `body`.
  void Respond(int n, std::string_view body = "ok") {
    FilterCallbacks& callbacks = *Trace(absl::StrCat("router#", n)).callbacks;
    callbacks.EncodeHeaders(MakeResponse(200), false);
    callbacks.EncodeData(body, true);
  }

  uint64_t CounterValue(std::string_view name) { return stats_.counter(name).Value(); }
  int64_t GaugeValue(std::string_view name) { return stats_.gauge(name).Value(); }

  fakes::TestDispatcher dispatcher_;
  StatsStore stats_;
  fakes::FakeWorkerContext worker_{dispatcher_};
  std::shared_ptr<FakeRouteConfig> route_config_ = std::make_shared<FakeRouteConfig>();
  std::shared_ptr<ConnectionManagerConfig> config_ = std::make_shared<ConnectionManagerConfig>();
  std::shared_ptr<ListenerState> listener_ = std::make_shared<ListenerState>();
  std::deque<FilterTrace> traces_;
  std::vector<std::string> log_;
  std::unique_ptr<ConnectionManager> manager_;
  FakeConnection* connection_ = nullptr;   // Owned by manager_.
  FakeServerConnection* codec_ = nullptr;  // Owned by manager_.
};

TEST_F(ConnectionManagerTest, RequestRunsThroughTheFiltersInOrder) {
  Connect();
  TestStream& stream = StartRequest("/a", /*end_stream=*/false);
  stream.decoder->DecodeData("abc", false);
  stream.decoder->DecodeTrailers(HeaderMap());

  EXPECT_THAT(log_, ElementsAre("first#1 headers /a", "router#1 headers /a", "first#1 data abc",
                                "router#1 data abc", "first#1 trailers", "router#1 trailers"));
  EXPECT_EQ(CounterValue("http.test.downstream_rq_total"), 1u);
  EXPECT_EQ(GaugeValue("http.test.downstream_rq_active"), 1);
  EXPECT_EQ(Trace("router#1").callbacks->stream_info().bytes_received, 3u);
}

TEST_F(ConnectionManagerTest, FiltersSeeForwardingHeadersAddedForThePeer) {
  Connect();
  StartRequest("/a");
  const HeaderMap& headers = Trace("first#1").request->headers;
  EXPECT_THAT(headers.Get("x-forwarded-for"), Pointee(std::string("127.0.0.1")));
  EXPECT_THAT(headers.Get("x-forwarded-proto"), Pointee(std::string("http")));
  ASSERT_NE(headers.Get("x-request-id"), nullptr);
  EXPECT_EQ(headers.Get("x-request-id")->size(), 36u);
  FilterCallbacks& callbacks = *Trace("router#1").callbacks;
  EXPECT_EQ(callbacks.downstream_address(), "127.0.0.1:1234");
  EXPECT_EQ(callbacks.stream_info().client_ip, "127.0.0.1");
  EXPECT_EQ(callbacks.route(), &route_config_->route);
  EXPECT_EQ(callbacks.stream_info().route_name, "default_route");
}

TEST_F(ConnectionManagerTest, LocalReplyIsEncodedThroughTheStreamEncoder) {
  Connect();
  TestStream& stream = StartRequest("/a");
  Trace("router#1").callbacks->SendLocalReply(403, "forbidden\n", "DENY");

  ASSERT_TRUE(stream.encoder.headers.has_value());
  EXPECT_EQ(stream.encoder.status(), 403);
  const HeaderMap& headers = stream.encoder.headers->headers;
  EXPECT_THAT(std::vector<HeaderMap::Entry>(headers.begin(), headers.end()),
              ElementsAre(Pair("content-type", "text/plain"), Pair("content-length", "10")));
  EXPECT_EQ(stream.encoder.body, "forbidden\n");
  EXPECT_TRUE(stream.encoder.ended);
  EXPECT_EQ(connection_->written, "") << "the manager writes through the codec only";
  // The response passes the filters' encode side in reverse order.
  EXPECT_THAT(log_, ElementsAre("first#1 headers /a end", "router#1 headers /a end",
                                "router#1 encode-headers 403", "first#1 encode-headers 403"));
  EXPECT_EQ(CounterValue("http.test.downstream_rq_4xx"), 1u);

  // The stream is over: its filters go after this event, the connection stays for the next.
  EXPECT_FALSE(Trace("router#1").destroyed);
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("first#1").destroyed);
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "DENY");
  EXPECT_EQ(GaugeValue("http.test.downstream_rq_active"), 0);
  EXPECT_FALSE(connection_->closed());
  EXPECT_EQ(codec_->resume_calls, 1) << "a keep-alive codec is resumed for the next request";
}

TEST_F(ConnectionManagerTest, ChainThatLetsTheRequestThroughAnswers404NoRoute) {
  config_->filters.pop_back();  // No terminal filter.
  Connect();
  TestStream& stream = StartRequest("/a");
  EXPECT_EQ(stream.encoder.status(), 404);
  EXPECT_TRUE(stream.encoder.ended);
  EXPECT_EQ(stream.encoder.body, "");
  EXPECT_EQ(CounterValue("http.test.no_route"), 1u);
  dispatcher_.RunPending();
  EXPECT_EQ(Trace("first#1").flags_at_destroy, "NR");
}

TEST_F(ConnectionManagerTest, UnsafePathIsRejectedBeforeAnyFilter) {
  Connect();
  TestStream& stream = StartRequest("/a/..%2F..%2Fetc");
  EXPECT_EQ(stream.encoder.status(), 400);
  EXPECT_EQ(CounterValue("http.test.downstream_rq_invalid_path"), 1u);
  EXPECT_THAT(log_, ElementsAre("router#1 encode-headers 400", "first#1 encode-headers 400"));
}

TEST(ConnectionManagerRouteTest, RouteIsResolvedOnceThroughTheRouteConfig) {
  fakes::TestDispatcher dispatcher;
  StatsStore stats;
  fakes::FakeWorkerContext worker(dispatcher);
  auto route_config = std::make_shared<MockRouteConfig>();
  FakeRoute route("r1");
  EXPECT_CALL(*route_config, RouteFor(Field(&RequestHeaders::path, "/normalized/b")))
      .WillOnce(Return(&route));

  std::deque<FilterTrace> traces;
  std::vector<std::string> log;
  auto config = std::make_shared<ConnectionManagerConfig>();
  config->codec_factory = std::make_shared<FakeServerConnection::Factory>();
  config->route_config = route_config;
  config->stats = std::make_unique<ConnectionManagerStats>(stats, "test");
  config->filters.push_back(
      std::make_shared<TracingFilterFactory>("router", FilterStatus::kStop, traces, log));
  auto listener = std::make_shared<ListenerState>();
  listener->config = config;
  {
    ConnectionManager manager(worker, listener, std::make_unique<FakeConnection>());
    // The route is picked on the normalized path.
    FakeServerConnection::last()->NewStream().decoder->DecodeHeaders(
        MakeRequest("GET", "/normalized/./a/../b"), true);
    FilterCallbacks& callbacks = *traces.front().callbacks;
    EXPECT_EQ(callbacks.route(), &route);
    EXPECT_EQ(callbacks.route(), &route);
    EXPECT_EQ(callbacks.stream_info().route_name, "r1");
  }
  dispatcher.RunPending();
}

TEST_F(ConnectionManagerTest, ConcurrentStreamsAreIndependent) {
  Connect();
  TestStream& first = StartRequest("/first", /*end_stream=*/false);
  TestStream& second = StartRequest("/second");
  Respond(2, "second body");

  EXPECT_EQ(second.encoder.status(), 200);
  EXPECT_EQ(second.encoder.body, "second body");
  EXPECT_TRUE(second.encoder.ended);
  EXPECT_FALSE(first.encoder.headers.has_value());
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("router#2").destroyed);
  EXPECT_FALSE(Trace("router#1").destroyed);
  EXPECT_EQ(GaugeValue("http.test.downstream_rq_active"), 1);

  // The first stream goes on as if the second had never been.
  log_.clear();
  first.decoder->DecodeData("rest", true);
  EXPECT_THAT(log_, ElementsAre("first#1 data rest end", "router#1 data rest end"));
  Respond(1, "first body");
  EXPECT_EQ(first.encoder.body, "first body");
  EXPECT_TRUE(first.encoder.ended);
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "");
  EXPECT_FALSE(connection_->closed());
  EXPECT_EQ(CounterValue("http.test.downstream_rq_2xx"), 2u);
}

TEST_F(ConnectionManagerTest, ResettingOneStreamLeavesTheOther) {
  Connect();
  TestStream& first = StartRequest("/first");
  TestStream& second = StartRequest("/second");
  Trace("router#1").callbacks->ResetStream();

  EXPECT_EQ(first.encoder.fake_stream.resets, 1) << "reset through the codec's stream";
  EXPECT_EQ(second.encoder.fake_stream.resets, 0);
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "UR");
  EXPECT_FALSE(Trace("router#2").destroyed);
  EXPECT_FALSE(connection_->closed()) << "the codec decides what a stream reset costs";

  Respond(2);
  EXPECT_TRUE(second.encoder.ended);
}

TEST_F(ConnectionManagerTest, RemoteCloseResetsEveryStream) {
  Connect();
  StartRequest("/first");
  TestStream& second = StartRequest("/second");
  // A third stream completed before the close is not affected.
  StartRequest("/done");
  Respond(3);
  dispatcher_.RunPending();

  connection_->callbacks->OnEvent(network::ConnectionEvent::kRemoteClose);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAtOnce);
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_TRUE(Trace("router#2").destroyed);
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "DC");
  EXPECT_EQ(Trace("router#2").flags_at_destroy, "DC");
  EXPECT_EQ(Trace("router#3").flags_at_destroy, "");
  EXPECT_FALSE(second.encoder.headers.has_value());
  EXPECT_EQ(GaugeValue("http.test.downstream_rq_active"), 0);
  EXPECT_THAT(worker_.closed_connections, ElementsAre(manager_.get()));
}

TEST_F(ConnectionManagerTest, ProtocolErrorClosesTheConnection) {
  Connect();
  StartRequest("/in-flight");
  codec_->callbacks.OnProtocolError(400, "bad header", /*answered=*/true);

  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush)
      << "the codec's answer goes out first";
  EXPECT_EQ(CounterValue("http.test.downstream_cx_protocol_error"), 1u);
  dispatcher_.RunPending();
  // The stream counts (and logs) its 400 as it goes.
  EXPECT_EQ(CounterValue("http.test.downstream_rq_4xx"), 1u);
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_THAT(worker_.closed_connections, ElementsAre(manager_.get()));
}

TEST_F(ConnectionManagerTest, DrainOfAnIdleConnectionShutsDownTheCodecAndCloses) {
  Connect();
  manager_->StartDrain();
  EXPECT_EQ(codec_->shutdown_calls, 1);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush);
  dispatcher_.RunPending();
  EXPECT_THAT(worker_.closed_connections, ElementsAre(manager_.get()));
}

TEST_F(ConnectionManagerTest, DrainWaitsForTheStreamsInFlight) {
  Connect();
  TestStream& first = StartRequest("/first");
  StartRequest("/second");
  manager_->StartDrain();
  EXPECT_EQ(codec_->shutdown_calls, 1) << "no new streams (HTTP/2 GOAWAY, HTTP/1 close)";
  EXPECT_FALSE(connection_->closed());

  Respond(1);
  EXPECT_TRUE(first.encoder.ended);
  EXPECT_FALSE(connection_->closed()) << "one stream is still in flight";
  Respond(2);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush);
}

TEST_F(ConnectionManagerTest, DrainWaitsForAPartlyReceivedRequest) {
  Connect();
  codec_->is_idle = false;  // Part of a request head is in.
  manager_->StartDrain();
  EXPECT_EQ(codec_->shutdown_calls, 1);
  EXPECT_FALSE(connection_->closed());
}

TEST_F(ConnectionManagerTest, WorkerDrainShutsDownTheCodecAsAResponseStarts) {
  Connect();
  StartRequest("/a");
  worker_.is_draining = true;
  FilterCallbacks& callbacks = *Trace("router#1").callbacks;
  callbacks.EncodeHeaders(MakeResponse(200), false);
  EXPECT_EQ(codec_->shutdown_calls, 1);
  callbacks.EncodeData("x", true);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush);
}

TEST_F(ConnectionManagerTest, NoKeepAliveClosesAfterTheLastStream) {
  Connect();
  StartRequest("/first");
  StartRequest("/second");
  codec_->allow_keep_alive = false;  // E.g. the request said "connection: close".
  Respond(1);
  EXPECT_FALSE(connection_->closed());
  Respond(2);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush);
  dispatcher_.RunPending();
  EXPECT_EQ(codec_->resume_calls, 0);
  EXPECT_THAT(worker_.closed_connections, ElementsAre(manager_.get()));
}

TEST_F(ConnectionManagerTest, DiscardableCodecIsDroppedBetweenRequestsAndMadeAgain) {
  Connect();
  StartRequest("/a");
  codec_->is_discardable = true;
  Respond(1);
  dispatcher_.RunPending();
  EXPECT_EQ(FakeServerConnection::last(), nullptr) << "an idle connection holds no codec";

  connection_->callbacks->OnData("GET", 3);
  ASSERT_NE(FakeServerConnection::last(), nullptr);
  EXPECT_EQ(FakeServerConnection::last()->dispatched, "GET");
}

TEST_F(ConnectionManagerTest, WatermarksReachEveryFilterOfEveryStream) {
  Connect();
  StartRequest("/first");
  StartRequest("/second");
  log_.clear();
  connection_->callbacks->OnAboveWriteBufferHighWatermark();
  connection_->callbacks->OnBelowWriteBufferLowWatermark();
  EXPECT_THAT(log_, ElementsAre("first#1 above-watermark", "router#1 above-watermark",
                                "first#2 above-watermark", "router#2 above-watermark",
                                "first#1 below-watermark", "router#1 below-watermark",
                                "first#2 below-watermark", "router#2 below-watermark"));
}

TEST_F(ConnectionManagerTest, PausedRequestIsBufferedUntilContinueDecoding) {
  config_->filters.clear();
  AddFilter("gate", FilterStatus::kStop);  // Holds the request, e.g. waiting for a slot.
  AddFilter("router", FilterStatus::kStop);
  config_->buffer_limit = 4;
  Connect();
  TestStream& stream = StartRequest("/a", /*end_stream=*/false);
  stream.decoder->DecodeData("abc", false);
  EXPECT_FALSE(stream.encoder.fake_stream.read_disabled);
  stream.decoder->DecodeData("def", true);
  EXPECT_TRUE(stream.encoder.fake_stream.read_disabled) << "more than buffer_limit is held";
  EXPECT_THAT(log_, ElementsAre("gate#1 headers /a"));

  Trace("gate#1").callbacks->ContinueDecoding();
  EXPECT_THAT(log_, ElementsAre("gate#1 headers /a", "router#1 headers /a",
                                "gate#1 data abcdef end", "router#1 data abcdef end"));
  EXPECT_FALSE(stream.encoder.fake_stream.read_disabled);
}

// The two timeouts run on real (1 ms) timers of the loop; the test waits on the loop, which
// wakes when the timer is due.
TEST_F(ConnectionManagerTest, SlowRequestHeadAnswers408) {
  config_->request_headers_timeout = std::chrono::milliseconds(1);
  Connect();
  codec_->is_idle = false;
  // A first byte, but no complete head.
  codec_->on_dispatch = [&] { codec_->callbacks.OnRequestBegin(); };
  connection_->callbacks->OnData("G", 1);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return connection_->closed(); }));
  EXPECT_THAT(codec_->local_errors, ElementsAre(408));
  EXPECT_EQ(CounterValue("http.test.downstream_rq_timeout"), 1u);
  EXPECT_EQ(connection_->close_type, FakeConnection::CloseType::kAfterFlush);
}

TEST_F(ConnectionManagerTest, AStreamWithNothingMovingTimesOut) {
  config_->stream_idle_timeout = std::chrono::milliseconds(1);
  Connect();
  TestStream& quiet = StartRequest("/quiet");
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return quiet.encoder.ended; }));
  EXPECT_EQ(quiet.encoder.status(), 408);
  EXPECT_EQ(CounterValue("http.test.downstream_rq_idle_timeout"), 1u);
  dispatcher_.RunPending();
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "SI");
  EXPECT_FALSE(connection_->is_closed) << "only the stream ends";
}

// A head that completes in the read that began it never starts the headers timeout: once
// its response is done, the connection waits on the idle timeout. Only one of the two is
// ever armed, so which one ends the connection does not depend on their durations.
TEST_F(ConnectionManagerTest, HeadAnsweredInItsOwnReadLeavesTheIdleTimeout) {
  config_->request_headers_timeout = std::chrono::milliseconds(1);
  config_->idle_timeout = std::chrono::milliseconds(1);
  AddFilter("router", FilterStatus::kStop);
  Connect();
  codec_->on_dispatch = [&] {
    StartRequest("/a");
    Respond(1);
  };
  connection_->callbacks->OnData("GET /a ...", 10);
  codec_->is_idle = false;  // A 408 would be sent if the headers timeout fired.
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return connection_->closed(); }));
  EXPECT_THAT(codec_->local_errors, IsEmpty());
  EXPECT_EQ(CounterValue("http.test.downstream_rq_timeout"), 0u);
  EXPECT_EQ(CounterValue("http.test.downstream_cx_idle_timeout"), 1u);
}

TEST_F(ConnectionManagerTest, IdleConnectionTimesOut) {
  config_->idle_timeout = std::chrono::milliseconds(1);
  Connect();
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return connection_->closed(); }));
  EXPECT_THAT(codec_->local_errors, IsEmpty());
  EXPECT_EQ(CounterValue("http.test.downstream_cx_idle_timeout"), 1u);
}

TEST_F(ConnectionManagerTest, AClientResetEndsOnlyItsStream) {
  Connect();
  TestStream& first = StartRequest("/first", /*end_stream=*/false);
  TestStream& second = StartRequest("/second", /*end_stream=*/false);
  ASSERT_NE(first.encoder.fake_stream.callbacks, nullptr);
  first.encoder.fake_stream.callbacks->OnResetStream(StreamResetReason::kRemoteReset);
  dispatcher_.RunPending();
  EXPECT_TRUE(Trace("router#1").destroyed);
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "DC");
  EXPECT_FALSE(Trace("router#2").destroyed);
  // An answer racing the reset goes nowhere; the other stream is untouched.
  Trace("router#1").callbacks = nullptr;
  second.decoder->DecodeData("x", true);
  Respond(2, "second");
  EXPECT_FALSE(first.encoder.headers.has_value());
  EXPECT_EQ(second.encoder.body, "second");
  EXPECT_FALSE(connection_->is_closed);
}

TEST_F(ConnectionManagerTest, BackPressureIsPerStream) {
  Connect();
  TestStream& first = StartRequest("/first", /*end_stream=*/false);
  TestStream& second = StartRequest("/second", /*end_stream=*/false);
  Trace("router#1").callbacks->ReadDisableDownstream(true);
  EXPECT_TRUE(first.encoder.fake_stream.read_disabled);
  EXPECT_FALSE(second.encoder.fake_stream.read_disabled);
  EXPECT_FALSE(connection_->read_disabled);
  // A stream's own watermark reaches only its filters.
  log_.clear();
  second.encoder.fake_stream.callbacks->OnAboveWriteBufferHighWatermark();
  EXPECT_THAT(log_, ElementsAre("first#2 above-watermark", "router#2 above-watermark"));
}

// A detecting listener: the codec is made once the first bytes tell the protocol, and the
// bytes held until then reach it.
class DetectingFactory : public ServerCodecFactory {
 public:
  bool detects() const override { return true; }
  const ServerCodecFactory* Detect(std::string_view first_bytes) const override {
    return first_bytes.size() < 3 ? nullptr : &fake_;
  }
  std::unique_ptr<ServerConnection> Create(network::Connection&,
                                           ServerConnectionCallbacks&) const override {
    return nullptr;
  }

 private:
  FakeServerConnection::Factory fake_;
};

TEST(ConnectionManagerDetectionTest, TheCodecIsChosenByTheFirstBytes) {
  fakes::TestDispatcher dispatcher;
  StatsStore stats;
  fakes::FakeWorkerContext worker(dispatcher);
  auto config = std::make_shared<ConnectionManagerConfig>();
  config->codec_factory = std::make_shared<DetectingFactory>();
  config->route_config = std::make_shared<MockRouteConfig>();
  config->stats = std::make_unique<ConnectionManagerStats>(stats, "test");
  auto listener = std::make_shared<ListenerState>();
  listener->config = config;
  {
    auto connection = std::make_unique<FakeConnection>();
    FakeConnection* raw = connection.get();
    ConnectionManager manager(worker, listener, std::move(connection));
    EXPECT_EQ(FakeServerConnection::last(), nullptr) << "no codec before the first bytes";
    raw->callbacks->OnData("a", 1);
    EXPECT_EQ(FakeServerConnection::last(), nullptr) << "one byte does not tell";
    raw->callbacks->OnData("bcd", 3);
    ASSERT_NE(FakeServerConnection::last(), nullptr);
    EXPECT_EQ(FakeServerConnection::last()->dispatched, "abcd");
    EXPECT_EQ(stats.counter("http.test.downstream_cx_http2_total").Value(), 1u);
  }
  dispatcher.RunPending();
}

TEST_F(ConnectionManagerTest, UpgradeNobodyAllowsIsRefused403BeforeAnyFilter) {
  Connect();
  TestStream& stream = StartUpgrade("/chat");
  EXPECT_EQ(stream.encoder.status(), 403);
  EXPECT_TRUE(stream.encoder.ended);
  // No filter decodes a refused upgrade; the answer passes their encode side as any does.
  EXPECT_THAT(log_, ElementsAre("router#1 encode-headers 403", "first#1 encode-headers 403"));
  EXPECT_EQ(CounterValue("http.test.downstream_rq_ws_on_non_ws_route"), 1u);
  EXPECT_EQ(CounterValue("http.test.downstream_cx_upgrades_total"), 0u);
}

TEST_F(ConnectionManagerTest, AllowedUpgradeIsCountedWhileItsTunnelLasts) {
  config_->upgrade_types = {"websocket"};
  Connect();
  TestStream& stream = StartUpgrade("/chat");
  EXPECT_THAT(log_, ElementsAre("first#1 headers /chat", "router#1 headers /chat"));
  EXPECT_EQ(CounterValue("http.test.downstream_cx_upgrades_total"), 1u);
  EXPECT_EQ(GaugeValue("http.test.downstream_cx_upgrades_active"), 1);
  FilterCallbacks& router = *Trace("router#1").callbacks;
  router.EncodeHeaders(MakeResponse(101), false);
  stream.decoder->DecodeData("ping", false);
  router.EncodeData("pong", false);
  EXPECT_EQ(stream.encoder.status(), 101);
  EXPECT_EQ(stream.encoder.body, "pong");
  EXPECT_EQ(Trace("router#1").callbacks->stream_info().bytes_received, 4u);
  router.EncodeData("", true);  // The upstream closed the tunnel.
  dispatcher_.RunPending();
  EXPECT_EQ(GaugeValue("http.test.downstream_cx_upgrades_active"), 0);
  EXPECT_EQ(CounterValue("http.test.downstream_rq_1xx"), 1u);
}

TEST_F(ConnectionManagerTest, RouteUpgradeConfigOverridesTheConnectionManager) {
  config_->upgrade_types = {"websocket"};
  route_config_->route.websocket = false;
  Connect();
  EXPECT_EQ(StartUpgrade("/off").encoder.status(), 403);
  route_config_->route.websocket = true;
  config_->upgrade_types.clear();
  dispatcher_.RunPending();
  EXPECT_EQ(StartUpgrade("/on").encoder.status(), 0);
  EXPECT_EQ(CounterValue("http.test.downstream_cx_upgrades_total"), 1u);
}

TEST_F(ConnectionManagerTest, AnIdleTunnelIsResetByTheStreamIdleTimeout) {
  config_->upgrade_types = {"websocket"};
  config_->stream_idle_timeout = std::chrono::milliseconds(5);
  Connect();
  TestStream& stream = StartUpgrade("/chat");
  FilterCallbacks& router = *Trace("router#1").callbacks;
  router.EncodeHeaders(MakeResponse(101), false);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return stream.encoder.fake_stream.resets > 0; }));
  EXPECT_EQ(CounterValue("http.test.downstream_rq_idle_timeout"), 1u);
  dispatcher_.RunPending();
  EXPECT_EQ(Trace("router#1").flags_at_destroy, "SI,UR");
  EXPECT_EQ(GaugeValue("http.test.downstream_cx_upgrades_active"), 0);
}

}  // namespace
}  // namespace phoenix::http
