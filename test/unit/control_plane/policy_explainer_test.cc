#include "source/control_plane/policy_explainer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"

namespace phoenix::control_plane {
namespace {

using ::testing::HasSubstr;

// Every node: a listener whose access policy denies /crash (and /admin/ to all but the ops
// admin identity), routing the rest to cluster "app".
constexpr char kCommon[] = R"(
listeners:
- name: ingress
  address: {socket_address: {address: 127.0.0.1, port_value: 18080}}
  http_connection_manager:
    stat_prefix: ingress
    rds: {route_config_name: main}
    http_filters:
    - name: phoenix.filters.http.access_policy
      typed_config:
        "@type": type.googleapis.com/phoenix.config.v1.AccessPolicy
        rules:
        - {name: no_crash, action: DENY, match: {path: {exact: /crash}}}
        - name: ops_only
          action: DENY
          match:
            path: {prefix: /admin/}
            not_rule: {principal: {exact: "spiffe://phoenix.local/ns/ops/sa/admin"}}
    - name: phoenix.filters.http.router
route_configurations:
- name: main
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - {name: default, match: {prefix: /}, route: {cluster: app}}
)";

// Node "canary" only: a listener of its own whose routes send everything to "app-canary".
constexpr char kCanary[] = R"(
listeners:
- name: canary
  address: {socket_address: {address: 127.0.0.1, port_value: 18081}}
  http_connection_manager: {stat_prefix: canary, rds: {route_config_name: canary}}
route_configurations:
- name: canary
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - {name: canary, match: {prefix: /}, route: {cluster: app-canary}}
)";

ResourceFile File(const std::string& path, const std::string& node, const char* yaml) {
  ResourceFile file;
  file.path = path;
  file.node = node;
  file.source_map = config::SourceMap(path);
  EXPECT_TRUE(config::LoadYamlString(yaml, &file.resources, &file.source_map).ok());
  return file;
}

class PolicyExplainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto built = BuildResourceSnapshot(
        {File("common.yaml", "", kCommon), File("nodes/canary/routes.yaml", "canary", kCanary)}, 7);
    ASSERT_TRUE(built.ok()) << built.status();
    snapshot_ = *built;
  }

  static config::v1::PolicyCheckRequest Request(const std::string& path,
                                                const std::string& principal = "") {
    config::v1::PolicyCheckRequest request;
    request.set_method("GET");
    request.set_path(path);
    request.set_principal(principal);
    return request;
  }

  std::shared_ptr<const ResourceSnapshot> snapshot_;
};

TEST_F(PolicyExplainerTest, AnObviousDenyRuleHoldsForEveryForm) {
  auto explained = ExplainForNode(*snapshot_, "web", "", Request("/CRASH/"));
  ASSERT_TRUE(explained.ok()) << explained.status();
  EXPECT_EQ(explained->listener, "ingress");
  EXPECT_EQ(explained->outcome, "denied by no_crash");
  EXPECT_FALSE(explained->lines.empty());
}

TEST_F(PolicyExplainerTest, EachNodeGetsItsOwnResources) {
  auto web = ExplainForNode(*snapshot_, "web", "ingress", Request("/"));
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_THAT(web->outcome, HasSubstr("cluster app"));
  auto canary = ExplainForNode(*snapshot_, "canary", "canary", Request("/"));
  ASSERT_TRUE(canary.ok()) << canary.status();
  EXPECT_THAT(canary->outcome, HasSubstr("cluster app-canary"));
  EXPECT_EQ(ExplainForNode(*snapshot_, "web", "canary", Request("/")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PolicyExplainerTest, RulesOnIdentityUseThePrincipalGiven) {
  auto anyone = ExplainForNode(*snapshot_, "web", "", Request("/admin/users"));
  ASSERT_TRUE(anyone.ok());
  EXPECT_EQ(anyone->outcome, "denied by ops_only");
  auto admin = ExplainForNode(*snapshot_, "web", "",
                              Request("/admin/users", "spiffe://phoenix.local/ns/ops/sa/admin"));
  ASSERT_TRUE(admin.ok());
  EXPECT_THAT(admin->outcome, HasSubstr("cluster app"));
}

TEST_F(PolicyExplainerTest, AnUnknownListenerIsNotFound) {
  auto explained = ExplainForNode(*snapshot_, "web", "egress", Request("/"));
  EXPECT_EQ(explained.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(explained.status().message(), HasSubstr("no listener named 'egress'"));
}

}  // namespace
}  // namespace phoenix::control_plane
