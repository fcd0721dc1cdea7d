#include "source/router/router_filter.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/router/route_table.h"
#include "source/upstream/cluster_manager.h"
#include "test/unit/fakes/fake_codec.h"
#include "test/unit/fakes/fake_conn_pool.h"
#include "test/unit/fakes/fake_filter_callbacks.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::router {
namespace {

using fakes::FakeConnectionPool;
using fakes::MakeRequest;
using PoolFailure = upstream::PoolCallbacks::Failure;
using StreamRequest = FakeConnectionPool::StreamRequest;
using ::testing::ElementsAre;
using ::testing::Pointee;

// Two hosts, so a retry has somewhere else to go.
constexpr char kCluster[] = R"(
name: backend
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
    - endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 80}}}
)";

constexpr char kRoutes[] = R"(
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - name: plain
    match: {prefix: /plain}
    route: {cluster: backend}
  - name: retry
    match: {prefix: /retry}
    route: {cluster: backend, retry_policy: {retry_on: 5xx, num_retries: 1}}
  - name: connect_retry
    match: {prefix: /connect-retry}
    route: {cluster: backend, retry_policy: {retry_on: connect-failure, num_retries: 1}}
  - name: per_try
    match: {prefix: /per-try}
    route:
      cluster: backend
      retry_policy: {retry_on: reset, num_retries: 1, per_try_timeout: 1ms}
  - name: slow
    match: {prefix: /slow}
    route: {cluster: backend, timeout: 1ms}
  - name: nowhere
    match: {prefix: /nowhere}
    route: {cluster: nowhere}
  - name: direct
    match: {prefix: /direct}
    direct_response: {status: 204}
)";

template <typename Proto>
Proto Load(const char* yaml) {
  Proto proto;
  absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
  EXPECT_TRUE(status.ok()) << status;
  return proto;
}

class RouterFilterTest : public ::testing::Test {
 protected:
  RouterFilterTest() {
    config::ConfigErrors errors;
    route_table_ =
        std::make_unique<RouteTable>(Load<config::v1::RouteConfiguration>(kRoutes), "", errors);
    EXPECT_TRUE(errors.empty());
    UseCluster(kCluster);
    upstream::ClusterManager::SetForThisThread(&cluster_manager_);
    router_->SetCallbacks(callbacks_);
  }

  ~RouterFilterTest() override {
    router_.reset();
    upstream::ClusterManager::SetForThisThread(nullptr);
  }

  // The cluster "backend" is (re)defined by `yaml`.
  void UseCluster(const char* yaml) {
    config::ConfigErrors errors;
    cluster_ = upstream::ClusterInfo::Create(Load<config::v1::Cluster>(yaml), stats_, "", errors);
    ASSERT_NE(cluster_, nullptr);
    pools_.clear();  // A new definition gets a new ThreadLocalCluster, so new pools.
    cluster_manager_.Update({{"backend", cluster_}});
  }

  // The request head for `path` reaches the router (with a body to follow unless
  // `end_stream`).
  http::FilterStatus Send(const std::string& path, bool end_stream = true) {
    request_ = *MakeRequest("GET", path);
    callbacks_.set_route(route_table_->RouteFor(request_));
    return router_->DecodeHeaders(request_, end_stream);
  }

  // The pool of the host the current attempt went to.
  FakeConnectionPool& CurrentPool() {
    for (FakeConnectionPool* pool : pools_) {
      if (pool->host().address_string() == callbacks_.info.upstream_host) return *pool;
    }
    ADD_FAILURE() << "no pool for '" << callbacks_.info.upstream_host << "'";
    if (pools_.empty()) std::abort();  // Nothing sensible to go on with.
    return *pools_.front();
  }

  // Requests for a stream, over every pool.
  size_t StreamRequests() const {
    size_t total = 0;
    for (const FakeConnectionPool* pool : pools_) total += pool->requests.size();
    return total;
  }

  uint64_t CounterValue(const std::string& name) {
    return stats_.counter("cluster.backend." + name).Value();
  }
  int64_t GaugeValue(const std::string& name) {
    return stats_.gauge("cluster.backend." + name).Value();
  }

