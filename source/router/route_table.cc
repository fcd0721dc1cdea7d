#include "source/router/route_table.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "source/common/duration.h"
#include "source/common/strings.h"
#include "source/http/grpc.h"

namespace phoenix::router {
namespace {

// RFC 9110 token characters.
bool IsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!(absl::ascii_isalnum(c) ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos)) {
      return false;
    }
  }
  return true;
}

bool IsHeaderValue(std::string_view value) {
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

HeaderMutations::HeaderMutations(
    const google::protobuf::RepeatedPtrField<config::v1::HeaderValueOption>& add,
    const google::protobuf::RepeatedPtrField<std::string>& remove, const std::string& path,
    const char* add_field, const char* remove_field, config::ConfigErrors& errors) {
  for (int i = 0; i < add.size(); ++i) {
    const auto& header = add[i].header();
    std::string hpath = absl::StrCat(path, ".", add_field, "[", i, "].header");
    if (!IsHeaderName(header.key())) {
      errors.Add(hpath + ".key", absl::StrCat("'", header.key(), "' is not a valid header name"));
    }
    if (!IsHeaderValue(header.value())) {
      errors.Add(hpath + ".value", "header values may not contain control characters");
    }
    add_.push_back({absl::AsciiStrToLower(header.key()), header.value(),
                    !add[i].has_append() || add[i].append()});
  }
  for (int i = 0; i < remove.size(); ++i) {
    if (!IsHeaderName(remove[i])) {
      errors.Add(absl::StrCat(path, ".", remove_field, "[", i, "]"),
                 absl::StrCat("'", remove[i], "' is not a valid header name"));
    }
    remove_.push_back(absl::AsciiStrToLower(remove[i]));
  }
}

void HeaderMutations::ApplyAll(http::HeaderMap& headers) const {
  for (const auto& name : remove_) headers.Remove(name);
  for (const auto& add : add_) {
    if (add.append) {
      headers.Add(add.key, add.value);
    } else {
      headers.Set(add.key, add.value);
    }
  }
}

bool RetryConfig::RetriableStatus(int status) const {
  if (on_5xx && status >= 500 && status <= 599) return true;
  if (on_gateway_error && (status == 502 || status == 503 || status == 504)) return true;
  return std::find(retriable_status_codes.begin(), retriable_status_codes.end(),
                   static_cast<uint32_t>(status)) != retriable_status_codes.end();
}

namespace {

// The gRPC status a retry_on condition names (Envoy's names), or -1.
int GrpcRetryCondition(std::string_view condition) {
  if (condition == "cancelled") return static_cast<int>(http::GrpcStatus::kCancelled);
  if (condition == "deadline-exceeded") {
    return static_cast<int>(http::GrpcStatus::kDeadlineExceeded);
  }
  if (condition == "internal") return static_cast<int>(http::GrpcStatus::kInternal);
  if (condition == "resource-exhausted") {
    return static_cast<int>(http::GrpcStatus::kResourceExhausted);
  }
  if (condition == "unavailable") return static_cast<int>(http::GrpcStatus::kUnavailable);
  return -1;
}

RetryConfig CompileRetryPolicy(const config::v1::RetryPolicy& proto, const std::string& path,
                               config::ConfigErrors& errors) {
  RetryConfig retry;
  bool codes_condition = false;
  for (absl::string_view raw : absl::StrSplit(proto.retry_on(), ',', absl::SkipWhitespace())) {
    std::string condition(absl::StripAsciiWhitespace(raw));
    if (condition == "5xx") {
      retry.on_5xx = true;
    } else if (condition == "gateway-error") {
      retry.on_gateway_error = true;
    } else if (condition == "connect-failure") {
      retry.on_connect_failure = true;
    } else if (condition == "reset") {
      retry.on_reset = true;
    } else if (condition == "retriable-status-codes") {
      codes_condition = true;
    } else if (int grpc = GrpcRetryCondition(condition); grpc >= 0) {
      retry.grpc_statuses |= 1u << grpc;
    } else {
      errors.Add(path + ".retry_on",
                 absl::StrCat("unknown retry condition '", condition,
                              "' (5xx, gateway-error, connect-failure, reset, "
                              "retriable-status-codes, cancelled, deadline-exceeded, internal, "
                              "resource-exhausted, unavailable)"));
    }
  }
  if (codes_condition) {
    retry.retriable_status_codes.assign(proto.retriable_status_codes().begin(),
                                        proto.retriable_status_codes().end());
  }
  if (codes_condition && retry.retriable_status_codes.empty()) {
    errors.Add(path + ".retriable_status_codes", "retriable-status-codes needs codes");
  }
  bool any = retry.on_5xx || retry.on_gateway_error || retry.on_connect_failure || retry.on_reset ||
             retry.grpc_statuses != 0 || !retry.retriable_status_codes.empty();
  retry.num_retries = any ? (proto.has_num_retries() ? proto.num_retries() : 1) : 0;
  retry.per_try_timeout = ToMilliseconds(proto.per_try_timeout());
  if (proto.retry_back_off().has_base_interval()) {
    retry.base_interval = ToMilliseconds(proto.retry_back_off().base_interval());
    if (retry.base_interval.count() <= 0) {
      errors.Add(path + ".retry_back_off.base_interval", "must be at least 1ms");
    }
  }
  retry.max_interval = proto.retry_back_off().has_max_interval()
                           ? ToMilliseconds(proto.retry_back_off().max_interval())
                           : retry.base_interval * 10;
  if (retry.max_interval < retry.base_interval) {
    errors.Add(path + ".retry_back_off.max_interval", "must not be below base_interval");
  }
  if (proto.max_buffered_body_bytes() != 0) {
    retry.max_buffered_body_bytes = proto.max_buffered_body_bytes();
  }
  return retry;
}

}  // namespace

namespace {

// A virtual host's declared app_path_semantics.
http::PathSemantics AppPaths(const config::v1::VirtualHost& vhost) {
  const auto& declared = vhost.app_path_semantics();
  return {declared.case_insensitive(), declared.ignore_trailing_slash(),
          declared.ignore_path_params()};
}

}  // namespace

RouteEntry::RouteEntry(const config::v1::Route& proto, const config::v1::VirtualHost& vhost,
                       std::string_view path, config::ConfigErrors& errors)
    : route_name(proto.name()),
      request_mutations(proto.request_headers_to_add(), proto.request_headers_to_remove(),
                        std::string(path), "request_headers_to_add", "request_headers_to_remove",
                        errors),
      response_mutations(proto.response_headers_to_add(), proto.response_headers_to_remove(),
                         std::string(path), "response_headers_to_add", "response_headers_to_remove",
                         errors),
      path_matcher(proto.match(), std::string(path), errors, AppPaths(vhost)),
      config_path(path) {
  std::string p(path);
  const auto& match = proto.match();
  for (int i = 0; i < match.headers_size(); ++i) {
    headers.emplace_back(match.headers(i), absl::StrCat(p, ".match.headers[", i, "]"), errors);
  }
  for (int i = 0; i < match.query_parameters_size(); ++i) {
    query_parameters.emplace_back(match.query_parameters(i),
                                  absl::StrCat(p, ".match.query_parameters[", i, "]"), errors);
  }

  switch (proto.action_case()) {
    case config::v1::Route::kRoute: {
      const auto& route = proto.route();
      prefix_rewrite = route.prefix_rewrite();
      host_rewrite = route.host_rewrite_literal();
      timeout = ToMilliseconds(route.timeout());
      max_stream_duration = ToMilliseconds(route.max_stream_duration().max_stream_duration());
      grpc_timeout_header = route.max_stream_duration().has_grpc_timeout_header_max();
      grpc_timeout_max = ToMilliseconds(route.max_stream_duration().grpc_timeout_header_max());
      if (route.has_retry_policy()) {
        retry = CompileRetryPolicy(route.retry_policy(), p + ".route.retry_policy", errors);
      }
      for (int i = 0; i < route.upgrade_configs_size(); ++i) {
        const auto& upgrade = route.upgrade_configs(i);
        std::string type = absl::AsciiStrToLower(upgrade.upgrade_type());
        if (type != "websocket") {
          errors.Add(absl::StrCat(p, ".route.upgrade_configs[", i, "].upgrade_type"),
                     "only websocket upgrades are supported");
        }
        upgrades.emplace_back(std::move(type), !upgrade.has_enabled() || upgrade.enabled());
      }
      if (route.has_weighted_clusters()) {
        action = Action::kWeightedClusters;
        const auto& clusters = route.weighted_clusters().clusters();
        if (clusters.empty())
          errors.Add(p + ".route.weighted_clusters", "needs at least one cluster");
        for (const auto& c : clusters) {
          weighted_clusters.push_back({c.name(), c.weight()});
          total_weight += c.weight();
        }
        if (!clusters.empty() && total_weight == 0) {
          errors.Add(p + ".route.weighted_clusters", "the weights add up to 0");
        }
      } else {
        action = Action::kCluster;
        cluster = route.cluster();
        if (cluster.empty()) errors.Add(p + ".route", "needs cluster or weighted_clusters");
      }
      break;
    }
    case config::v1::Route::kRedirect:
      action = Action::kRedirect;
      redirect = proto.redirect();
      break;
    case config::v1::Route::kDirectResponse:
      action = Action::kDirectResponse;
      direct_status = proto.direct_response().status();
      direct_body = proto.direct_response().body().inline_string();
      if (proto.direct_response().body().has_filename()) {
        errors.Add(p + ".direct_response.body.filename", "give the body as inline_string");
      }
      if (direct_status < 200 || direct_status > 599) {
        errors.Add(p + ".direct_response.status", "status must be between 200 and 599");
      }
      break;
    case config::v1::Route::ACTION_NOT_SET:
      errors.Add(p, "a route needs one of route, redirect, direct_response");
      break;
  }
}

bool RouteEntry::Matches(const http::RequestHeaders& request) const {
  if (!path_matcher.Match(request.PathWithoutQuery())) return false;
  for (const auto& header : headers) {
    if (!header.Match(request)) return false;
  }
  if (!query_parameters.empty()) {
    std::string_view query = request.Query();
    for (const auto& parameter : query_parameters) {
      if (!parameter.Match(query)) return false;
    }
  }
  return true;
}

const std::string& RouteEntry::PickCluster(absl::FunctionRef<uint64_t()> random) const {
  if (action != Action::kWeightedClusters || total_weight == 0) return cluster;
  uint64_t point = random() % total_weight;
  for (const auto& c : weighted_clusters) {
    if (point < c.weight) return c.name;
    point -= c.weight;
  }
  return weighted_clusters.back().name;
}

std::string RouteEntry::RedirectLocation(const http::RequestHeaders& request) const {
  std::string scheme = redirect.scheme_redirect().empty() ? "http" : redirect.scheme_redirect();
  std::string host = request.authority;
  if (!redirect.host_redirect().empty()) {
    // Keep the original port unless one is configured.
    size_t colon = host.rfind(':');
    std::string port = colon != std::string::npos && host.find(']', colon) == std::string::npos
                           ? host.substr(colon)
                           : "";
    host = redirect.host_redirect() + port;
  }
  if (redirect.port_redirect() != 0) {
    size_t colon = host.rfind(':');
    if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
      host.resize(colon);
    }
    absl::StrAppend(&host, ":", redirect.port_redirect());
  }
  std::string path_part(request.PathWithoutQuery());
  std::string query(request.Query());
  if (!redirect.path_redirect().empty()) {
    path_part = redirect.path_redirect();
  } else if (!redirect.prefix_rewrite().empty() &&
             path_matcher.kind() == config::v1::RouteMatch::kPrefix) {
    path_part = redirect.prefix_rewrite() +
                path_part.substr(std::min(path_matcher.literal().size(), path_part.size()));
  }
  std::string location = absl::StrCat(scheme, "://", host, path_part);
  if (!query.empty() && !redirect.strip_query()) absl::StrAppend(&location, "?", query);
  return location;
}

