#include "source/common/stats.h"

#include <array>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/http/connection_manager.h"
#include "source/upstream/cluster.h"

namespace phoenix {
namespace {

using testing::ElementsAre;
using testing::Pair;

#define PHX_TEST_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(requests, "Requests")                   \
  GAUGE(active, "Active")                         \
  HISTOGRAM(latency, "Latency")                   \
  COUNTER(errors, "Errors")

struct TestStats {
  PHX_STATS(TestStats, PHX_TEST_STATS, extra(scope.counter("extra")),
            classes(scope.StatusClassCounters("rq_", "By class")));
  Counter& extra;
  std::array<Counter*, 5> classes;
};

#define PHX_TEST_ONE_STAT(COUNTER, GAUGE, HISTOGRAM) GAUGE(only, "The only one")

struct OneStat {
  PHX_STATS(OneStat, PHX_TEST_ONE_STAT);
};

template <typename Map>
std::vector<std::string> Names(const Map& map) {
  std::vector<std::string> names;
  for (const auto& [name, value] : map) names.push_back(name);
  return names;
}

TEST(HistogramTest, ValuesGoToTheFirstBucketWhoseBoundIsAtLeastThem) {
  Histogram h;
  for (double ms : {0.0, 0.5, 0.6, 1.0, 2.5, 60000.0, 60000.5, -1.0}) h.Record(ms);
  std::array<uint64_t, Histogram::kBuckets> cumulative = h.Cumulative();
  EXPECT_EQ(cumulative[0], 3u);                        // le 0.5: 0, 0.5 and the negative one.
  EXPECT_EQ(cumulative[1], 5u);                        // le 1: 0.6, 1.
  EXPECT_EQ(cumulative[2], 6u);                        // le 2.5: 2.5.
  EXPECT_EQ(cumulative[Histogram::kBuckets - 2], 7u);  // le 60000.
  EXPECT_EQ(cumulative[Histogram::kBuckets - 1], 8u);  // +Inf.
  EXPECT_EQ(h.Count(), 8u);
}

TEST(StatsMacrosTest, ListDeclaresAndRegistersEveryStatUnderThePrefix) {
  StatsStore store;
  StatsScope scope(store, "test.one.");
  TestStats stats(scope);
  stats.requests.Inc(2);
  stats.active.Set(7);
  stats.latency.Record(1.5);
  stats.errors.Inc();
  stats.extra.Inc(3);
  stats.classes[3]->Inc();
  EXPECT_THAT(store.Counters(),
              ElementsAre(Pair("test.one.errors", 1), Pair("test.one.extra", 3),
                          Pair("test.one.requests", 2), Pair("test.one.rq_1xx", 0),
                          Pair("test.one.rq_2xx", 0), Pair("test.one.rq_3xx", 0),
                          Pair("test.one.rq_4xx", 1), Pair("test.one.rq_5xx", 0)));
  EXPECT_THAT(store.Gauges(), ElementsAre(Pair("test.one.active", 7)));
  EXPECT_THAT(Names(store.Histograms()), ElementsAre("test.one.latency"));
  // The members are the store's stats, not copies.
  EXPECT_EQ(&stats.requests, &store.counter("test.one.requests"));
  // The marker that lets the list start with a comma costs nothing.
  EXPECT_EQ(sizeof(TestStats), 5 * sizeof(void*) + sizeof(std::array<Counter*, 5>));
}

TEST(StatsMacrosTest, ListWithOneStat) {
  StatsStore store;
  OneStat stats(StatsScope(store, "x."));
  stats.only.Set(1);
  EXPECT_THAT(store.Gauges(), ElementsAre(Pair("x.only", 1)));
}

TEST(StatsMacrosTest, NestedScope) {
  StatsStore store;
  StatsScope scope = StatsScope(store, "a.").Nested("b");
  scope.counter("c").Inc();
  EXPECT_THAT(store.Counters(), ElementsAre(Pair("a.b.c", 1)));
}

// /stats, Prometheus scrapes and the integration tests read these names: they must not drift.
TEST(StatsMacrosTest, ConnectionManagerStatNames) {
  StatsStore store;
  http::ConnectionManagerStats stats(store, "ingress");
  stats.downstream_rq_class[1]->Inc();
  EXPECT_THAT(
      Names(store.Counters()),
      ElementsAre(
          "http.ingress.downstream_cx_http1_total", "http.ingress.downstream_cx_http2_total",
          "http.ingress.downstream_cx_idle_timeout", "http.ingress.downstream_cx_protocol_error",
          "http.ingress.downstream_cx_total", "http.ingress.downstream_cx_upgrades_total",
          "http.ingress.downstream_rq_1xx", "http.ingress.downstream_rq_2xx",
          "http.ingress.downstream_rq_3xx", "http.ingress.downstream_rq_4xx",
          "http.ingress.downstream_rq_5xx", "http.ingress.downstream_rq_http1_total",
          "http.ingress.downstream_rq_http2_total", "http.ingress.downstream_rq_idle_timeout",
          "http.ingress.downstream_rq_invalid_path", "http.ingress.downstream_rq_overload",
          "http.ingress.downstream_rq_timeout", "http.ingress.downstream_rq_total",
          "http.ingress.downstream_rq_ws_on_non_ws_route", "http.ingress.no_route"));
  EXPECT_THAT(Names(store.Gauges()), ElementsAre("http.ingress.downstream_cx_active",
                                                 "http.ingress.downstream_cx_upgrades_active",
                                                 "http.ingress.downstream_rq_active"));
  EXPECT_THAT(Names(store.Histograms()), ElementsAre("http.ingress.downstream_rq_time"));
  EXPECT_EQ(store.Counters()["http.ingress.downstream_rq_2xx"], 1u);
}

TEST(StatsMacrosTest, ClusterStatNames) {
  StatsStore store;
  upstream::ClusterStats stats(store, "app");
  stats.health_check.failure.Inc();
  stats.outlier_detection.ejections_total.Inc(2);
  EXPECT_THAT(
      Names(store.Counters()),
      ElementsAre("cluster.app.health_check.failure", "cluster.app.health_check.success",
                  "cluster.app.outlier_detection.ejections_total", "cluster.app.update_attempt",
                  "cluster.app.update_failure", "cluster.app.update_success",
                  "cluster.app.upstream_cx_connect_fail", "cluster.app.upstream_cx_connect_timeout",
                  "cluster.app.upstream_cx_destroy", "cluster.app.upstream_cx_reuse",
                  "cluster.app.upstream_cx_total", "cluster.app.upstream_rq_1xx",
                  "cluster.app.upstream_rq_2xx", "cluster.app.upstream_rq_3xx",
                  "cluster.app.upstream_rq_4xx", "cluster.app.upstream_rq_5xx",
                  "cluster.app.upstream_rq_reset", "cluster.app.upstream_rq_retry",
                  "cluster.app.upstream_rq_total"));
  EXPECT_THAT(Names(store.Gauges()),
              ElementsAre("cluster.app.membership_hosts", "cluster.app.upstream_cx_active",
                          "cluster.app.upstream_rq_active"));
  EXPECT_THAT(Names(store.Histograms()), ElementsAre("cluster.app.upstream_rq_time"));
  EXPECT_EQ(store.Counters()["cluster.app.health_check.failure"], 1u);
  EXPECT_EQ(store.Counters()["cluster.app.outlier_detection.ejections_total"], 2u);
}

}  // namespace
}  // namespace phoenix