  fakes::TestDispatcher dispatcher_;
  StatsStore stats_;
  std::shared_ptr<const upstream::ClusterInfo> cluster_;
  std::unique_ptr<RouteTable> route_table_;
  std::vector<FakeConnectionPool*> pools_;  // Owned by the cluster manager's clusters.
  // Every host's pool is a fake, through the cluster manager's pool factory.
  upstream::ClusterManager cluster_manager_{dispatcher_, [this](upstream::Host& host) {
                                              auto pool =
                                                  std::make_unique<FakeConnectionPool>(host);
                                              pools_.push_back(pool.get());
                                              return pool;
                                            }};
  http::RequestHeaders request_;
  fakes::FakeFilterCallbacks callbacks_{dispatcher_};
  std::unique_ptr<RouterFilter> router_ = std::make_unique<RouterFilter>();
};

TEST_F(RouterFilterTest, RequestIsEncodedOnThePoolStreamAndTheResponseGoesDownstream) {
  EXPECT_EQ(Send("/plain", /*end_stream=*/false), http::FilterStatus::kStop);
  ASSERT_EQ(StreamRequests(), 1u);
  // Body that arrives before the stream is ready waits for it.
  router_->DecodeData("hello", true);
  StreamRequest& upstream = CurrentPool().Ready();

  ASSERT_TRUE(upstream.encoder.headers.has_value());
  EXPECT_EQ(upstream.encoder.headers->path, "/plain");
  EXPECT_EQ(upstream.encoder.headers->headers.Get("x-phoenix-attempt-count"), nullptr)
      << "only with a retry policy";
  EXPECT_EQ(upstream.encoder.body, "hello");
  EXPECT_TRUE(upstream.encoder.ended);
  EXPECT_NE(upstream.encoder.fake_stream.callbacks, nullptr);

  upstream.Respond(200, /*end_stream=*/false);
  EXPECT_EQ(callbacks_.status(), 200);
  EXPECT_FALSE(callbacks_.ended);
  upstream.decoder->DecodeData("world", true);
  EXPECT_EQ(callbacks_.body, "world");
  EXPECT_TRUE(callbacks_.ended);
  EXPECT_EQ(callbacks_.local_reply_status, 0);
  EXPECT_EQ(upstream.encoder.fake_stream.resets, 0) << "a complete exchange keeps its connection";
  EXPECT_EQ(upstream.encoder.fake_stream.callbacks, nullptr);

  EXPECT_EQ(CounterValue("upstream_rq_total"), 1u);
  EXPECT_EQ(CounterValue("upstream_rq_2xx"), 1u);
  EXPECT_EQ(GaugeValue("upstream_rq_active"), 0);
  EXPECT_EQ(cluster_->breakers().requests.count(), 0u);
}

TEST_F(RouterFilterTest, BodyAndTrailersAfterTheStreamIsReadyGoStraightUpstream) {
  Send("/plain", /*end_stream=*/false);
  StreamRequest& upstream = CurrentPool().Ready();
  EXPECT_FALSE(upstream.encoder.ended);
  router_->DecodeData("a", false);
  router_->DecodeData("b", false);
  EXPECT_EQ(upstream.encoder.body, "ab");
  http::HeaderMap trailers;
  trailers.Add("x-checksum", "1");
  router_->DecodeTrailers(trailers);
  ASSERT_TRUE(upstream.encoder.trailers.has_value());
  EXPECT_TRUE(upstream.encoder.ended);
}

TEST_F(RouterFilterTest, Retriable503RetriesOnAnotherHostAndResetsTheFirstStream) {
  Send("/retry", /*end_stream=*/false);
  router_->DecodeData("payload", true);
  FakeConnectionPool& first_pool = CurrentPool();
  StreamRequest& first = first_pool.Ready();
  EXPECT_THAT(first.encoder.headers->headers.Get("x-phoenix-attempt-count"),
              Pointee(std::string("1")));

  first.Respond(503, /*end_stream=*/true);
  EXPECT_EQ(first.encoder.fake_stream.resets, 1);
  EXPECT_EQ(callbacks_.headers, nullptr) << "a retried response is not passed on";
  EXPECT_EQ(StreamRequests(), 1u) << "the retry waits for its back-off";

  dispatcher_.RunPending();  // Random() is 0: no back-off.
  ASSERT_EQ(StreamRequests(), 2u);
  FakeConnectionPool& second_pool = CurrentPool();
  EXPECT_NE(&second_pool, &first_pool);
  StreamRequest& second = second_pool.Ready();
  EXPECT_THAT(second.encoder.headers->headers.Get("x-phoenix-attempt-count"),
              Pointee(std::string("2")));
  EXPECT_EQ(second.encoder.body, "payload") << "the body is replayed";
  EXPECT_TRUE(second.encoder.ended);

  second.Respond(200, /*end_stream=*/true);
  EXPECT_EQ(callbacks_.status(), 200);
  EXPECT_TRUE(callbacks_.ended);
  EXPECT_EQ(CounterValue("upstream_rq_retry"), 1u);
  EXPECT_EQ(CounterValue("upstream_rq_5xx"), 1u);
  EXPECT_EQ(cluster_->breakers().retries.count(), 0u);
  EXPECT_EQ(cluster_->breakers().requests.count(), 0u);
}

