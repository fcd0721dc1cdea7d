#include "source/upstream/conn_pool.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/upstream/health_checker.h"
#include "test/unit/fakes/loopback_upstream.h"
#include "test/unit/fakes/pool_user.h"
#include "test/unit/fakes/test_cluster.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::upstream {
namespace {

using fakes::PoolUser;

using fakes::LoopbackUpstream;
using Failure = PoolCallbacks::Failure;
using ::testing::HasSubstr;
using ::testing::Optional;

class ConnPoolTest : public ::testing::Test {
 protected:
  ~ConnPoolTest() override {
    checker_.reset();
    pool_.reset();
    dispatcher_.RunPending();
  }

  // A cluster "c" with one host, 127.0.0.1:`port` (default: the loopback upstream), plus
  // `extra` YAML fields.
  void MakeCluster(const std::string& extra = "", uint16_t port = 0) {
    cluster_ = fakes::LoopbackCluster(stats_, extra, port != 0 ? port : upstream_.port());
    ASSERT_NE(cluster_, nullptr);
  }

  void MakePool(const std::string& extra = "", uint16_t port = 0) {
    MakeCluster(extra, port);
    pool_ = std::make_unique<Http1ConnPool>(dispatcher_, cluster_, (*cluster_->hosts())[0]);
  }

  bool RunUntilFinished(const PoolUser& user) {
    return dispatcher_.RunUntil([&] { return user.finished(); });
  }

  uint64_t CounterValue(const std::string& name) {
    return stats_.counter("cluster.c." + name).Value();
  }
  int64_t GaugeValue(const std::string& name) { return stats_.gauge("cluster.c." + name).Value(); }

  fakes::TestDispatcher dispatcher_;
  StatsStore stats_;
  LoopbackUpstream upstream_{dispatcher_};
  std::shared_ptr<const ClusterInfo> cluster_;
  PoolUser first_, second_, third_;
  std::unique_ptr<Http1ConnPool> pool_;
  std::unique_ptr<HealthChecker> checker_;
};

TEST_F(ConnPoolTest, StreamIsReadyOnceConnectedAndTheConnectionIsReused) {
  MakePool();
  first_.Request(*pool_);
  EXPECT_FALSE(first_.ready()) << "not before the connection is up";
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_EQ(first_.status, 200);
  EXPECT_EQ(first_.body, "ok");
  ASSERT_EQ(upstream_.request_heads.size(), 1u);
  EXPECT_THAT(upstream_.request_heads[0], HasSubstr("GET / HTTP/1.1"));

  // The idle keep-alive connection serves the next request at once.
  second_.Request(*pool_);
  EXPECT_TRUE(second_.ready());
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(second_.status, 200);
  EXPECT_EQ(upstream_.accepted, 1);
  EXPECT_EQ(CounterValue("upstream_cx_total"), 1u);
  EXPECT_EQ(CounterValue("upstream_cx_reuse"), 1u);
  EXPECT_EQ((*cluster_->hosts())[0]->cx_active, 1);
}

TEST_F(ConnPoolTest, ADrainingPoolClosesIdleConnectionsAndKeepsNoneAfterAStream) {
  MakePool();
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_EQ((*cluster_->hosts())[0]->cx_active, 1);
  EXPECT_FALSE(pool_->Idle());  // One idle keep-alive connection.
  pool_->Drain();
  EXPECT_TRUE(pool_->Idle());
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return (*cluster_->hosts())[0]->cx_active == 0; }));

  // A request still sent its way is served, and its connection is not kept.
  second_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(second_.status, 200);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return pool_->Idle(); }));
}

TEST_F(ConnPoolTest, AtMaxConnectionsRequestsWaitForAReleasedConnection) {
  MakePool("circuit_breakers: {max_connections: 1}");
  first_.Request(*pool_);
  second_.Request(*pool_);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1023);
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(first_.status, 200);
  EXPECT_EQ(second_.status, 200);
  EXPECT_EQ(upstream_.accepted, 1);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
}

TEST_F(ConnPoolTest, OverflowWhenConnectionsAndPendingRequestsAreFull) {
  MakePool("circuit_breakers: {max_connections: 1, max_pending_requests: 1}");
  first_.Request(*pool_);
  second_.Request(*pool_);
  third_.Request(*pool_);
  EXPECT_THAT(third_.failure, Optional(Failure::kOverflow));
  EXPECT_FALSE(second_.failure.has_value());
}

