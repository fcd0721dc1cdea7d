#include "source/server/policy_check.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "source/config/snapshot.h"
#include "source/config/yaml_loader.h"
#include "source/router/route_table.h"
#include "source/server/filter_registrations.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::server {

std::string PolicyOutcome::Summary() const {
  if (rejected) return "rejected (400)";
  if (!denied_by.empty()) return absl::StrCat("denied by ", denied_by);
  std::string out = no_route ? "no route (404)"
                             : absl::StrCat("route ", route.empty() ? "(unnamed)" : route,
                                            cluster.empty() ? "" : " -> cluster ", cluster);
  if (!rate_limits.empty())
    absl::StrAppend(&out, " [limits: ", absl::StrJoin(rate_limits, ","), "]");
  return out;
}

PolicyOutcome ExplainRequest(const http::ConnectionManagerConfig& config, uint32_t trusted_hops,
                             const config::v1::PolicyCheckRequest& spec) {
  PolicyOutcome outcome;
  http::RequestHeaders request;
  request.method = spec.method().empty() ? "GET" : absl::AsciiStrToUpper(spec.method());
  request.path = spec.path().empty() ? "/" : spec.path();
  request.authority = spec.host().empty() ? "localhost" : spec.host();
  for (const auto& [name, value] : spec.headers()) request.headers.Add(name, value);
  std::string peer = spec.source_address().empty() ? "127.0.0.1" : spec.source_address();
  std::string client =
      http::ClientAddress(request.headers.Get("x-forwarded-for"), peer, trusted_hops);
  outcome.lines.push_back(absl::StrCat(
      "request: ", request.method, " ", request.path, " host ", request.authority, ", client ",
      client, spec.principal().empty() ? "" : ", principal ", spec.principal()));
  if (!http::NormalizePath(request.path, config.path_normalization)) {
    outcome.rejected = true;
    outcome.lines.push_back("path: cannot be normalized safely: 400");
    return outcome;
  }
  outcome.lines.push_back(absl::StrCat("path: normalized to ", request.path));
  // Policies compare paths as the app the request is routed to declares it matches them.
  const http::Route* routed = config.route_config->RouteFor(request);
  const http::PathSemantics* app_paths = routed != nullptr && routed->app_path_semantics().any()
                                             ? &routed->app_path_semantics()
                                             : nullptr;
  http::PolicyExplanation explanation;
  for (const auto& filter : config.filters) {
    filter->Explain(request, client, spec.principal(), app_paths, explanation);
    if (!explanation.denied_by.empty()) break;
  }
  outcome.lines.insert(outcome.lines.end(), explanation.lines.begin(), explanation.lines.end());
  outcome.denied_by = explanation.denied_by;
  outcome.rate_limits = explanation.rate_limits;
  if (!outcome.denied_by.empty()) return outcome;
  const router::RouteEntry* route =
      router::RouteEntry::From(config.route_config->RouteFor(request));
  if (route == nullptr) {
    outcome.no_route = true;
    outcome.lines.push_back("routing: no virtual host or route matches: 404");
    return outcome;
  }
  outcome.route = route->route_name;
  switch (route->action) {
    case router::RouteEntry::Action::kCluster:
      outcome.cluster = route->cluster;
      break;
    case router::RouteEntry::Action::kWeightedClusters: {
      std::vector<std::string> names;
      for (const auto& c : route->weighted_clusters) names.push_back(c.name);
      outcome.cluster = absl::StrJoin(names, "|");
      break;
    }
    case router::RouteEntry::Action::kDirectResponse:
      outcome.lines.push_back(absl::StrCat("routing: direct response ", route->direct_status));
      break;
    case router::RouteEntry::Action::kRedirect:
      outcome.lines.push_back(
          absl::StrCat("routing: redirect to ", route->RedirectLocation(request)));
      break;
  }
  outcome.lines.push_back(absl::StrCat(
      "routing: virtual host '", route->virtual_host->name, "', route '", route->route_name, "'",
      outcome.cluster.empty() ? "" : ", cluster ", outcome.cluster));
  return outcome;
}

bool OutcomeMatches(const PolicyOutcome& outcome,
                    const config::v1::PolicyCheckExpectation& expectation, std::string* expected) {
  bool allowed = !outcome.rejected && outcome.denied_by.empty();
  using E = config::v1::PolicyCheckExpectation;
  switch (expectation.outcome_case()) {
    case E::kRoute:
      *expected = absl::StrCat("route ", expectation.route());
      return allowed && !outcome.no_route && outcome.route == expectation.route();
    case E::kCluster:
      *expected = absl::StrCat("cluster ", expectation.cluster());
      return allowed && !outcome.no_route && outcome.cluster == expectation.cluster();
    case E::kDeniedBy:
      *expected = absl::StrCat("denied by ", expectation.denied_by());
      return outcome.denied_by == expectation.denied_by();
    case E::kRateLimitedBy: {
      *expected = absl::StrCat("rate limited by ", expectation.rate_limited_by());
      const auto& limits = outcome.rate_limits;
      return allowed &&
             std::find(limits.begin(), limits.end(), expectation.rate_limited_by()) != limits.end();
    }
    case E::kRejected:
      *expected = "rejected (400)";
      return outcome.rejected == expectation.rejected();
    case E::kNoRoute:
      *expected = "no route (404)";
      return allowed && outcome.no_route == expectation.no_route();
    case E::OUTCOME_NOT_SET:
      *expected = "(no expectation)";
      return false;
  }
  return false;
}

