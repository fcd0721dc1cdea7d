#include "source/upstream/cluster.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/time_source.h"
#include "source/config/yaml_loader.h"
#include "source/server/transport_socket_registrations.h"
#include "source/upstream/auto_conn_pool.h"
#include "source/upstream/cluster_manager.h"
#include "source/upstream/http2_conn_pool.h"
#include "test/unit/fakes/fake_conn_pool.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::upstream {
namespace {

// The clock the hosts' ejection times are read against (the real one, as in the proxy).
RealTimeSource& Clock() {
  static RealTimeSource clock;
  return clock;
}

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// A cluster "c" with `hosts` endpoints 10.0.0.1.. at priority 0 and `backup` at priority 1,
// plus `extra` YAML fields.
std::string ClusterYaml(int hosts, int backup = 0, const std::string& extra = "") {
  auto endpoints = [](int count, int first) {
    std::string out;
    for (int i = 0; i < count; ++i) {
      absl::StrAppend(&out, "    - endpoint: {address: {socket_address: {address: 10.0.0.",
                      first + i, ", port_value: 80}}}\n");
    }
    return out;
  };
  std::string yaml = absl::StrCat("name: c\n", extra, "\nload_assignment:\n  endpoints:\n");
  absl::StrAppend(&yaml, "  - lb_endpoints:\n", endpoints(hosts, 1));
  if (backup > 0) {
    absl::StrAppend(&yaml, "  - priority: 1\n    lb_endpoints:\n", endpoints(backup, 101));
  }
  return yaml;
}

class ClusterTest : public ::testing::Test {
 protected:
  std::shared_ptr<const ClusterInfo> Create(const std::string& yaml) {
    config::v1::Cluster proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status << "\n" << yaml;
    errors_ = config::ConfigErrors();
    return ClusterInfo::Create(proto, stats_, "cluster", errors_);
  }

  // How many of `picks` load balancer choices went to each host (by address).
  static std::map<std::string, int> Spread(LoadBalancer& lb, int picks) {
    std::map<std::string, int> spread;
    for (int i = 0; i < picks; ++i) {
      Host* host = lb.Choose();
      ++spread[host != nullptr ? host->address_string() : "none"];
    }
    return spread;
  }

  static void Eject(Host& host) { host.ejected_until_ms = Clock().MonotonicMs() + 3600 * 1000; }

  const std::vector<std::string>& ErrorMessages() const { return errors_.errors(); }

  StatsStore stats_;
  config::ConfigErrors errors_;
};

TEST_F(ClusterTest, InvalidDefinitionsAreReportedByPath) {
  EXPECT_EQ(Create("name: c\n"), nullptr);
  EXPECT_THAT(ErrorMessages(), ElementsAre("cluster.load_assignment: a cluster needs at least "
                                           "one endpoint"));
  EXPECT_EQ(Create(ClusterYaml(1, 0, "healthy_panic_threshold: 101")), nullptr);
  EXPECT_THAT(ErrorMessages(), Contains(HasSubstr("cluster.healthy_panic_threshold")));
  EXPECT_EQ(Create(R"(
name: c
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: example.com, port_value: 80}}}
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 0}}}
)"),
            nullptr);
  EXPECT_THAT(ErrorMessages(),
              ElementsAre(HasSubstr("lb_endpoints[0].endpoint.address.socket_address.address"),
                          HasSubstr("lb_endpoints[1].endpoint.address.socket_address.port_value")));
}

TEST_F(ClusterTest, AnEdsClusterTakesNoEndpointsOfItsOwn) {
  auto eds = Create("name: c\ntype: EDS\neds_cluster_config: {service_name: svc}\n");
  ASSERT_NE(eds, nullptr);
  EXPECT_TRUE(eds->hosts()->empty());
  EXPECT_EQ(eds->eds_service_name(), "svc");
  EXPECT_EQ(Create(ClusterYaml(1, 0, "type: EDS")), nullptr);
  EXPECT_THAT(ErrorMessages(), ElementsAre(HasSubstr("cluster.load_assignment: an EDS cluster's "
                                                     "hosts come from its ClusterLoadAssignment")));
  EXPECT_EQ(Create(ClusterYaml(1, 0, "eds_cluster_config: {service_name: svc}")), nullptr);
  EXPECT_THAT(ErrorMessages(), ElementsAre("cluster.eds_cluster_config: only for type: EDS"));
}

