#include "source/router/route_table.h"

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"

namespace phoenix::router {
namespace {

std::unique_ptr<RouteTable> Build(const std::string& yaml, config::ConfigErrors& errors) {
  config::v1::RouteConfiguration proto;
  absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
  EXPECT_TRUE(status.ok()) << status;
  return std::make_unique<RouteTable>(proto, "route_config", errors);
}

http::RequestHeaders Request(std::string method, std::string path, std::string host = "h") {
  http::RequestHeaders r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.authority = std::move(host);
  return r;
}

const std::string kTable = R"(
virtual_hosts:
- name: exact
  domains: ["api.example.com"]
  routes: [{name: api, match: {prefix: /}, route: {cluster: api}}]
- name: wildcard
  domains: ["*.example.com"]
  routes: [{name: wild, match: {prefix: /}, route: {cluster: wild}}]
- name: default
  domains: ["*"]
  routes:
  - {name: exact_path, match: {path: /exact}, route: {cluster: a}}
  - {name: nocase, match: {path: /crash, case_sensitive: false}, direct_response: {status: 403}}
  - {name: regex, match: {safe_regex: {regex: "/users/[0-9]+"}}, route: {cluster: users}}
  - name: canary
    match:
      prefix: /svc
      headers: [{name: x-canary, string_match: {exact: "1"}}]
    route: {cluster: canary}
  - name: post_only
    match:
      prefix: /svc
      headers: [{name: ":method", string_match: {exact: POST}}]
    route: {cluster: post}
  - name: debug
    match: {prefix: /svc, query_parameters: [{name: debug, present_match: true}]}
    route: {cluster: debug}
  - {name: svc, match: {prefix: /svc}, route: {cluster: svc, prefix_rewrite: /v2}}
)";

TEST(RouteTableTest, PicksVirtualHostByHost) {
  config::ConfigErrors errors;
  auto table = Build(kTable, errors);
  ASSERT_TRUE(errors.empty());
  EXPECT_EQ(table->Match(Request("GET", "/", "api.example.com"))->name(), "api");
  EXPECT_EQ(table->Match(Request("GET", "/", "API.example.com:8080"))->name(), "api");
  EXPECT_EQ(table->Match(Request("GET", "/", "x.example.com"))->name(), "wild");
  EXPECT_EQ(table->Match(Request("GET", "/exact", "other"))->name(), "exact_path");
}

TEST(RouteTableTest, MatchesPathsInOrder) {
  config::ConfigErrors errors;
  auto table = Build(kTable, errors);
  EXPECT_EQ(table->Match(Request("GET", "/exact?q=1"))->name(), "exact_path");
  EXPECT_EQ(table->Match(Request("GET", "/exact/more")), nullptr);
  EXPECT_EQ(table->Match(Request("GET", "/CRASH"))->name(), "nocase");
  EXPECT_EQ(table->Match(Request("GET", "/users/42"))->name(), "regex");
  EXPECT_EQ(table->Match(Request("GET", "/users/42x")), nullptr);
}

TEST(RouteTableTest, MatchesHeadersMethodAndQuery) {
  config::ConfigErrors errors;
  auto table = Build(kTable, errors);
  auto canary = Request("GET", "/svc/a");
  canary.headers.Add("x-canary", "1");
  EXPECT_EQ(table->Match(canary)->name(), "canary");
  EXPECT_EQ(table->Match(Request("POST", "/svc/a"))->name(), "post_only");
  EXPECT_EQ(table->Match(Request("GET", "/svc/a?x=1&debug"))->name(), "debug");
  EXPECT_EQ(table->Match(Request("GET", "/svc/a"))->name(), "svc");
}

TEST(RouteTableTest, PrefixRewrite) {
  config::ConfigErrors errors;
  auto table = Build(kTable, errors);
  auto request = Request("GET", "/svc/a?b=1");
  const RouteEntry* route = table->Match(request);
  ASSERT_NE(route, nullptr);
  route->RewriteRequest(request);
  EXPECT_EQ(request.path, "/v2/a?b=1");
}

TEST(RouteTableTest, WeightedClustersFollowWeights) {
  config::ConfigErrors errors;
  auto table = Build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 3}]}}
)",
                     errors);
  const RouteEntry* route = table->Match(Request("GET", "/"));
  ASSERT_NE(route, nullptr);
  int b = 0;
  for (uint64_t i = 0; i < 400; ++i) b += route->PickCluster([i] { return i; }) == "b";
  EXPECT_EQ(b, 300);
}