TEST_F(RouterFilterTest, RetriesExhaustedPassTheLastResponseOn) {
  Send("/retry");
  CurrentPool().Ready().Respond(503, true);
  dispatcher_.RunPending();
  StreamRequest& second = CurrentPool().Ready();
  second.Respond(503, /*end_stream=*/false);
  EXPECT_EQ(callbacks_.status(), 503);
  EXPECT_EQ(callbacks_.local_reply_status, 0) << "the upstream's own 503";
  second.decoder->DecodeData("busy", true);
  EXPECT_EQ(callbacks_.body, "busy");
  EXPECT_EQ(StreamRequests(), 2u);
}

TEST_F(RouterFilterTest, PoolOverflowAnswers503OverloadedWithoutRetrying) {
  Send("/retry");
  CurrentPool().Fail(PoolFailure::kOverflow);
  EXPECT_EQ(callbacks_.status(), 503);
  EXPECT_EQ(callbacks_.header("x-phoenix-overloaded"), "true");
  EXPECT_EQ(callbacks_.body, "overloaded\n");
  EXPECT_TRUE(callbacks_.ended);
  EXPECT_EQ(callbacks_.info.response_flags, "UO");
  EXPECT_EQ(CounterValue("upstream_rq_overflow"), 1u);
  EXPECT_EQ(cluster_->breakers().requests.count(), 0u);
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 1u);
}

TEST_F(RouterFilterTest, MaxRequestsBreakerAnswersOverloadedWithoutAskingThePool) {
  UseCluster(R"(
name: backend
circuit_breakers: {max_requests: 1}
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
)");
  Send("/plain");  // Holds the only request slot.
  ASSERT_EQ(StreamRequests(), 1u);

  fakes::FakeFilterCallbacks other_callbacks(dispatcher_);
  other_callbacks.set_route(route_table_->RouteFor(request_));
  RouterFilter other;
  other.SetCallbacks(other_callbacks);
  http::RequestHeaders other_request = *MakeRequest("GET", "/plain");
  other.DecodeHeaders(other_request, true);
  EXPECT_EQ(other_callbacks.status(), 503);
  EXPECT_EQ(other_callbacks.header("x-phoenix-overloaded"), "true");
  EXPECT_EQ(other_callbacks.info.response_flags, "UO");
  EXPECT_EQ(StreamRequests(), 1u);
}

TEST_F(RouterFilterTest, ConnectFailureWithRetriesExhaustedAnswers503UpstreamFailure) {
  Send("/connect-retry");
  FakeConnectionPool& first_pool = CurrentPool();
  first_pool.Fail(PoolFailure::kConnectFailed);
  EXPECT_EQ(callbacks_.headers, nullptr);
  dispatcher_.RunPending();
  ASSERT_EQ(StreamRequests(), 2u);
  EXPECT_NE(&CurrentPool(), &first_pool);
  CurrentPool().Fail(PoolFailure::kConnectFailed);

  EXPECT_EQ(callbacks_.local_reply_status, 503);
  EXPECT_EQ(callbacks_.body, "upstream connect error\n");
  EXPECT_EQ(callbacks_.info.response_flags, "URX,UF");
  EXPECT_EQ(CounterValue("upstream_rq_reset"), 2u) << "each failure is reported for the host";
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 2u);
}

TEST_F(RouterFilterTest, ConnectTimeoutIsCountedAndAnswered503) {
  Send("/plain");
  CurrentPool().Fail(PoolFailure::kTimeout);
  EXPECT_EQ(callbacks_.local_reply_status, 503);
  EXPECT_EQ(callbacks_.info.response_flags, "UF");
  EXPECT_EQ(CounterValue("upstream_cx_connect_timeout"), 1u);
}

TEST_F(RouterFilterTest, UpstreamResetAfterTheResponseStartedResetsDownstream) {
  Send("/retry");
  StreamRequest& upstream = CurrentPool().Ready();
  upstream.Respond(200, /*end_stream=*/false);
  upstream.decoder->DecodeData("part", false);
  upstream.Reset(http::StreamResetReason::kConnectionTermination);

  EXPECT_EQ(callbacks_.resets, 1);
  EXPECT_EQ(callbacks_.info.response_flags, "UC");
  EXPECT_EQ(callbacks_.local_reply_status, 0);
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 1u) << "a started response cannot be retried";
}