TEST(ParseIpEndpointsTest, ErrorsNameTheEndpointAndHintForHostNames) {
  config::v1::ClusterLoadAssignment assignment;
  ASSERT_TRUE(config::LoadYamlString(R"(
cluster_name: c
endpoints:
- priority: 1
  lb_endpoints:
  - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
  - endpoint: {address: {socket_address: {address: db.internal, port_value: 80}}}
)",
                                     &assignment, nullptr)
                  .ok());
  config::ConfigErrors errors;
  auto endpoints = ParseIpEndpoints(assignment, "cla", ": hint", errors);
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(network::FormatAddress(reinterpret_cast<const sockaddr*>(&endpoints[0].address)),
            "10.0.0.1:80");
  EXPECT_EQ(endpoints[0].priority, 1u);
  EXPECT_THAT(errors.errors(),
              ElementsAre("cla.endpoints[0].lb_endpoints[1].endpoint.address.socket_address."
                          "address: 'db.internal' is not an IP address: hint"));
}

TEST_F(ClusterTest, RoundRobinVisitsEveryHostInTurn) {
  auto cluster = Create(ClusterYaml(3));
  ASSERT_NE(cluster, nullptr);
  LoadBalancer lb(*cluster, Clock());
  EXPECT_THAT(Spread(lb, 300),
              UnorderedElementsAre(Pair("10.0.0.1:80", 100), Pair("10.0.0.2:80", 100),
                                   Pair("10.0.0.3:80", 100)));
}

TEST_F(ClusterTest, UnavailableHostsAreSkipped) {
  // Half the hosts are down: above the (default 50%) panic threshold.
  auto cluster = Create(ClusterYaml(4));
  LoadBalancer lb(*cluster, Clock());
  (*cluster->hosts())[0]->failed_active_hc = true;
  Eject(*(*cluster->hosts())[1]);
  EXPECT_THAT(Spread(lb, 50), ElementsAre(Pair("10.0.0.3:80", 25), Pair("10.0.0.4:80", 25)));
}

TEST_F(ClusterTest, EjectionEndsOnItsOwn) {
  auto cluster = Create(ClusterYaml(1));
  Host& host = *(*cluster->hosts())[0];
  host.ejected_until_ms = Clock().MonotonicMs() + 3600 * 1000;
  EXPECT_FALSE(host.Available(Clock().MonotonicMs()));
  EXPECT_TRUE(host.Available(Clock().MonotonicMs() + 3601 * 1000));
}

TEST_F(ClusterTest, LeastRequestPrefersTheLessBusyHost) {
  auto cluster = Create(ClusterYaml(2, 0, "lb_policy: LEAST_REQUEST"));
  LoadBalancer lb(*cluster, Clock());
  (*cluster->hosts())[0]->rq_active = 5;
  EXPECT_THAT(Spread(lb, 50), ElementsAre(Pair("10.0.0.2:80", 50)));
}

TEST_F(ClusterTest, HealthyPrimaryPriorityTakesAllTraffic) {
  auto cluster = Create(ClusterYaml(2, 2));
  LoadBalancer lb(*cluster, Clock());
  auto spread = Spread(lb, 100);
  EXPECT_EQ(spread["10.0.0.1:80"] + spread["10.0.0.2:80"], 100);
}

TEST_F(ClusterTest, UnhealthyPrimaryPrioritySpillsToTheNext) {
  auto cluster = Create(ClusterYaml(2, 2));
  LoadBalancer lb(*cluster, Clock());
  // Half of priority 0 is healthy: it keeps 1.4 x 50% = 70% of the traffic, 30% spills over.
  (*cluster->hosts())[0]->failed_active_hc = true;
  auto spread = Spread(lb, 2000);
  EXPECT_EQ(spread.count("10.0.0.1:80"), 0u);
  int backup = spread["10.0.0.101:80"] + spread["10.0.0.102:80"];
  // 600 expected; the bounds are more than 10 standard deviations wide.
  EXPECT_GT(backup, 400);
  EXPECT_LT(backup, 800);

  // A priority with no healthy host passes everything on.
  (*cluster->hosts())[1]->failed_active_hc = true;
  spread = Spread(lb, 100);
  EXPECT_EQ(spread["10.0.0.101:80"] + spread["10.0.0.102:80"], 100);
}

