#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/config/snapshot.h"
#include "source/config/yaml_loader.h"
#include "source/server/filter_registrations.h"

namespace phoenix::config {
namespace {

std::string Load(const std::string& yaml, v1::Bootstrap* out = nullptr) {
  v1::Bootstrap bootstrap;
  SourceMap map("test.yaml");
  absl::Status status = LoadYamlString(yaml, &bootstrap, &map);
  if (out != nullptr) *out = bootstrap;
  return std::string(status.message());
}

TEST(YamlLoaderTest, UnknownFieldNamesLocationAndSuggestion) {
  std::string error = Load(
      "static_resources:\n"
      "  clusters:\n"
      "  - name: a\n"
      "    lb_polcy: ROUND_ROBIN\n");
  EXPECT_EQ(error,
            "test.yaml:4:5: static_resources.clusters[0].lb_polcy: unknown field 'lb_polcy' in "
            "phoenix.config.v1.Cluster; did you mean 'lb_policy'?");
}

TEST(YamlLoaderTest, TypeErrorsNameTheField) {
  EXPECT_NE(Load("admin: {address: {socket_address: {port_value: -1}}}\n")
                .find("test.yaml:1:48: admin.address.socket_address.port_value: invalid uint32"),
            std::string::npos);
  EXPECT_NE(Load("static_resources: {clusters: [{name: a, lb_policy: FASTEST}]}\n")
                .find("unknown value 'FASTEST' for LbPolicy"),
            std::string::npos);
  EXPECT_NE(Load("static_resources: {clusters: {name: a}}\n").find("expected a list"),
            std::string::npos);
}

TEST(YamlLoaderTest, ReportsEveryErrorAndYamlSyntax) {
  std::string error = Load("node: {idd: 1, clustr: 2}\n");
  EXPECT_NE(error.find("'idd'"), std::string::npos);
  EXPECT_NE(error.find("'clustr'"), std::string::npos);
  EXPECT_NE(Load("node: {id: [1, 2\n").find("test.yaml:"), std::string::npos);
}

TEST(YamlLoaderTest, OneofConflictIsAnError) {
  v1::RouteMatch match;
  SourceMap map("r.yaml");
  absl::Status status = LoadYamlString("prefix: /a\npath: /b\n", &match, &map);
  EXPECT_NE(status.message().find("only one field of 'path_specifier'"), absl::string_view::npos);
}

TEST(YamlLoaderTest, DurationsAndAny) {
  v1::Bootstrap bootstrap;
  std::string error = Load(
      "drain_timeout: 250ms\n"
      "static_resources:\n"
      "  clusters: [{name: a, connect_timeout: 1.5s}]\n"
      "  listeners:\n"
      "  - name: l\n"
      "    http_connection_manager:\n"
      "      http_filters:\n"
      "      - name: phoenix.filters.http.router\n"
      "        typed_config: {\"@type\": type.googleapis.com/phoenix.config.v1.Router}\n",
      &bootstrap);
  EXPECT_EQ(error, "");
  EXPECT_EQ(bootstrap.drain_timeout().nanos(), 250000000);
  EXPECT_EQ(bootstrap.static_resources().clusters(0).connect_timeout().seconds(), 1);
  EXPECT_EQ(bootstrap.static_resources().clusters(0).connect_timeout().nanos(), 500000000);
  EXPECT_TRUE(bootstrap.static_resources()
                  .listeners(0)
                  .http_connection_manager()
                  .http_filters(0)
                  .typed_config()
                  .Is<v1::Router>());
  EXPECT_NE(Load("drain_timeout: soon\n").find("invalid duration"), std::string::npos);
  EXPECT_NE(
      Load("static_resources: {listeners: [{name: l, http_connection_manager: "
           "{http_filters: [{name: x, typed_config: {\"@type\": type.googleapis.com/nope}}]}}]}\n")
          .find("unknown type 'nope'"),
      std::string::npos);
}

TEST(SnapshotTest, ValidationErrorsPointAtTheField) {
  const std::string yaml =
      "static_resources:\n"
      "  listeners:\n"
      "  - name: l\n"
      "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
      "    http_connection_manager:\n"
      "      route_config:\n"
      "        virtual_hosts:\n"
      "        - name: v\n"
      "          domains: [\"*\"]\n"
      "          routes:\n"
      "          - match: {prefix: /}\n"
      "            route: {cluster: missing}\n"
      "  clusters:\n"
      "  - name: a\n"
      "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
      "{socket_address: {address: not-an-ip, port_value: 80}}}}]}]}\n";
  v1::Bootstrap bootstrap;
  SourceMap map("snap.yaml");
  ASSERT_TRUE(LoadYamlString(yaml, &bootstrap, &map).ok());
  StatsStore stats;
  server::RegisterBuiltinFilters();
  auto snapshot = BuildSnapshot(bootstrap, &map, stats, nullptr, 1, SourceKind::kStatic);
  ASSERT_FALSE(snapshot.ok());
  std::string message(snapshot.status().message());
  EXPECT_NE(message.find("snap.yaml:12:21: static_resources.listeners[0].http_connection_manager"
                         ".route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "
                         "'missing'"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("'not-an-ip' is not an IP address"), std::string::npos) << message;
}

// Builds `yaml` (file "snap.yaml"); the error message, or "" if it is valid.
std::string BuildError(const std::string& yaml) {
  v1::Bootstrap bootstrap;
  SourceMap map("snap.yaml");
  EXPECT_TRUE(LoadYamlString(yaml, &bootstrap, &map).ok());
  StatsStore stats;
  server::RegisterBuiltinFilters();
  auto snapshot = BuildSnapshot(bootstrap, &map, stats, nullptr, 1, SourceKind::kStatic);
  return snapshot.ok() ? "" : std::string(snapshot.status().message());
}

TEST(SnapshotTest, PortsOutOfRangeSayHowAndABadClusterIsOneError) {
  std::string message = BuildError(
      "static_resources:\n"
      "  listeners:\n"
      "  - name: l\n"
      "    address: {socket_address: {address: 127.0.0.1, port_value: 80800}}\n"
      "    http_connection_manager:\n"
      "      route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: "
      "[{match: {prefix: /}, route: {cluster: a}}]}]}\n"
      "  clusters:\n"
      "  - name: a\n"
      "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
      "{socket_address: {address: 127.0.0.1, port_value: 70000}}}}]}]}\n");
  EXPECT_THAT(message, ::testing::HasSubstr("static_resources.listeners[0].address.socket_address"
                                            ".port_value: port 80800 is out of range: use "
                                            "1-65535"));
  EXPECT_THAT(message, ::testing::HasSubstr("port_value: port 70000 is out of range"));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("not an IP address")));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("unknown cluster")));
}

