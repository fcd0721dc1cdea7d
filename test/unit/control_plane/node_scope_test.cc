#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/control_plane/resource_files.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;
using ::testing::Pair;

TEST(ScopeOfPathTest, EachFolderNamesItsNodes) {
  EXPECT_THAT(ScopeOfPath("routes.yaml"), Optional(std::string("")));
  EXPECT_THAT(ScopeOfPath("nodes/sidecar-1/a.yaml"), Optional(std::string("sidecar-1")));
  EXPECT_THAT(ScopeOfPath("clusters/web/a.yaml"), Optional(std::string("@cluster/web")));
  EXPECT_THAT(ScopeOfPath("metadata/region=eu/a.yaml"),
              Optional(std::string("@metadata/region=eu")));
  EXPECT_EQ(ScopeOfPath("metadata/region/a.yaml"), std::nullopt);  // No '='.
  EXPECT_EQ(ScopeOfPath("metadata/=eu/a.yaml"), std::nullopt);
  EXPECT_EQ(ScopeOfPath("nodes/@cluster/a.yaml"), std::nullopt);
  EXPECT_EQ(ScopeOfPath("other/x/a.yaml"), std::nullopt);
  EXPECT_EQ(ScopeOfPath("nodes/a.yaml"), std::nullopt);
}

ResourceFile File(const std::string& path, const std::string& yaml) {
  ResourceFile file;
  file.path = path;
  file.node = ScopeOfPath(path).value_or("");
  file.source_map = config::SourceMap(path);
  EXPECT_TRUE(config::LoadYamlString(yaml, &file.resources, &file.source_map).ok());
  return file;
}

std::string Cluster(const std::string& name, int port) {
  return "clusters:\n- name: " + name +
         "\n  load_assignment:\n    endpoints:\n    - lb_endpoints:\n      - endpoint: {address: "
         "{socket_address: {address: 127.0.0.1, port_value: " +
         std::to_string(port) + "}}}\n";
}

// The port of cluster `name` as `node` gets it.
int PortFor(const ResourceSnapshot& snapshot, const NodeIdentity& node, const std::string& name) {
  auto clusters = snapshot.For(node, ResourceType::kCluster);
  auto it = clusters.find(name);
  if (it == clusters.end()) return 0;
  config::v1::Cluster cluster;
  it->second->packed.UnpackTo(&cluster);
  return cluster.load_assignment()
      .endpoints(0)
      .lb_endpoints(0)
      .endpoint()
      .address()
      .socket_address()
      .port_value();
}

TEST(NodeScopeTest, MoreSpecificScopesWin) {
  auto built = BuildResourceSnapshot(
      {File("common.yaml", Cluster("app", 1)), File("clusters/web/c.yaml", Cluster("db", 2)),
       File("metadata/region=eu/c.yaml", Cluster("db", 3)),
       File("nodes/sidecar-1/c.yaml", Cluster("db", 4))},
      1);
  ASSERT_TRUE(built.ok()) << built.status();
  const ResourceSnapshot& snapshot = **built;
  EXPECT_EQ(PortFor(snapshot, {"sidecar-9", "api", {}}, "db"), 0);
  EXPECT_EQ(PortFor(snapshot, {"sidecar-9", "web", {}}, "db"), 2);
  EXPECT_EQ(PortFor(snapshot, {"sidecar-9", "web", {{"region", "eu"}}}, "db"), 3);
  EXPECT_EQ(PortFor(snapshot, {"sidecar-1", "web", {{"region", "eu"}}}, "db"), 4);
  EXPECT_EQ(PortFor(snapshot, {"sidecar-9", "api", {{"region", "us"}}}, "app"), 1);
}

TEST(NodeScopeTest, SecretsStayOutOfClusterAndMetadataScopes) {
  auto built = BuildResourceSnapshot(
      {File("clusters/web/s.yaml",
            "secrets:\n- name: ca\n  validation_context: {trusted_ca: {inline_string: x}}\n")},
      1);
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(std::string(built.status().message()),
              ::testing::HasSubstr("clusters/web/s.yaml: secrets go in nodes/<node id>/"));
}

}  // namespace
}  // namespace phoenix::control_plane