void RouteEntry::RewriteRequest(http::RequestHeaders& request) const {
  if (!prefix_rewrite.empty() && path_matcher.kind() == config::v1::RouteMatch::kPrefix) {
    request.path = prefix_rewrite + request.path.substr(std::min(path_matcher.literal().size(),
                                                                 request.path.size()));
  } else if (!prefix_rewrite.empty() && path_matcher.kind() == config::v1::RouteMatch::kPath) {
    request.path = prefix_rewrite + request.path.substr(std::min(path_matcher.literal().size(),
                                                                 request.path.size()));
  }
  if (!host_rewrite.empty()) request.authority = host_rewrite;
}

const http::PathSemantics& RouteEntry::app_path_semantics() const {
  return virtual_host->app_paths;
}

VirtualHostEntry::VirtualHostEntry(const config::v1::VirtualHost& proto, std::string_view path,
                                   config::ConfigErrors& errors)
    : name(proto.name()),
      app_paths(AppPaths(proto)),
      request_mutations(proto.request_headers_to_add(), proto.request_headers_to_remove(),
                        std::string(path), "request_headers_to_add", "request_headers_to_remove",
                        errors),
      response_mutations(proto.response_headers_to_add(), proto.response_headers_to_remove(),
                         std::string(path), "response_headers_to_add", "response_headers_to_remove",
                         errors) {
  for (int i = 0; i < proto.routes_size(); ++i) {
    routes.push_back(std::make_unique<RouteEntry>(
        proto.routes(i), proto, absl::StrCat(AbslView(path), ".routes[", i, "]"), errors));
    routes.back()->virtual_host = this;
  }
}