TEST(SnapshotTest, AHostNameNeedsADnsClusterType) {
  auto config = [](const std::string& type) {
    return "static_resources:\n"
           "  listeners:\n"
           "  - name: l\n"
           "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
           "    http_connection_manager:\n"
           "      route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: "
           "[{match: {prefix: /}, route: {cluster: a}}]}]}\n"
           "  clusters:\n"
           "  - name: a\n" +
           type +
           "    load_assignment:\n"
           "      endpoints:\n"
           "      - lb_endpoints:\n"
           "        - endpoint: {address: {socket_address: {address: localhost, port_value: "
           "80}}}\n";
  };
  std::string message = BuildError(config(""));
  EXPECT_THAT(message, ::testing::HasSubstr(
                           "snap.yaml:12:49: static_resources.clusters[0].load_assignment."
                           "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "
                           "'localhost' is not an IP address"));
  EXPECT_THAT(message, ::testing::HasSubstr("type: STRICT_DNS or LOGICAL_DNS"));
  EXPECT_EQ(BuildError(config("    type: STRICT_DNS\n")), "");
  EXPECT_EQ(BuildError(config("    type: LOGICAL_DNS\n    dns_refresh_rate: 1s\n"
                              "    dns_lookup_family: AUTO\n")),
            "");
  EXPECT_THAT(Load(config("    type: DNS\n")),
              ::testing::HasSubstr("test.yaml:9:11: static_resources.clusters[0].type"));
}

TEST(SnapshotTest, AListenerOnTheAdminAddressIsAnError) {
  const std::string listener =
      "static_resources:\n"
      "  listeners:\n"
      "  - name: l\n"
      "    address: {socket_address: {address: 127.0.0.1, port_value: 9901}}\n"
      "    http_connection_manager: {route_config: {}}\n";
  EXPECT_THAT(BuildError(listener),
              ::testing::HasSubstr("snap.yaml:4:5: static_resources.listeners[0].address: "
                                   "address 127.0.0.1:9901 is the admin server's"));
  EXPECT_THAT(BuildError("admin: {address: {socket_address: {address: 0.0.0.0, port_value: "
                         "9901}}}\n" +
                         listener),
              ::testing::HasSubstr("is the admin server's"));
  EXPECT_EQ(BuildError("admin: {address: {socket_address: {address: 127.0.0.1, port_value: "
                       "9902}}}\n" +
                       listener),
            "");
}