TEST_F(RouterFilterTest, UpstreamProtocolErrorAnswers502) {
  Send("/plain");
  CurrentPool().Ready().Reset(http::StreamResetReason::kProtocolError);
  EXPECT_EQ(callbacks_.local_reply_status, 502);
  EXPECT_EQ(callbacks_.info.response_flags, "UPE");
  EXPECT_EQ(callbacks_.resets, 0);
}

// The per-try and route timeouts are real 1 ms timers on the loop; the test waits on the
// loop, which wakes when they are due. Nothing the test does races them: once armed, a 1 ms
// timer may be due before the test's next step.
TEST_F(RouterFilterTest, PerTryTimeoutResetsTheAttemptAndRetries) {
  Send("/per-try");
  StreamRequest& first = CurrentPool().Ready();
  // The first attempt times out on its stream, the retry while it waits for one.
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return callbacks_.ended; }));
  EXPECT_EQ(first.encoder.fake_stream.resets, 1);
  ASSERT_EQ(StreamRequests(), 2u);
  EXPECT_TRUE(CurrentPool().last().cancelled);
  EXPECT_NE(&CurrentPool().last(), &first);
  EXPECT_EQ(callbacks_.local_reply_status, 504);
  EXPECT_EQ(callbacks_.info.response_flags, "URX,UT");
}

TEST_F(RouterFilterTest, RouteTimeoutAnswers504) {
  Send("/slow");
  StreamRequest& upstream = CurrentPool().Ready();
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return callbacks_.ended; }));
  EXPECT_EQ(callbacks_.local_reply_status, 504);
  EXPECT_EQ(callbacks_.info.response_flags, "UT");
  EXPECT_EQ(upstream.encoder.fake_stream.resets, 1);
}

TEST_F(RouterFilterTest, AnUpgradeGoesUpstreamAndItsTunnelOutlivesTheRouteTimeout) {
  request_ = *MakeRequest("GET", "/slow");  // Route timeout: 1 ms.
  request_.upgrade = "websocket";
  callbacks_.set_route(route_table_->RouteFor(request_));
  router_->DecodeHeaders(request_, /*end_stream=*/false);
  StreamRequest& upstream = CurrentPool().Ready();
  ASSERT_TRUE(upstream.encoder.headers.has_value());
  EXPECT_EQ(upstream.encoder.headers->upgrade, "websocket");
  EXPECT_FALSE(upstream.encoder.ended) << "the tunnel follows the head";
  upstream.Respond(101, /*end_stream=*/false);
  EXPECT_EQ(callbacks_.status(), 101);
  router_->DecodeData("ping", false);
  EXPECT_EQ(upstream.encoder.body, "ping");
  // Well past the route timeout, the tunnel is still up.
  bool later = false;
  std::unique_ptr<Timer> timer = dispatcher_.CreateTimer([&] { later = true; });
  timer->Enable(std::chrono::milliseconds(20));
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return later; }));
  EXPECT_EQ(callbacks_.resets, 0);
  EXPECT_EQ(upstream.encoder.fake_stream.resets, 0);
  EXPECT_EQ(callbacks_.info.response_flags, "");
}

TEST_F(RouterFilterTest, AnUpgradeToAnHttp2ClusterIsRefused) {
  UseCluster(R"(
name: backend
protocol: HTTP2
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
)");
  request_ = *MakeRequest("GET", "/plain");
  request_.upgrade = "websocket";
  callbacks_.set_route(route_table_->RouteFor(request_));
  router_->DecodeHeaders(request_, /*end_stream=*/false);
  EXPECT_EQ(callbacks_.local_reply_status, 403);
  EXPECT_EQ(StreamRequests(), 0u);
}

TEST_F(RouterFilterTest, UnknownClusterAnswers503) {
  Send("/nowhere");
  EXPECT_EQ(callbacks_.local_reply_status, 503);
  EXPECT_EQ(callbacks_.info.response_flags, "NC");
  EXPECT_EQ(StreamRequests(), 0u);
}

TEST_F(RouterFilterTest, NoHealthyHostAnswers503) {
  UseCluster(R"(
name: backend
healthy_panic_threshold: 0
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
)");
  (*cluster_->hosts())[0]->failed_active_hc = true;
  Send("/plain");
  EXPECT_EQ(callbacks_.local_reply_status, 503);
  EXPECT_EQ(callbacks_.info.response_flags, "UH");
  EXPECT_EQ(StreamRequests(), 0u);
}