RouteTable::RouteTable(const config::v1::RouteConfiguration& proto, std::string_view path,
                       config::ConfigErrors& errors) {
  for (int i = 0; i < proto.virtual_hosts_size(); ++i) {
    const auto& vhost = proto.virtual_hosts(i);
    std::string vpath = absl::StrCat(AbslView(path), ".virtual_hosts[", i, "]");
    virtual_hosts_.push_back(std::make_unique<VirtualHostEntry>(vhost, vpath, errors));
    vhost_paths_.push_back(vpath);
    const VirtualHostEntry* entry = virtual_hosts_.back().get();
    if (vhost.domains().empty()) errors.Add(vpath + ".domains", "needs at least one domain");
    for (int d = 0; d < vhost.domains_size(); ++d) {
      std::string domain = absl::AsciiStrToLower(vhost.domains(d));
      std::string dpath = absl::StrCat(vpath, ".domains[", d, "]");
      bool duplicate = false;
      if (domain == "*") {
        duplicate = default_ != nullptr;
        default_ = entry;
      } else if (domain.starts_with("*")) {
        std::string suffix = domain.substr(1);
        duplicate = std::any_of(suffixes_.begin(), suffixes_.end(),
                                [&](const auto& s) { return s.first == suffix; });
        suffixes_.emplace_back(suffix, entry);
      } else if (domain.ends_with("*")) {
        std::string prefix = domain.substr(0, domain.size() - 1);
        duplicate = std::any_of(prefixes_.begin(), prefixes_.end(),
                                [&](const auto& s) { return s.first == prefix; });
        prefixes_.emplace_back(prefix, entry);
      } else if (domain.find('*') != std::string::npos || domain.empty()) {
        errors.Add(dpath, "a domain is exact, \"*.suffix\", \"prefix*\" or \"*\"");
      } else {
        duplicate = !exact_.emplace(domain, entry).second;
      }
      if (duplicate) errors.Add(dpath, absl::StrCat("domain '", domain, "' appears twice"));
    }
  }
  auto longest_first = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
  std::stable_sort(suffixes_.begin(), suffixes_.end(), longest_first);
  std::stable_sort(prefixes_.begin(), prefixes_.end(), longest_first);
}