TEST_F(ClusterTest, UnderThePanicThresholdEveryPrimaryHostIsUsed) {
  auto cluster = Create(ClusterYaml(2, 1));
  LoadBalancer lb(*cluster, Clock());
  for (const auto& host : *cluster->hosts()) host->failed_active_hc = true;
  EXPECT_THAT(Spread(lb, 100),
              UnorderedElementsAre(Pair("10.0.0.1:80", 50), Pair("10.0.0.2:80", 50)));
}

TEST_F(ClusterTest, WithoutPanicNoHealthyHostMeansNoHost) {
  auto cluster = Create(ClusterYaml(2, 0, "healthy_panic_threshold: 0"));
  LoadBalancer lb(*cluster, Clock());
  for (const auto& host : *cluster->hosts()) host->failed_active_hc = true;
  EXPECT_EQ(lb.Choose(), nullptr);
}

TEST_F(ClusterTest, ChooseHostAvoidsHostsThatFailedThisRequest) {
  fakes::TestDispatcher dispatcher;
  auto cluster = Create(ClusterYaml(3));
  ThreadLocalCluster local(dispatcher, cluster);
  std::vector<const Host*> excluded = {(*cluster->hosts())[0].get(), (*cluster->hosts())[1].get()};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(local.ChooseHost(excluded), (*cluster->hosts())[2].get());
}

TEST_F(ClusterTest, ChooseHostPrefersAnAvailableHostOverAnExcludedOne) {
  fakes::TestDispatcher dispatcher;
  auto cluster = Create(ClusterYaml(3, 0, "lb_policy: RANDOM"));
  ThreadLocalCluster local(dispatcher, cluster);
  Eject(*(*cluster->hosts())[2]);
  // The balancer only offers hosts 1 and 2 and both failed; host 3 is ejected. Whatever the
  // balancer says, an available host that has not failed wins: none here, so a failed one
  // is tried again rather than nothing.
  std::vector<const Host*> excluded = {(*cluster->hosts())[0].get(), (*cluster->hosts())[1].get()};
  for (int i = 0; i < 20; ++i) {
    Host* host = local.ChooseHost(excluded);
    ASSERT_NE(host, nullptr);
    EXPECT_NE(host, (*cluster->hosts())[2].get());
  }
  // With host 3 back, it is the one.
  (*cluster->hosts())[2]->ejected_until_ms = 0;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(local.ChooseHost(excluded), (*cluster->hosts())[2].get());
}

TEST_F(ClusterTest, BreakerCountsUpToItsLimitAndShowsTheRoomLeft) {
  auto cluster = Create(ClusterYaml(1, 0, "circuit_breakers: {max_requests: 2}"));
  Breaker& requests = cluster->breakers().requests;
  Gauge& remaining = stats_.gauge("cluster.c.circuit_breakers.remaining_rq");
  EXPECT_EQ(remaining.Value(), 2);
  EXPECT_TRUE(requests.TryAcquire());
  EXPECT_TRUE(requests.TryAcquire());
  EXPECT_FALSE(requests.TryAcquire());
  EXPECT_EQ(remaining.Value(), 0);
  requests.Release();
  EXPECT_EQ(remaining.Value(), 1);
  EXPECT_TRUE(requests.TryAcquire());
}

TEST_F(ClusterTest, BreakersDefaultTo1024) {
  auto cluster = Create(ClusterYaml(1));
  EXPECT_EQ(stats_.gauge("cluster.c.circuit_breakers.remaining_cx").Value(), 1024);
  EXPECT_EQ(stats_.gauge("cluster.c.circuit_breakers.remaining_pending").Value(), 1024);
  EXPECT_EQ(stats_.gauge("cluster.c.circuit_breakers.remaining_retries").Value(), 1024);
}

