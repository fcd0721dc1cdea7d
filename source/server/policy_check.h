#pragma once

#include <string>
#include <utility>
#include <vector>

#include "phoenix/config/v1/policy_check.pb.h"
#include "source/http/connection_manager.h"

namespace phoenix::server {

// What a listener's config would do with one request, worked out without sending it: path
// normalization, each filter's verdict (no stats, no tokens), then routing. Shared by
// `phoenix --mode check-policy` and the admin endpoint /policy/explain.
struct PolicyOutcome {
  bool rejected = false;  // 400 before any filter
  std::string denied_by;  // access_policy rule, "default", or empty
  std::vector<std::string> rate_limits;
  bool no_route = false;
  std::string route;    // route name when one matched
  std::string cluster;  // target cluster ("a|b" for weighted), empty for local answers
  std::vector<std::string> lines;

  // One line: "rejected", "denied by X", "no route", or "route R -> cluster C [limits]".
  std::string Summary() const;
};

PolicyOutcome ExplainRequest(const http::ConnectionManagerConfig& config, uint32_t trusted_hops,
                             const config::v1::PolicyCheckRequest& request);

// Whether `outcome` is what `expectation` says; `expected` gets a readable form of it.
bool OutcomeMatches(const PolicyOutcome& outcome,
                    const config::v1::PolicyCheckExpectation& expectation, std::string* expected);

// `phoenix --mode check-policy`: prints a table, returns the exit code (0: all cases pass).
int RunPolicyCheck(const std::string& config_path, const std::string& cases_path);

}  // namespace phoenix::server