const VirtualHostEntry* RouteTable::FindVirtualHost(std::string_view authority) const {
  // A sidecar's table often has only "*": nothing to compare.
  if (exact_.empty() && suffixes_.empty() && prefixes_.empty()) return default_;
  // Lowercased on the stack: this runs per request.
  char buffer[256];
  std::string heap;
  std::string_view host;
  if (authority.size() <= sizeof(buffer)) {
    for (size_t i = 0; i < authority.size(); ++i) buffer[i] = absl::ascii_tolower(authority[i]);
    host = std::string_view(buffer, authority.size());
  } else {
    heap = absl::AsciiStrToLower(AbslView(authority));
    host = heap;
  }
  if (auto it = exact_.find(AbslView(host)); it != exact_.end()) return it->second;
  // Retry without the port ("example.com:8080" -> "example.com").
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    host = host.substr(0, colon);
    if (auto it = exact_.find(AbslView(host)); it != exact_.end()) return it->second;
  }
  for (const auto& [suffix, vhost] : suffixes_) {
    if (host.size() > suffix.size() && host.ends_with(suffix)) return vhost;
  }
  for (const auto& [prefix, vhost] : prefixes_) {
    if (host.size() > prefix.size() && host.starts_with(prefix)) return vhost;
  }
  return default_;
}

const RouteEntry* RouteTable::Match(const http::RequestHeaders& request) const {
  const VirtualHostEntry* vhost = FindVirtualHost(request.authority);
  if (vhost == nullptr) return nullptr;
  for (const auto& route : vhost->routes) {
    if (route->Matches(request)) return route.get();
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> RouteTable::ReferencedClusters() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& vhost : virtual_hosts_) {
    for (const auto& route : vhost->routes) {
      if (route->action == RouteEntry::Action::kCluster) {
        out.emplace_back(route->config_path + ".route.cluster", route->cluster);
      } else if (route->action == RouteEntry::Action::kWeightedClusters) {
        for (size_t i = 0; i < route->weighted_clusters.size(); ++i) {
          out.emplace_back(
              absl::StrCat(route->config_path, ".route.weighted_clusters.clusters[", i, "].name"),
              route->weighted_clusters[i].name);
        }
      }
    }
  }
  return out;
}

}  // namespace phoenix::router
