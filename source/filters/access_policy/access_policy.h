#pragma once

#include <memory>
#include <string>
#include <vector>

#include "phoenix/config/v1/access_policy.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"
#include "source/matchers/request_matcher.h"

namespace phoenix::filters {

// A compiled AccessPolicy, shared by every request of a listener's config snapshot.
class AccessPolicy {
 public:
  struct Rule {
    std::string name;
    bool deny;
    bool shadow;
    bool strict;
    matchers::RequestMatcher match;
    Counter* matched;  // Enforced rule decided the request / shadow rule would have.
  };
  struct Decision {
    bool deny = false;
    const Rule* rule = nullptr;  // null: the default action decided
  };

  AccessPolicy(const config::v1::AccessPolicy& proto, StatsStore& stats,
               const std::string& stat_prefix, const std::string& path,
               config::ConfigErrors& errors);
  // Evaluates every rule in order: shadow rules only count; the first enforced match decides.
  // With `count` false nothing is counted or logged (explanations).
  // `principal`: the mTLS peer's identity, "" when none.
  // `app_paths`: the declared path semantics of the app the request is routed to, or null.
  Decision Evaluate(const http::RequestHeaders& request, const std::string& client_ip,
                    std::string_view principal, const http::PathSemantics* app_paths,
                    bool count = true) const;
  // Describes the evaluation step by step.
  // `principal`: the mTLS peer identity the explanation assumes, "" for none.
  void Explain(const http::RequestHeaders& request, const std::string& client_ip,
               std::string_view principal, const http::PathSemantics* app_paths,
               http::PolicyExplanation& explanation) const;
  // The literal paths (exact or prefix, case-sensitive) of enforced strict DENY rules.
  const std::vector<http::FilterFactory::ProbePath>& strict_deny_paths() const {
    return strict_deny_paths_;
  }

 private:
  std::vector<std::unique_ptr<Rule>> rules_;
  std::vector<http::FilterFactory::ProbePath> strict_deny_paths_;
  bool default_deny_;
  Counter* default_decided_;
  Counter* denied_;
};

// The HTTP filter: answers 403 (flag DENY) when the policy denies, else lets the request on.
class AccessPolicyFilter : public http::StreamFilter {
 public:
  static constexpr const char* kName = "phoenix.filters.http.access_policy";
  PHX_FREE_LIST_ALLOCATED(AccessPolicyFilter)

  explicit AccessPolicyFilter(std::shared_ptr<const AccessPolicy> policy)
      : policy_(std::move(policy)) {}
  http::FilterStatus DecodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

 private:
  std::shared_ptr<const AccessPolicy> policy_;
};

void RegisterAccessPolicyFilter();

}  // namespace phoenix::filters
