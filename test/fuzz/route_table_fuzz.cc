// Fuzzes phoenix::router::RouteTable with a fixed RouteConfiguration that uses every kind of
// matcher: exact, "*.suffix", "prefix*" and "*" domains; prefix, exact-path and regex routes
// (case-sensitive or not); header matchers (exact, prefix, suffix, contains, regex, present,
// inverted, ":method"); query-parameter matchers; weighted clusters, redirects, rewrites and
// header mutations.
//
// Input: lines split on '\n': method, path, authority, then "name: value" header lines.
//
// Invariants checked:
//  - routing is deterministic and ignores the case of the authority (the table has no
//    authority matchers);
//  - every path that starts with '/' gets a route (each virtual host ends with a catch-all,
//    and there is a "*" host), and the route's virtual host is FindVirtualHost(authority);
//  - after the data path's path normalization, the request still routes;
//  - a cluster route picks a configured cluster for any random value; a redirect has a
//    "scheme://" Location; a prefix rewrite starts the path with the new prefix; a header set
//    by a mutation appears exactly once.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "source/config/yaml_loader.h"
#include "source/http/path_normalizer.h"
#include "source/router/route_table.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

constexpr char kRouteConfig[] = R"yaml(
name: fuzz_routes
virtual_hosts:
- name: api
  domains: ["api.example.com", "api.example.com:8443"]
  request_headers_to_add: [{header: {key: x-vhost, value: api}, append: false}]
  routes:
  - name: users_v2
    match:
      path: /v1/users
      headers: [{name: x-api-version, string_match: {exact: "2"}}]
    route: {cluster: users_v2, timeout: 2s}
  - name: user_by_id
    match: {safe_regex: {regex: "/v1/users/[0-9]+(/.*)?"}}
    route:
      cluster: users
      retry_policy: {retry_on: "5xx,reset", num_retries: 2}
  - name: debug
    match:
      prefix: /v1
      query_parameters:
      - {name: debug, present_match: true}
      - {name: trace, string_match: {safe_regex: {regex: "[a-f0-9]{8}"}}}
    route: {cluster: debug}
  - name: canary
    match:
      prefix: /v1
      headers:
      - {name: cookie, string_match: {contains: "canary=1"}}
      - {name: ":method", string_match: {exact: GET}}
    route:
      weighted_clusters:
        clusters: [{name: v1_canary, weight: 5}, {name: v1_stable, weight: 95}]
  - name: api_catch_all
    match: {prefix: /}
    route: {cluster: api, prefix_rewrite: /api/}
- name: wildcard
  domains: ["*.example.com", "*.example.org"]
  response_headers_to_add: [{header: {key: x-served-by, value: phoenix}}]
  response_headers_to_remove: [server]
  routes:
  - name: login
    match: {path: /Login, case_sensitive: false}
    redirect: {scheme_redirect: https, host_redirect: login.example.com, port_redirect: 8443}
  - name: old
    match: {prefix: /old/, case_sensitive: false}
    redirect: {prefix_rewrite: /new/, strip_query: true, response_code: PERMANENT_REDIRECT}
  - name: not_post
    match:
      prefix: /upload
      headers: [{name: ":method", string_match: {exact: POST}, invert_match: true}]
    direct_response: {status: 405, body: {inline_string: "use POST\n"}}
  - name: bots
    match:
      prefix: /
      headers:
      - name: user-agent
        string_match: {safe_regex: {regex: ".*(bot|crawler).*"}, ignore_case: true}
    direct_response: {status: 403}
  - name: wildcard_catch_all
    match: {prefix: /}
    direct_response: {status: 404}
- name: static
  domains: ["static.*", "cdn.*"]
  routes:
  - name: assets
    match:
      prefix: /assets/
      query_parameters: [{name: v, string_match: {prefix: "1.", ignore_case: true}}]
    route: {cluster: cdn, prefix_rewrite: /, host_rewrite_literal: cdn.internal}
  - name: static_catch_all
    match: {prefix: /}
    route: {cluster: static}
- name: default
  domains: ["*"]
  request_headers_to_remove: [x-internal]
  routes:
  - name: health
    match: {path: /healthz}
    direct_response: {status: 200, body: {inline_string: "ok\n"}}
  - name: exact_rewrite
    match: {path: /legacy, case_sensitive: false}
    route: {cluster: legacy, prefix_rewrite: /modern}
  - name: images
    match: {safe_regex: {regex: "/img/.*\\.(png|jpe?g)"}, case_sensitive: false}
    route: {cluster: images}
  - name: json
    match:
      prefix: /
      headers:
      - {name: accept, string_match: {suffix: "/JSON", ignore_case: true}}
      - {name: x-tenant, present_match: true}
      - {name: x-env, string_match: {prefix: prod}}
    route: {cluster: json}
  - name: default_catch_all
    match: {prefix: /}
    request_headers_to_add:
    - {header: {key: x-route, value: default}, append: false}
    - {header: {key: x-trace, value: "1"}}
    route: {cluster: default}
)yaml";