TEST_F(RouterFilterTest, DirectResponseRouteIsAnsweredWithoutUpstream) {
  Send("/direct");
  EXPECT_EQ(callbacks_.status(), 204);
  EXPECT_TRUE(callbacks_.ended);
  EXPECT_EQ(StreamRequests(), 0u);
}

TEST_F(RouterFilterTest, DownstreamWatermarksPauseReadingTheUpstream) {
  Send("/plain");
  StreamRequest& upstream = CurrentPool().Ready();
  router_->OnDownstreamAboveWriteBufferHighWatermark();
  EXPECT_TRUE(upstream.encoder.fake_stream.read_disabled);
  router_->OnDownstreamBelowWriteBufferLowWatermark();
  EXPECT_FALSE(upstream.encoder.fake_stream.read_disabled);
}

TEST_F(RouterFilterTest, UpstreamWatermarksPauseReadingTheDownstream) {
  Send("/plain", /*end_stream=*/false);
  StreamRequest& upstream = CurrentPool().Ready();
  upstream.encoder.fake_stream.callbacks->OnAboveWriteBufferHighWatermark();
  upstream.encoder.fake_stream.callbacks->OnBelowWriteBufferLowWatermark();
  EXPECT_THAT(callbacks_.read_disable_calls, ElementsAre(true, false));
}

TEST_F(RouterFilterTest, LargeBodyWaitingForAStreamPausesTheDownstream) {
  Send("/plain", /*end_stream=*/false);
  router_->DecodeData(std::string(64 * 1024 + 1, 'x'), false);
  EXPECT_THAT(callbacks_.read_disable_calls, ElementsAre(true));
  StreamRequest& upstream = CurrentPool().Ready();
  EXPECT_EQ(upstream.encoder.body.size(), 64u * 1024 + 1);
  EXPECT_THAT(callbacks_.read_disable_calls, ElementsAre(true, false));
}

TEST_F(RouterFilterTest, DownstreamGoneWhileWaitingCancelsThePoolRequest) {
  Send("/plain");
  FakeConnectionPool& pool = CurrentPool();
  router_.reset();
  EXPECT_TRUE(pool.last().cancelled);
  EXPECT_EQ(cluster_->breakers().requests.count(), 0u);
  EXPECT_EQ(GaugeValue("upstream_rq_active"), 0);
}

TEST_F(RouterFilterTest, DownstreamGoneMidExchangeResetsTheUpstreamStream) {
  Send("/plain");
  StreamRequest& upstream = CurrentPool().Ready();
  upstream.Respond(200, /*end_stream=*/false);
  router_->OnDestroy();
  EXPECT_EQ(upstream.encoder.fake_stream.resets, 1);
  EXPECT_FALSE(upstream.cancelled);
  EXPECT_EQ(cluster_->breakers().requests.count(), 0u);
}

TEST_F(RouterFilterTest, RetryScheduledWhenTheDownstreamGoesReleasesTheRetrySlot) {
  Send("/retry");
  CurrentPool().Ready().Respond(503, true);
  EXPECT_EQ(cluster_->breakers().retries.count(), 1u);
  router_.reset();
  EXPECT_EQ(cluster_->breakers().retries.count(), 0u);
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 1u);
}

TEST_F(RouterFilterTest, ARefusedStreamIsSentAgainOnceEvenWithoutARetryPolicy) {
  Send("/plain");  // No retry policy.
  CurrentPool().Ready().Reset(http::StreamResetReason::kRemoteRefusedStreamReset);
  EXPECT_EQ(callbacks_.local_reply_status, 0) << "the upstream never saw it: not an error yet";
  dispatcher_.RunPending();
  ASSERT_EQ(StreamRequests(), 2u);
  // Refused again: that is the answer.
  CurrentPool().Ready().Reset(http::StreamResetReason::kRemoteRefusedStreamReset);
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 2u);
  EXPECT_EQ(callbacks_.local_reply_status, 503);
  EXPECT_EQ(callbacks_.info.response_flags, "URX,UC");
}

TEST_F(RouterFilterTest, AnotherResetIsNotRetriedWithoutAPolicy) {
  Send("/plain");
  CurrentPool().Ready().Reset(http::StreamResetReason::kRemoteReset);
  dispatcher_.RunPending();
  EXPECT_EQ(StreamRequests(), 1u);
  EXPECT_EQ(callbacks_.local_reply_status, 503);
}

}  // namespace
}  // namespace phoenix::router
