#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "phoenix/config/v1/route.pb.h"
#include "source/common/config_errors.h"
#include "source/http/header_map.h"
#include "source/http/route_config.h"
#include "source/matchers/header_matcher.h"
#include "source/matchers/path_matcher.h"

namespace phoenix::router {

// Adds, replaces or removes headers on a request or response.
class HeaderMutations {
 public:
  // Invalid names or values are reported under `path` + ".<field>[i]".
  HeaderMutations(const google::protobuf::RepeatedPtrField<config::v1::HeaderValueOption>& add,
                  const google::protobuf::RepeatedPtrField<std::string>& remove,
                  const std::string& path, const char* add_field, const char* remove_field,
                  config::ConfigErrors& errors);
  void Apply(http::HeaderMap& headers) const {
    if (!empty()) ApplyAll(headers);  // Most routes have none: no call per request then.
  }
  bool empty() const { return add_.empty() && remove_.empty(); }

 private:
  void ApplyAll(http::HeaderMap& headers) const;

  struct Add {
    std::string key;
    std::string value;
    bool append;
  };
  std::vector<Add> add_;
  std::vector<std::string> remove_;
};

// A compiled RetryPolicy.
struct RetryConfig {
  bool on_5xx = false;
  bool on_gateway_error = false;
  bool on_connect_failure = false;
  bool on_reset = false;
  uint32_t grpc_statuses = 0;  // Bit n: retry a Trailers-Only response with grpc-status n.
  std::vector<uint32_t> retriable_status_codes;
  uint32_t num_retries = 0;
  std::chrono::milliseconds per_try_timeout{0};
  std::chrono::milliseconds base_interval{25};
  std::chrono::milliseconds max_interval{250};
  size_t max_buffered_body_bytes = 64 * 1024;

  bool enabled() const { return num_retries > 0; }
  bool RetriableStatus(int status) const;
  bool RetriableGrpcStatus(int status) const {
    return status >= 0 && status < 32 && ((grpc_statuses >> status) & 1) != 0;
  }
};

struct VirtualHostEntry;

// One compiled route: how it matches and what it does.
struct RouteEntry : public http::Route {
  enum class Action { kCluster, kWeightedClusters, kRedirect, kDirectResponse };
  struct WeightedCluster {
    std::string name;
    uint32_t weight;
  };

  std::string route_name;
  const VirtualHostEntry* virtual_host = nullptr;
  Action action = Action::kCluster;
  // Upstream target.
  std::string cluster;
  std::vector<WeightedCluster> weighted_clusters;
  uint32_t total_weight = 0;
  std::string prefix_rewrite;
  std::string host_rewrite;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds max_stream_duration{0};  // 0: none.
  // A gRPC request's grpc-timeout is its timeout (max_stream_duration.grpc_timeout_header_max
  // set), capped by grpc_timeout_max (0: no cap).
  bool grpc_timeout_header = false;
  std::chrono::milliseconds grpc_timeout_max{0};
  RetryConfig retry;
  // RouteAction.upgrade_configs: (lowercase type, enabled), overriding the connection manager.
  std::vector<std::pair<std::string, bool>> upgrades;
  // Local answers.
  config::v1::RedirectAction redirect;
  uint32_t direct_status = 0;
  std::string direct_body;
  HeaderMutations request_mutations;
  HeaderMutations response_mutations;

  // Match.
  matchers::PathMatcher path_matcher;
  std::vector<matchers::HeaderMatcher> headers;
  std::vector<matchers::QueryParameterMatcher> query_parameters;
  std::string config_path;  // Where this route sits in the config, for error messages.

  RouteEntry(const config::v1::Route& proto, const config::v1::VirtualHost& vhost,
             std::string_view path, config::ConfigErrors& errors);
  // The router's view of a route this table returned.
  static const RouteEntry* From(const http::Route* route) {
    return static_cast<const RouteEntry*>(route);
  }
  const std::string& name() const override { return route_name; }
  const http::PathSemantics& app_path_semantics() const override;
  std::optional<bool> UpgradeEnabled(std::string_view type) const override {
    for (const auto& [t, enabled] : upgrades) {
      if (t == type) return enabled;
    }
    return std::nullopt;
  }
  bool Matches(const http::RequestHeaders& request) const;
  // The cluster for this request. Only weighted clusters draw from `random`: a single
  // cluster costs no draw.
  const std::string& PickCluster(absl::FunctionRef<uint64_t()> random) const;
  // Location header value for a redirect route.
  std::string RedirectLocation(const http::RequestHeaders& request) const;
  // Applies prefix/host rewrites to the upstream request.
  void RewriteRequest(http::RequestHeaders& request) const;
};

struct VirtualHostEntry {
  std::string name;
  http::PathSemantics app_paths;  // app_path_semantics, as declared.
  std::vector<std::unique_ptr<RouteEntry>> routes;
  HeaderMutations request_mutations;
  HeaderMutations response_mutations;

  VirtualHostEntry(const config::v1::VirtualHost& proto, std::string_view path,
                   config::ConfigErrors& errors);
};

// The compiled RouteConfiguration: picks the virtual host by Host, then the first route
// whose match accepts the request. Immutable once built; shared by all workers.
class RouteTable : public http::RouteConfig {
 public:
  // Errors are added under `path` (e.g. "static_resources.listeners[0]...route_config").
  RouteTable(const config::v1::RouteConfiguration& proto, std::string_view path,
             config::ConfigErrors& errors);

  const http::Route* RouteFor(const http::RequestHeaders& request) const override {
    return Match(request);
  }
  const RouteEntry* Match(const http::RequestHeaders& request) const;
  const VirtualHostEntry* FindVirtualHost(std::string_view authority) const;
  // Every cluster a route can send to (for validation).
  std::vector<std::pair<std::string, std::string>> ReferencedClusters() const;

 private:
  std::vector<std::unique_ptr<VirtualHostEntry>> virtual_hosts_;
  std::vector<std::string> vhost_paths_;
  absl::flat_hash_map<std::string, const VirtualHostEntry*> exact_;
  // "*.example.com" stored as ".example.com", longest first.
  std::vector<std::pair<std::string, const VirtualHostEntry*>> suffixes_;
  // "api.*" stored as "api.", longest first.
  std::vector<std::pair<std::string, const VirtualHostEntry*>> prefixes_;
  const VirtualHostEntry* default_ = nullptr;
};

}  // namespace phoenix::router