const router::RouteTable& Table() {
  static const router::RouteTable* table = [] {
    config::v1::RouteConfiguration proto;
    absl::Status status = config::LoadYamlString(kRouteConfig, &proto, nullptr);
    if (!status.ok()) {
      fprintf(stderr, "fuzz route config: %s\n", std::string(status.message()).c_str());
      abort();
    }
    config::ConfigErrors errors;
    auto* built = new router::RouteTable(proto, "route_config", errors);
    if (!errors.empty()) {
      fprintf(stderr, "fuzz route config: %s\n", std::string(errors.ToStatus().message()).c_str());
      abort();
    }
    return built;
  }();
  return *table;
}

// Checks what a caller does with the route it got.
void CheckRoute(const router::RouteEntry& route, const http::RequestHeaders& request,
                uint64_t random) {
  using Action = router::RouteEntry::Action;
  FUZZ_CHECK(route.virtual_host != nullptr);
  FUZZ_CHECK(route.Matches(request));
  if (route.action == Action::kCluster || route.action == Action::kWeightedClusters) {
    const std::string& cluster = route.PickCluster([random] { return random; });
    FUZZ_CHECK(!cluster.empty());
    if (route.action == Action::kWeightedClusters) {
      bool listed = false;
      for (const auto& c : route.weighted_clusters) listed = listed || c.name == cluster;
      FUZZ_CHECK(listed);
    }
    http::RequestHeaders upstream = request;
    route.RewriteRequest(upstream);
    if (!route.prefix_rewrite.empty()) FUZZ_CHECK(upstream.path.starts_with(route.prefix_rewrite));
    if (!route.host_rewrite.empty()) FUZZ_CHECK(upstream.authority == route.host_rewrite);
    route.virtual_host->request_mutations.Apply(upstream.headers);
    route.request_mutations.Apply(upstream.headers);
    if (route.route_name == "default_catch_all") FUZZ_CHECK(upstream.headers.Count("x-route") == 1);
    if (route.virtual_host->name == "api") FUZZ_CHECK(upstream.headers.Count("x-vhost") == 1);
    if (route.virtual_host->name == "default") {
      FUZZ_CHECK(upstream.headers.Get("x-internal") == nullptr);
    }
  } else if (route.action == Action::kRedirect) {
    std::string location = route.RedirectLocation(request);
    FUZZ_CHECK(location.starts_with("http://") || location.starts_with("https://"));
  }
  http::HeaderMap response;
  response.Add("server", "upstream");
  route.virtual_host->response_mutations.Apply(response);
  route.response_mutations.Apply(response);
}

void RouteAndCheck(const http::RequestHeaders& request, uint64_t random) {
  const router::RouteTable& table = Table();
  const router::RouteEntry* route = table.Match(request);
  FUZZ_CHECK(route == table.Match(request));

  http::RequestHeaders upper = request;
  upper.authority = absl::AsciiStrToUpper(request.authority);
  FUZZ_CHECK(table.Match(upper) == route);

  const router::VirtualHostEntry* vhost = table.FindVirtualHost(request.authority);
  FUZZ_CHECK(vhost != nullptr);  // There is a "*" host.
  if (request.path.starts_with("/")) FUZZ_CHECK(route != nullptr);
  if (route == nullptr) return;
  FUZZ_CHECK(route->virtual_host == vhost);
  CheckRoute(*route, request, random);
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace phoenix;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t end = input.find('\n', start);
    lines.push_back(input.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (lines.size() < 3) lines.resize(3);
  http::RequestHeaders request;
  request.method = std::string(lines[0]);
  request.path = std::string(lines[1]);
  request.authority = std::string(lines[2]);
  for (size_t i = 3; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    std::string_view name = lines[i].substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : lines[i].substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (!name.empty()) request.headers.Add(name, value);
  }
  uint64_t random =
      std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(data), size));

  fuzz::RouteAndCheck(request, random);

  // What the connection manager routes: the normalized path.
  http::RequestHeaders normalized = request;
  if (http::NormalizePath(normalized.path, http::PathNormalizationOptions())) {
    fuzz::RouteAndCheck(normalized, random);
    if (normalized.path != "*") FUZZ_CHECK(fuzz::Table().Match(normalized) != nullptr);
  }
  return 0;
}