TEST_F(ConnPoolTest, CancelledPendingRequestGivesBackItsSlot) {
  MakePool("circuit_breakers: {max_connections: 1}");
  first_.Request(*pool_);
  second_.Request(*pool_);
  pool_->Cancel(second_);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
  ASSERT_TRUE(RunUntilFinished(first_));
  dispatcher_.RunPending();
  EXPECT_FALSE(second_.ready());
  EXPECT_EQ(upstream_.request_heads.size(), 1u);
}

TEST_F(ConnPoolTest, ConnectFailureIsReportedAndFreesTheConnectionSlot) {
  MakePool("", fakes::UnusedLoopbackPort());
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_THAT(first_.failure, Optional(Failure::kConnectFailed));
  EXPECT_EQ(CounterValue("upstream_cx_connect_fail"), 1u);
  EXPECT_EQ((*cluster_->hosts())[0]->cx_connect_fail, 1u);
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
}

TEST_F(ConnPoolTest, ResetStreamClosesTheConnectionInsteadOfReusingIt) {
  MakePool();
  upstream_.hold = true;
  first_.Request(*pool_);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return upstream_.request_heads.size() == 1; }));
  first_.encoder->stream().ResetStream();
  EXPECT_FALSE(first_.reset.has_value()) << "the user's own reset is not reported back";
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);

  upstream_.hold = false;
  second_.Request(*pool_);
  EXPECT_FALSE(second_.ready()) << "a new connection, not the reset one";
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(second_.status, 200);
  EXPECT_EQ(upstream_.accepted, 2);
}

TEST_F(ConnPoolTest, UpstreamCloseMidResponseResetsTheStream) {
  MakePool();
  upstream_.response = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
  upstream_.close_after_response = true;
  first_.Request(*pool_);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return first_.reset.has_value(); }));
  EXPECT_EQ(first_.status, 200);
  EXPECT_EQ(first_.body, "abc");
  EXPECT_FALSE(first_.complete);
  EXPECT_EQ(first_.reset, http::StreamResetReason::kConnectionTermination);
}

TEST_F(ConnPoolTest, MalformedResponseIsAProtocolError) {
  MakePool();
  upstream_.response = "NOT HTTP AT ALL\r\n\r\n";
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_EQ(first_.reset, http::StreamResetReason::kProtocolError);
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
}

TEST_F(ConnPoolTest, ReadToCloseResponseCompletesAndTheConnectionIsNotReused) {
  MakePool();
  upstream_.response = "HTTP/1.1 200 OK\r\n\r\nuntil close";
  upstream_.close_after_response = true;
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_TRUE(first_.complete);
  EXPECT_EQ(first_.body, "until close");
  dispatcher_.RunPending();
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);
}

TEST_F(ConnPoolTest, ConnectionCloseResponseIsNotReused) {
  MakePool();
  // The upstream says it will close, but has not yet.
  upstream_.response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_TRUE(first_.complete);
  second_.Request(*pool_);
  EXPECT_FALSE(second_.ready());
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(upstream_.accepted, 2);
}

// Responses that end with their head (204, 304, Content-Length: 0) leave a keep-alive
// connection as reusable as any other.
class BodilessResponseTest : public ConnPoolTest,
                             public ::testing::WithParamInterface<const char*> {};

TEST_P(BodilessResponseTest, LeavesTheConnectionReusable) {
  MakePool();
  upstream_.response = GetParam();
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  EXPECT_TRUE(first_.complete);
  second_.Request(*pool_);
  EXPECT_TRUE(second_.ready()) << "the idle connection serves the next request at once";
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(upstream_.accepted, 1);
  EXPECT_EQ(CounterValue("upstream_cx_reuse"), 1u);
}

INSTANTIATE_TEST_SUITE_P(EndsWithItsHead, BodilessResponseTest,
                         ::testing::Values("HTTP/1.1 204 No Content\r\n\r\n",
                                           "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n",
                                           "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0   ? "NoContent204"
                                              : info.index == 1 ? "NotModified304"
                                                                : "ContentLengthZero");
                         });