TEST(RouteTableTest, ReportsBadRegexAndDuplicateDomains) {
  config::ConfigErrors errors;
  Build(R"(
virtual_hosts:
- name: v
  domains: ["*", "*"]
  routes: [{match: {safe_regex: {regex: "(unclosed"}}, route: {cluster: a}}]
)",
        errors);
  ASSERT_EQ(errors.errors().size(), 2u);
  EXPECT_NE(errors.errors()[0].find("regex"), std::string::npos);
  EXPECT_NE(errors.errors()[1].find("appears twice"), std::string::npos);
}

TEST(RouteTableTest, RejectsHeaderInjectionInMutations) {
  config::ConfigErrors errors;
  Build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  request_headers_to_add: [{header: {key: "bad name", value: ok}}]
  routes:
  - match: {prefix: /}
    direct_response: {status: 200}
    response_headers_to_add: [{header: {key: x-ok, value: "a\r\nset-cookie: evil"}}]
)",
        errors);
  ASSERT_EQ(errors.errors().size(), 2u);
  std::string all = errors.errors()[0] + "\n" + errors.errors()[1];
  EXPECT_NE(all.find("virtual_hosts[0].request_headers_to_add[0].header.key: 'bad name'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("routes[0].response_headers_to_add[0].header.value"), std::string::npos)
      << all;
}

TEST(RouteTableTest, StringMatcherKinds) {
  config::ConfigErrors errors;
  config::v1::StringMatcher proto;
  proto.set_suffix(".JPG");
  proto.set_ignore_case(true);
  matchers::StringMatcher suffix(proto, "m", errors);
  EXPECT_TRUE(suffix.Match("a.jpg"));
  EXPECT_FALSE(suffix.Match("a.png"));
  proto.Clear();
  proto.set_contains("mid");
  matchers::StringMatcher contains(proto, "m", errors);
  EXPECT_TRUE(contains.Match("amidst"));
  EXPECT_TRUE(errors.empty());
}

TEST(RouteTableTest, DeclaredAppPathSemanticsApplyToEveryRoute) {
  config::ConfigErrors errors;
  auto table = Build(R"(
virtual_hosts:
- name: app
  domains: ["*"]
  app_path_semantics: {case_insensitive: true, ignore_trailing_slash: true,
                       ignore_path_params: true}
  routes:
  - {name: report, match: {path: /Report}, route: {cluster: a}}
  - {name: api, match: {prefix: /api/}, route: {cluster: a}}
  - {name: users, match: {safe_regex: {regex: "/users/[0-9]+"}}, route: {cluster: a}}
)",
                     errors);
  ASSERT_TRUE(errors.empty()) << errors.ToStatus();
  for (const char* path : {"/report", "/REPORT", "/report/", "/report;jsessionid=1"}) {
    const http::Route* route = table->Match(Request("GET", path));
    ASSERT_NE(route, nullptr) << path;
    EXPECT_EQ(route->name(), "report") << path;
    EXPECT_TRUE(route->app_path_semantics().case_insensitive);
  }
  EXPECT_EQ(table->Match(Request("GET", "/API/x"))->name(), "api");
  EXPECT_EQ(table->Match(Request("GET", "/api;v=2/x"))->name(), "api");
  EXPECT_EQ(table->Match(Request("GET", "/USERS/12/"))->name(), "users");
  EXPECT_EQ(table->Match(Request("GET", "/reports")), nullptr);
}

TEST(RouteTableTest, ARouteMayNotContradictItsAppsCaseInsensitivity) {
  config::ConfigErrors errors;
  Build(R"(
virtual_hosts:
- name: app
  domains: ["*"]
  app_path_semantics: {case_insensitive: true}
  routes: [{match: {path: /a, case_sensitive: true}, route: {cluster: a}}]
)",
        errors);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.ToStatus().ToString().find(
                "route_config.virtual_hosts[0].routes[0].match.case_sensitive: contradicts the "
                "virtual host's app_path_semantics.case_insensitive"),
            std::string::npos)
      << errors.ToStatus();
}

}  // namespace
}  // namespace phoenix::router
