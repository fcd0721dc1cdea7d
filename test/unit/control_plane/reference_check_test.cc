#include "source/control_plane/reference_check.h"

#include "gtest/gtest.h"
#include "source/control_plane/change_plan.h"
#include "source/control_plane/file_set.h"

namespace phoenix::control_plane {
namespace {

constexpr const char* kListener = R"(listeners:
- name: ingress
  address: {socket_address: {address: 127.0.0.1, port_value: 18080}}
  http_connection_manager:
    stat_prefix: ingress
    rds: {route_config_name: main}
)";
constexpr const char* kRoutes = R"(route_configurations:
- name: main
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {prefix: /}
      route: {cluster: app}
)";
constexpr const char* kCluster = R"(clusters:
- name: app
  connect_timeout: 1s
  load_assignment:
    cluster_name: app
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}
)";

std::shared_ptr<const ResourceSnapshot> Build(const FileSet& files) {
  auto parsed = ParseResourceFiles(files, "");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  auto snapshot = BuildResourceSnapshot(*parsed, 1);
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  return *snapshot;
}

TEST(ReferenceCheckTest, RemovingWhatOthersNameIsFound) {
  auto before = Build({{"c.yaml", kCluster}, {"l.yaml", kListener}, {"r.yaml", kRoutes}});
  auto without_cluster = Build({{"l.yaml", kListener}, {"r.yaml", kRoutes}});
  auto dangling = NewDanglingReferences(before.get(), *without_cluster);
  ASSERT_EQ(dangling.size(), 1u);
  EXPECT_EQ(dangling[0],
            "every node: RouteConfiguration 'main' (r.yaml) refers to Cluster 'app', which "
            "would not exist");
  auto without_routes = Build({{"c.yaml", kCluster}, {"l.yaml", kListener}});
  dangling = NewDanglingReferences(before.get(), *without_routes);
  ASSERT_EQ(dangling.size(), 1u);
  EXPECT_NE(dangling[0].find("Listener 'ingress' (l.yaml) refers to RouteConfiguration 'main'"),
            std::string::npos);
}

TEST(ReferenceCheckTest, RemovingWhatNobodyNamesOrWhatWasAlreadyMissingIsFine) {
  auto before = Build({{"c.yaml", kCluster}, {"l.yaml", kListener}});  // No routes already.
  auto after = Build({{"l.yaml", kListener}});
  EXPECT_TRUE(NewDanglingReferences(before.get(), *after).empty());
}

}  // namespace
}  // namespace phoenix::control_plane