TEST_F(ConnPoolTest, RequestCancelledWhileConnectingLeavesTheConnectionToTheNextOne) {
  MakePool("circuit_breakers: {max_connections: 1}");
  first_.Request(*pool_);
  second_.Request(*pool_);  // Waits: the only connection is being opened for first_.
  pool_->Cancel(first_);
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(second_.status, 200);
  EXPECT_FALSE(first_.ready());
  EXPECT_FALSE(first_.failure.has_value());
  EXPECT_EQ(upstream_.accepted, 1);
  EXPECT_EQ(upstream_.request_heads.size(), 1u);
  EXPECT_EQ(CounterValue("upstream_cx_reuse"), 1u);
  EXPECT_EQ(GaugeValue("circuit_breakers.remaining_pending"), 1024);
}

TEST_F(ConnPoolTest, IdleConnectionClosedByTheUpstreamIsNotHandedOut) {
  MakePool();
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  upstream_.CloseAll();
  Host& host = *(*cluster_->hosts())[0];
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return host.cx_active == 0; }));
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);

  second_.Request(*pool_);
  EXPECT_FALSE(second_.ready()) << "a new connection, not the closed one";
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(second_.status, 200);
  EXPECT_EQ(upstream_.accepted, 2);
  EXPECT_EQ(CounterValue("upstream_cx_reuse"), 0u);
}

TEST_F(ConnPoolTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  MakePool("idle_timeout: 0.001s");
  first_.Request(*pool_);
  ASSERT_TRUE(RunUntilFinished(first_));
  Host& host = *(*cluster_->hosts())[0];
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return host.cx_active == 0; }));
  EXPECT_EQ(CounterValue("upstream_cx_destroy"), 1u);
  EXPECT_EQ(cluster_->breakers().connections.count(), 0u);

  second_.Request(*pool_);
  EXPECT_FALSE(second_.ready());
  ASSERT_TRUE(RunUntilFinished(second_));
  EXPECT_EQ(upstream_.accepted, 2);
}

// Active health checks against the loopback upstream, probing every millisecond.
TEST_F(ConnPoolTest, HealthCheckThresholdsMarkTheHostDownAndUpAgain) {
  MakeCluster(R"(health_checks:
- interval: 0.001s
  timeout: 1s
  unhealthy_threshold: 2
  healthy_threshold: 3
  http_health_check: {path: /healthz})");
  Host& host = *(*cluster_->hosts())[0];
  upstream_.response = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
  checker_ = std::make_unique<HealthChecker>(dispatcher_, cluster_);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return host.failed_active_hc.load(); }));
  EXPECT_EQ(CounterValue("health_check.failure"), 2u) << "down after two failures in a row";
  ASSERT_FALSE(upstream_.request_heads.empty());
  EXPECT_THAT(upstream_.request_heads[0], HasSubstr("GET /healthz HTTP/1.1"));

  upstream_.response = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return !host.failed_active_hc.load(); }));
  EXPECT_EQ(CounterValue("health_check.success"), 3u) << "up after three passes in a row";
}

TEST_F(ConnPoolTest, TcpHealthCheckFailsWhenNothingListens) {
  MakeCluster(R"(health_checks:
- interval: 0.001s
  unhealthy_threshold: 1
  tcp_health_check: {})",
              fakes::UnusedLoopbackPort());
  checker_ = std::make_unique<HealthChecker>(dispatcher_, cluster_);
  ASSERT_TRUE(
      dispatcher_.RunUntil([&] { return (*cluster_->hosts())[0]->failed_active_hc.load(); }));
  EXPECT_EQ(CounterValue("health_check.success"), 0u);
}

TEST_F(ConnPoolTest, TcpHealthCheckPassesWhenTheUpstreamAccepts) {
  MakeCluster(R"(health_checks:
- interval: 0.001s
  healthy_threshold: 1
  tcp_health_check: {})");
  Host& host = *(*cluster_->hosts())[0];
  host.failed_active_hc = true;
  checker_ = std::make_unique<HealthChecker>(dispatcher_, cluster_);
  ASSERT_TRUE(dispatcher_.RunUntil([&] { return !host.failed_active_hc.load(); }));
  EXPECT_EQ(CounterValue("health_check.failure"), 0u);
}

}  // namespace
}  // namespace phoenix::upstream