TEST(SnapshotTest, UnchangedClusterKeepsItsInfo) {
  const std::string yaml =
      "static_resources:\n"
      "  listeners: [{name: l, address: {socket_address: {address: 127.0.0.1, port_value: 1}}}]\n"
      "  clusters:\n"
      "  - name: a\n"
      "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
      "{socket_address: {address: 127.0.0.1, port_value: 80}}}}]}]}\n";
  v1::Bootstrap bootstrap;
  ASSERT_TRUE(LoadYamlString(yaml, &bootstrap, nullptr).ok());
  StatsStore stats;
  server::RegisterBuiltinFilters();
  auto first = BuildSnapshot(bootstrap, nullptr, stats, nullptr, 1, SourceKind::kStatic);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = BuildSnapshot(bootstrap, nullptr, stats, first->get(), 2, SourceKind::kStatic);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*first)->clusters.at("a").get(), (*second)->clusters.at("a").get());
  bootstrap.mutable_static_resources()->mutable_clusters(0)->set_lb_policy(v1::Cluster::RANDOM);
  auto third = BuildSnapshot(bootstrap, nullptr, stats, second->get(), 3, SourceKind::kStatic);
  ASSERT_TRUE(third.ok());
  EXPECT_NE((*second)->clusters.at("a").get(), (*third)->clusters.at("a").get());
}

// A listener "l" whose connection manager is `hcm`, route configurations `routes` and a
// cluster "a"; line 6 is the connection manager's first line.
std::string RdsConfig(const std::string& hcm, const std::string& routes) {
  return "static_resources:\n"
         "  listeners:\n"
         "  - name: l\n"
         "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
         "    http_connection_manager:\n" +
         hcm + "  route_configurations:\n" + routes +
         "  clusters:\n"
         "  - name: a\n"
         "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
         "{socket_address: {address: 127.0.0.1, port_value: 80}}}}]}]}\n";
}

constexpr char kMainRoutes[] =
    "  - name: main\n"
    "    virtual_hosts: [{name: v, domains: [\"*\"], routes: [{match: {prefix: /}, route: "
    "{cluster: a}}]}]\n";

// The snapshot of `yaml` (file "rds.yaml"), or its errors.
absl::StatusOr<std::shared_ptr<ConfigSnapshot>> BuildYaml(const std::string& yaml,
                                                          StatsStore& stats) {
  server::RegisterBuiltinFilters();
  v1::Bootstrap bootstrap;
  SourceMap map("rds.yaml");
  if (absl::Status loaded = LoadYamlString(yaml, &bootstrap, &map); !loaded.ok()) return loaded;
  return BuildSnapshot(bootstrap, &map, stats, nullptr, 1, SourceKind::kStatic);
}

TEST(SnapshotTest, RdsNamesARouteConfigurationDeliveredApart) {
  StatsStore stats;
  auto snapshot =
      BuildYaml(RdsConfig("      rds: {route_config_name: main}\n", kMainRoutes), stats);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const auto& routes = (*snapshot)->route_configs.at("main");
  const auto& hcm = *(*snapshot)->listeners[0].filter_chains->Select().connection_manager;
  EXPECT_EQ(hcm.route_config, routes) << "the listener shares the named route configuration";
  http::RequestHeaders request;
  request.method = "GET";
  request.path = "/x";
  request.authority = "example.com";
  const auto* route = routes->Match(request);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->cluster, "a");
}

TEST(SnapshotTest, UnknownRouteConfigurationNameIsAnErrorAtTheName) {
  StatsStore stats;
  auto snapshot =
      BuildYaml(RdsConfig("      rds: {route_config_name: mian}\n", kMainRoutes), stats);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(std::string(snapshot.status().message()),
            "rds.yaml:6:13: static_resources.listeners[0].http_connection_manager.rds."
            "route_config_name: unknown route configuration 'mian'; did you mean 'main'?");
}

TEST(SnapshotTest, InlineRoutesAndRdsTogetherAreAnError) {
  StatsStore stats;
  auto snapshot = BuildYaml(RdsConfig("      rds: {route_config_name: main}\n"
                                      "      route_config: {}\n",
                                      kMainRoutes),
                            stats);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_NE(snapshot.status().message().find("only one field of 'route_specifier'"),
            absl::string_view::npos)
      << snapshot.status();
}

TEST(SnapshotTest, NamedRouteConfigurationsAreValidatedWhereTheyAreWritten) {
  StatsStore stats;
  auto snapshot = BuildYaml(RdsConfig("      rds: {route_config_name: main}\n",
                                      "  - name: main\n"
                                      "    virtual_hosts:\n"
                                      "    - name: v\n"
                                      "      domains: [\"*\"]\n"
                                      "      routes: [{match: {prefix: /}, route: {cluster: b}}]\n"
                                      "  - name: main\n"),
                            stats);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(std::string(snapshot.status().message()),
            "rds.yaml:12:45: static_resources.route_configurations[0].virtual_hosts[0].routes[0]."
            "route.cluster: unknown cluster 'b'\n"
            "rds.yaml:13:5: static_resources.route_configurations[1].name: duplicate route "
            "configuration name 'main'");
}

}  // namespace
}  // namespace phoenix::config