namespace {

// The safety net for `strict: true` deny rules: each one's path is tried in the spellings a
// case-insensitive app serves alike; one that gets routed to an upstream is a warning.
void PrintStrictDenyWarnings(const config::ConfigSnapshot& snapshot) {
  for (const auto& listener : snapshot.listeners) {
    const auto& hcm = *listener.filter_chains->Select().connection_manager;
    for (const auto& filter : hcm.filters) {
      for (const auto& probe : filter->ProbePaths()) {
        config::v1::PolicyCheckRequest spec;
        spec.set_path(probe.path);
        if (ExplainRequest(hcm, hcm.xff_num_trusted_hops, spec).denied_by != probe.rule) continue;
        std::string upper = absl::AsciiStrToUpper(probe.path);
        std::string slash = probe.path.ends_with('/') ? probe.path : probe.path + "/";
        for (const std::string& variant : {upper, slash}) {
          if (variant == probe.path) continue;
          spec.set_path(variant);
          PolicyOutcome outcome = ExplainRequest(hcm, hcm.xff_num_trusted_hops, spec);
          if (outcome.rejected || outcome.no_route || !outcome.denied_by.empty() ||
              outcome.cluster.empty()) {
            continue;
          }
          std::printf(
              "warning: listener '%s': strict rule '%s' denies %s, but %s reaches cluster %s; an "
              "app that routes case-insensitively or ignores a trailing slash serves it alike "
              "(drop strict: true to cover it)\n",
              listener.name.c_str(), probe.rule.c_str(), probe.path.c_str(), variant.c_str(),
              outcome.cluster.c_str());
        }
      }
    }
  }
}

}  // namespace

int RunPolicyCheck(const std::string& config_path, const std::string& cases_path) {
  config::SourceMap config_map(config_path);
  auto bootstrap = config::LoadBootstrapFile(config_path, &config_map);
  if (!bootstrap.ok()) {
    std::fprintf(stderr, "%s\n", std::string(bootstrap.status().message()).c_str());
    return 1;
  }
  StatsStore stats;
  RegisterBuiltinFilters();
  RegisterBuiltinTransportSockets();
  auto snapshot = config::BuildSnapshot(*bootstrap, &config_map, stats, nullptr, 1,
                                        config::SourceKind::kStatic);
  if (!snapshot.ok()) {
    std::fprintf(stderr, "%s\n", std::string(snapshot.status().message()).c_str());
    return 1;
  }
  config::v1::PolicyCheckCases cases;
  config::SourceMap cases_map(cases_path);
  if (absl::Status status = config::LoadYamlFile(cases_path, &cases, &cases_map); !status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    return 1;
  }
  if (cases.cases().empty()) {
    std::fprintf(stderr, "%s: no cases\n", cases_path.c_str());
    return 1;
  }
  PrintStrictDenyWarnings(**snapshot);
  int failures = 0;
  std::printf("%-4s  %-28s  %-34s  %-30s  %s\n", "", "case", "request", "expected", "actual");
  for (int i = 0; i < cases.cases_size(); ++i) {
    const auto& c = cases.cases(i);
    const config::ListenerConfig* listener = nullptr;
    for (const auto& l : (*snapshot)->listeners) {
      if (c.listener().empty() || l.name == c.listener()) {
        listener = &l;
        break;
      }
    }
    std::string name = c.name().empty() ? absl::StrCat("case ", i + 1) : c.name();
    if (listener == nullptr) {
      std::printf("FAIL  %-28s  no listener named '%s'\n", name.c_str(), c.listener().c_str());
      ++failures;
      continue;
    }
    // The chain a new connection would get.
    const auto& hcm = *listener->filter_chains->Select().connection_manager;
    PolicyOutcome outcome = ExplainRequest(hcm, hcm.xff_num_trusted_hops, c.request());
    std::string expected;
    bool pass = OutcomeMatches(outcome, c.expect(), &expected);
    if (!pass) ++failures;
    std::string request = absl::StrCat(c.request().method().empty() ? "GET" : c.request().method(),
                                       " ", c.request().path().empty() ? "/" : c.request().path());
    std::printf("%-4s  %-28s  %-34s  %-30s  %s\n", pass ? "ok" : "FAIL", name.c_str(),
                request.c_str(), expected.c_str(), outcome.Summary().c_str());
  }
  std::printf("\n%d of %d cases as expected\n", cases.cases_size() - failures, cases.cases_size());
  return failures == 0 ? 0 : 1;
}

}  // namespace phoenix::server
