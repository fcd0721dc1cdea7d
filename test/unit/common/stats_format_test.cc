#include "source/common/stats_format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/stats.h"

namespace phoenix {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(StatsScopeTest, LabelsTakeTheVaryingPartOutOfTheFamily) {
  StatsStore store;
  StatsScope cluster = StatsScope(store, "cluster.").Labelled("cluster_name", "app");
  cluster.counter("upstream_rq_total", "Requests").Inc(3);
  cluster.Nested("health_check").counter("failure", "Failed checks").Inc();
  std::vector<StatSample> samples = store.Samples();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].name->name, "cluster.app.health_check.failure");
  EXPECT_EQ(samples[0].name->family, "cluster.health_check.failure");
  EXPECT_EQ(samples[1].name->name, "cluster.app.upstream_rq_total");
  EXPECT_EQ(samples[1].name->family, "cluster.upstream_rq_total");
  ASSERT_EQ(samples[1].name->tags.size(), 1u);
  EXPECT_EQ(samples[1].name->tags[0].name, "cluster_name");
  EXPECT_EQ(samples[1].name->tags[0].value, "app");
  EXPECT_EQ(samples[1].counter, 3u);
}

TEST(StatsScopeTest, AFamilySegmentKeepsLabelledStatsApartFromTheScopesOwn) {
  StatsStore store;
  StatsScope policy(store, "http.ingress.access_policy.");
  policy.counter("denied", "All denied").Inc();
  policy.Labelled("rule_name", "no-crash", "rule").counter("denied", "Denied by a rule").Inc();
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_THAT(out, HasSubstr("phoenix_http_ingress_access_policy_denied_total 1\n"));
  EXPECT_THAT(
      out, HasSubstr("phoenix_http_ingress_access_policy_rule_denied_total{rule_name=\"no-crash\"} "
                     "1\n"));
}

// The case: two clusters whose names differ only in punctuation made one metric name
// twice, and promtool refused the whole scrape.
TEST(RenderStatsPrometheusTest, ClustersAreLabelsOfOneFamily) {
  StatsStore store;
  for (const char* name : {"phoenix_app", "phoenix-app"}) {
    StatsScope(store, "cluster.")
        .Labelled("cluster_name", name)
        .counter("upstream_rq_total", "Requests")
        .Inc();
  }
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_EQ(out,
            "# HELP phoenix_cluster_upstream_rq_total Requests\n"
            "# TYPE phoenix_cluster_upstream_rq_total counter\n"
            "phoenix_cluster_upstream_rq_total{cluster_name=\"phoenix-app\"} 1\n"
            "phoenix_cluster_upstream_rq_total{cluster_name=\"phoenix_app\"} 1\n");
}

TEST(RenderStatsPrometheusTest, CountersEndInTotalGaugesDoNot) {
  StatsStore store;
  store.counter("server.config_reload_success", "Reloads");
  store.gauge("server.live", "Live").Set(1);
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_THAT(out, HasSubstr("# TYPE phoenix_server_config_reload_success_total counter\n"
                             "phoenix_server_config_reload_success_total 0\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE phoenix_server_live gauge\nphoenix_server_live 1\n"));
}

TEST(RenderStatsPrometheusTest, StatusClassesAreALabel) {
  StatsStore store;
  auto classes = StatsScope(store, "http.")
                     .Labelled("http_conn_manager_prefix", "ingress")
                     .StatusClassCounters("downstream_rq_", "By class");
  classes[1]->Inc(2);
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_THAT(out, HasSubstr("phoenix_http_downstream_rq_xx_total{http_conn_manager_prefix="
                             "\"ingress\",response_code_class=\"2xx\"} 2\n"));
  EXPECT_EQ(store.Counters()["http.ingress.downstream_rq_2xx"], 2u);
}

TEST(RenderStatsPrometheusTest, HistogramsAreInSeconds) {
  StatsStore store;
  StatsScope(store, "cluster.")
      .Labelled("cluster_name", "app")
      .histogram("upstream_rq_time", "Time")
      .Record(2);
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_THAT(out, HasSubstr("# TYPE phoenix_cluster_upstream_rq_time_seconds histogram\n"));
  EXPECT_THAT(out,
              HasSubstr("phoenix_cluster_upstream_rq_time_seconds_bucket{cluster_name=\"app\",le="
                        "\"0.001\"} 0\n"));
  EXPECT_THAT(out,
              HasSubstr("phoenix_cluster_upstream_rq_time_seconds_bucket{cluster_name=\"app\",le="
                        "\"0.0025\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("phoenix_cluster_upstream_rq_time_seconds_sum{cluster_name=\"app\"} "
                             "0.002000\n"));
  EXPECT_THAT(out, HasSubstr("phoenix_cluster_upstream_rq_time_seconds_count{cluster_name=\"app\"} "
                             "1\n"));
}

TEST(RenderStatsPrometheusTest, LabelValuesAndHelpAreEscaped) {
  StatsStore store;
  StatsScope(store, "cluster.").Labelled("cluster_name", "a\"b\\c").counter("x", "line\\one").Inc();
  std::string out = RenderStatsPrometheus(store, {});
  EXPECT_THAT(out, HasSubstr("# HELP phoenix_cluster_x_total line\\\\one\n"));
  EXPECT_THAT(out, HasSubstr("phoenix_cluster_x_total{cluster_name=\"a\\\"b\\\\c\"} 1\n"));
}

TEST(RenderStatsPrometheusTest, AStatWithoutHelpIsHelpedByItsName) {
  StatsStore store;
  store.counter("misc.thing");
  EXPECT_THAT(RenderStatsPrometheus(store, {}),
              HasSubstr("# HELP phoenix_misc_thing_total misc.thing\n"));
}

TEST(StatsSelectionTest, FilterAndUsedOnly) {
  StatsStore store;
  store.counter("a.used").Inc();
  store.counter("a.unused");
  store.gauge("b.set").Set(4);
  store.histogram("b.none");
  StatsSelection used;
  used.used_only = true;
  EXPECT_EQ(RenderStatsText(store, used), "a.used: 1\nb.set: 4\n");
  StatsSelection only_a;
  only_a.filter = [](std::string_view name) { return name.starts_with("a."); };
  EXPECT_EQ(RenderStatsText(store, only_a), "a.unused: 0\na.used: 1\n");
  EXPECT_THAT(RenderStatsPrometheus(store, only_a), Not(HasSubstr("phoenix_b_")));
}

TEST(RenderStatsJsonTest, NamesValuesAndHistograms) {
  StatsStore store;
  store.counter("a.count").Inc(2);
  store.gauge("a.\"quoted\"").Set(-1);
  store.histogram("a.time").Record(1);
  EXPECT_EQ(RenderStatsJson(store, {}),
            "{\"stats\":[\n"
            "{\"name\":\"a.\\\"quoted\\\"\",\"value\":-1},\n"
            "{\"name\":\"a.count\",\"value\":2},\n"
            "{\"name\":\"a.time\",\"histogram\":{\"count\":1,\"sum_ms\":1.000,\"p50_ms\":0.750,"
            "\"p90_ms\":0.950,\"p99_ms\":0.995}}\n"
            "]}\n");
}

}  // namespace
}  // namespace phoenix
