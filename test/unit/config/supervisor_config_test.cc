#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/config/snapshot.h"
#include "source/config/yaml_loader.h"
#include "source/server/filter_registrations.h"

namespace phoenix::config {
namespace {

using ::testing::HasSubstr;

// A listener routing to cluster `app`, and the head of the clusters list.
constexpr char kListener[] =
    "static_resources:\n"
    "  listeners:\n"
    "  - name: l\n"
    "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
    "    http_connection_manager:\n"
    "      route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: "
    "[{match: {prefix: /}, route: {cluster: app}}]}]}\n"
    "  clusters:\n";
std::string ListenerAndCluster() {
  return std::string(kListener) + "  - name: app\n    type: SUPERVISED\n";
}

absl::StatusOr<std::shared_ptr<ConfigSnapshot>> Build(const std::string& yaml, StatsStore& stats) {
  server::RegisterBuiltinFilters();
  v1::Bootstrap bootstrap;
  SourceMap map("sup.yaml");
  if (absl::Status loaded = LoadYamlString(yaml, &bootstrap, &map); !loaded.ok()) return loaded;
  return BuildSnapshot(bootstrap, &map, stats, nullptr, 1, SourceKind::kStatic);
}

std::string Error(const std::string& yaml) {
  StatsStore stats;
  auto snapshot = Build(yaml, stats);
  return snapshot.ok() ? "" : std::string(snapshot.status().message());
}

TEST(SupervisorConfigTest, DefaultsApply) {
  StatsStore stats;
  auto snapshot = Build(ListenerAndCluster() +
                            "supervisor:\n"
                            "  apps:\n"
                            "  - name: web\n"
                            "    command: /bin/app\n"
                            "    args: [--flag]\n"
                            "    env: {B: '2', A: '1'}\n"
                            "    port_range: {start: 9000, end: 9003}\n"
                            "    max_instances: 3\n"
                            "    readiness: {http_path: /healthz}\n"
                            "    cluster: app\n"
                            "    autoscaling: {scale_up_window: 2s, scale_down_window: 5s}\n",
                        stats);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ((*snapshot)->apps.size(), 1u);
  const AppConfig& app = (*snapshot)->apps[0];
  EXPECT_EQ(app.name, "web");
  EXPECT_EQ(app.min_instances, 1u);
  EXPECT_EQ(app.max_instances, 3u);
  EXPECT_EQ(app.env.front().first, "A");
  EXPECT_EQ(app.http_path, "/healthz");
  EXPECT_EQ(app.restart.initial.count(), 1000);
  EXPECT_EQ(app.restart.max.count(), 30000);
  EXPECT_EQ(app.restart.crash_loop_crashes, 5u);
  EXPECT_EQ(app.stop_grace_period.count(), 10000);
  EXPECT_TRUE(app.log_rotation.daily);
  EXPECT_EQ(app.log_rotation.keep_days, 7u);
  EXPECT_TRUE(app.autoscaling);
  EXPECT_EQ(app.scaling.target_rps_per_instance, 10);
  EXPECT_EQ(app.scaling.scale_up_window.count(), 2000);
  EXPECT_EQ(app.scaling.scale_down_window.count(), 5000);
}

TEST(SupervisorConfigTest, ErrorsNameFileLineColumnAndField) {
  std::string message = Error(ListenerAndCluster() +
                              "supervisor:\n"
                              "  apps:\n"
                              "  - name: web\n"
                              "    command: /bin/app\n"
                              "    port_range: {start: 9000, end: 9001}\n"
                              "    max_instances: 3\n"
                              "    cluster: ap\n"
                              "    restart_back_off: {initial: 5s, max: 1s}\n"
                              "    autoscaling: {scale_up_window: 5s, scale_down_window: 1s}\n");
  EXPECT_THAT(message, HasSubstr("sup.yaml:14:5: supervisor.apps[0].port_range: 2 port(s) for "
                                 "up to 3 instances"));
  EXPECT_THAT(message, HasSubstr("sup.yaml:16:5: supervisor.apps[0].cluster: unknown cluster "
                                 "'ap'; did you mean 'app'?"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[0].restart_back_off.max: must be at least "
                                 "initial"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[0].autoscaling.scale_down_window: must be at "
                                 "least scale_up_window"));
  // The cluster no app feeds (the app named another).
  EXPECT_THAT(
      message,
      HasSubstr("sup.yaml:9:5: static_resources.clusters[0].type: no supervisor app names the "
                "SUPERVISED cluster 'app'"));
}

TEST(SupervisorConfigTest, TheClusterMustBeSupervisedAndHaveNoEndpoints) {
  std::string statik =
      std::string(kListener) +
      "  - name: app\n"
      "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
      "{socket_address: {address: 127.0.0.1, port_value: 80}}}}]}]}\n"
      "supervisor:\n"
      "  apps:\n"
      "  - {name: web, command: x, port_range: {start: 9000, end: 9000}, cluster: app}\n";
  EXPECT_THAT(Error(statik), HasSubstr("supervisor.apps[0].cluster: cluster 'app' must be of "
                                       "type SUPERVISED"));
  std::string with_endpoints = statik;
  with_endpoints.replace(with_endpoints.find("  - name: app\n") + 14, 0, "    type: SUPERVISED\n");
  EXPECT_THAT(Error(with_endpoints), HasSubstr("a SUPERVISED cluster's hosts are its app's "
                                               "instances: give no endpoints"));
}

TEST(SupervisorConfigTest, MoreThanMinNeedsAutoscalingAndNamesAreUnique) {
  std::string message = Error(ListenerAndCluster() +
                              "supervisor:\n"
                              "  apps:\n"
                              "  - {name: web, command: x, port_range: {start: 9000, end: 9009}, "
                              "cluster: app, max_instances: 2}\n"
                              "  - {name: web, command: '', port_range: {start: 9010, end: 9010}, "
                              "cluster: app, env: {PORT: '1'}}\n");
  EXPECT_THAT(message, HasSubstr("supervisor.apps[0].max_instances: more than min_instances "
                                 "needs autoscaling"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[1].name: duplicate app name 'web'"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[1].command: an app needs a command"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[1].env.PORT: PORT is the instance's port"));
  EXPECT_THAT(message, HasSubstr("supervisor.apps[1].cluster: cluster 'app' is already fed by "
                                 "app 'web'"));
}

}  // namespace
}  // namespace phoenix::config