TEST_F(ClusterTest, RetryBudgetScalesWithRequestsInFlight) {
  auto cluster = Create(ClusterYaml(
      1, 0, "circuit_breakers: {retry_budget: {budget_percent: 50, min_retry_concurrency: 1}}"));
  CircuitBreakers& breakers = cluster->breakers();
  // No request in flight: the floor allows one retry.
  EXPECT_TRUE(breakers.TryAcquireRetry());
  EXPECT_FALSE(breakers.TryAcquireRetry());
  // Six in flight: half of them may be retries.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(breakers.requests.TryAcquire());
  EXPECT_TRUE(breakers.TryAcquireRetry());
  EXPECT_TRUE(breakers.TryAcquireRetry());
  EXPECT_FALSE(breakers.TryAcquireRetry());
}

TEST_F(ClusterTest, ThreadLocalClusterAccountsRequestsAndRetries) {
  fakes::TestDispatcher dispatcher;
  auto cluster = Create(ClusterYaml(1, 0, "circuit_breakers: {max_requests: 1, max_retries: 1}"));
  ThreadLocalCluster local(dispatcher, cluster);
  Host& host = *(*cluster->hosts())[0];
  ASSERT_TRUE(local.BeginRequest(host));
  EXPECT_FALSE(local.BeginRequest(host)) << "max_requests";
  EXPECT_EQ(host.rq_active, 1);
  EXPECT_EQ(stats_.gauge("cluster.c.upstream_rq_active").Value(), 1);
  local.EndRequest(host, 1.0);
  EXPECT_EQ(host.rq_active, 0);
  EXPECT_EQ(stats_.counter("cluster.c.upstream_rq_total").Value(), 1u);
  EXPECT_TRUE(local.BeginRequest(host));

  EXPECT_TRUE(local.BeginRetry());
  EXPECT_FALSE(local.BeginRetry()) << "max_retries";
  EXPECT_EQ(stats_.counter("cluster.c.upstream_rq_retry_overflow").Value(), 1u);
  local.EndRetry();
  EXPECT_TRUE(local.BeginRetry());
}

TEST_F(ClusterTest, ConsecutiveErrorsEjectAHost) {
  auto cluster = Create(
      ClusterYaml(2, 0, "outlier_detection: {consecutive_5xx: 3, max_ejection_percent: 50}"));
  Host& host = *(*cluster->hosts())[0];
  fakes::TestDispatcher dispatcher;
  ThreadLocalCluster local(dispatcher, cluster);
  local.ReportResponse(host, 500);
  local.ReportResponse(host, 500);
  local.ReportResponse(host, 200);  // A success starts the count again.
  local.ReportResponse(host, 500);
  local.ReportResponse(host, 500);
  EXPECT_FALSE(host.Ejected(Clock().MonotonicMs()));
  local.ReportResponse(host, 500);
  EXPECT_TRUE(host.Ejected(Clock().MonotonicMs()));
  EXPECT_EQ(host.times_ejected, 1u);
  EXPECT_EQ(stats_.counter("cluster.c.outlier_detection.ejections_total").Value(), 1u);

  // max_ejection_percent: 50 of two hosts is one; the other stays in whatever it does.
  Host& other = *(*cluster->hosts())[1];
  for (int i = 0; i < 5; ++i) local.ReportFailure(other);
  EXPECT_FALSE(other.Ejected(Clock().MonotonicMs()));
}

TEST_F(ClusterTest, GatewayFailuresEjectAndLaterEjectionsLastLonger) {
  auto cluster =
      Create(ClusterYaml(1, 0,
                         "outlier_detection: {consecutive_5xx: 0, consecutive_gateway_failure: 2, "
                         "base_ejection_time: 10s}"));
  Host& host = *(*cluster->hosts())[0];
  uint64_t now = Clock().MonotonicMs();
  ReportOutcome(*cluster, host, 503, false, Clock());
  ReportOutcome(*cluster, host, 0, /*gateway_failure=*/true, Clock());
  ASSERT_TRUE(host.Ejected(now));
  EXPECT_GE(host.ejected_until_ms, now + 10000);
  EXPECT_LT(host.ejected_until_ms, now + 20000);

  host.ejected_until_ms = 0;  // The ejection ran out.
  ReportOutcome(*cluster, host, 502, false, Clock());
  ReportOutcome(*cluster, host, 504, false, Clock());
  EXPECT_GE(host.ejected_until_ms, now + 20000) << "second ejection: twice as long";
  EXPECT_EQ(host.times_ejected, 2u);

  // A host that serves again earns the multiplier back down.
  host.ejected_until_ms = 0;
  ReportOutcome(*cluster, host, 200, false, Clock());
  EXPECT_EQ(host.times_ejected, 1u);
}

TEST_F(ClusterTest, WithoutOutlierDetectionNothingIsEjected) {
  auto cluster = Create(ClusterYaml(1));
  Host& host = *(*cluster->hosts())[0];
  for (int i = 0; i < 20; ++i) ReportOutcome(*cluster, host, 503, false, Clock());
  EXPECT_FALSE(host.Ejected(Clock().MonotonicMs()));
}

TEST_F(ClusterTest, PoolsAreHttp1ByDefaultOnePerHost) {
  fakes::TestDispatcher dispatcher;
  auto cluster = Create(ClusterYaml(2));
  ASSERT_NE(cluster, nullptr);
  ThreadLocalCluster local(dispatcher, cluster);
  Host& host = *(*cluster->hosts())[0];
  ConnectionPool& pool = local.PoolFor(host);
  EXPECT_NE(dynamic_cast<Http1ConnPool*>(&pool), nullptr);
  EXPECT_EQ(&pool.host(), &host);
  EXPECT_EQ(&local.PoolFor(host), &pool);
  EXPECT_NE(&local.PoolFor(*(*cluster->hosts())[1]), &pool);
}

TEST_F(ClusterTest, TheProtocolPicksThePoolAndAutoNeedsTls) {
  server::RegisterBuiltinTransportSockets();
  fakes::TestDispatcher dispatcher;
  auto http2 = Create(ClusterYaml(1, 0, "protocol: HTTP2"));
  ASSERT_NE(http2, nullptr);
  ThreadLocalCluster http2_local(dispatcher, http2);
  EXPECT_NE(dynamic_cast<Http2ConnPool*>(&http2_local.PoolFor(*(*http2->hosts())[0])), nullptr);

  auto automatic = Create(ClusterYaml(1, 0, R"(protocol: AUTO
transport_socket:
  name: phoenix.transport_sockets.tls
  typed_config:
    "@type": type.googleapis.com/phoenix.config.v1.UpstreamTlsContext
    insecure_skip_verify: true
http2_protocol_options: {max_concurrent_streams: 10})"));
  ASSERT_NE(automatic, nullptr) << errors_.ToStatus();
  ThreadLocalCluster auto_local(dispatcher, automatic);
  EXPECT_NE(dynamic_cast<AutoConnPool*>(&auto_local.PoolFor(*(*automatic->hosts())[0])), nullptr);

  EXPECT_EQ(Create(ClusterYaml(1, 0, "protocol: AUTO")), nullptr);
  EXPECT_THAT(ErrorMessages(), ElementsAre(HasSubstr("cluster.protocol: AUTO picks HTTP/2 or "
                                                     "HTTP/1.1 by ALPN in the TLS handshake")));
  EXPECT_EQ(Create(ClusterYaml(1, 0, "http2_protocol_options: {max_concurrent_streams: 10}")),
            nullptr);
  EXPECT_THAT(ErrorMessages(), ElementsAre(HasSubstr("cluster.http2_protocol_options: the "
                                                     "cluster speaks HTTP/1.1")));
}

TEST_F(ClusterTest, ClusterManagerPoolFactoryMakesEveryClustersPools) {
  fakes::TestDispatcher dispatcher;
  std::vector<const Host*> made_for;
  ClusterManager manager(dispatcher, [&](Host& host) -> std::unique_ptr<ConnectionPool> {
    made_for.push_back(&host);
    return std::make_unique<fakes::FakeConnectionPool>(host);
  });
  auto cluster = Create(ClusterYaml(1));
  ASSERT_NE(cluster, nullptr);
  manager.Update({{"c", cluster}});
  ASSERT_NE(manager.Get("c"), nullptr);
  ConnectionPool& pool = manager.Get("c")->PoolFor(*(*cluster->hosts())[0]);
  EXPECT_NE(dynamic_cast<fakes::FakeConnectionPool*>(&pool), nullptr);
  manager.Get("c")->PoolFor(*(*cluster->hosts())[0]);
  EXPECT_THAT(made_for, ElementsAre((*cluster->hosts())[0].get()));
}

}  // namespace
}  // namespace phoenix::upstream
