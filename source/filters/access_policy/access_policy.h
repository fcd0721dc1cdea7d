#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

#include "phoenix/config/v1/access_policy.pb.h"
#include "source/common/stats.h"
#include "source/config/config_errors.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"
#include "source/router/route_table.h"

namespace phoenix::filters {

// An address range ("10.0.0.0/8", "::1/128"). IPv4 is held as IPv4-mapped IPv6.
class CidrRange {
 public:
  // False if `text` is not a valid CIDR range or address.
  static bool Parse(const std::string& text, CidrRange* out);
  bool Contains(const in6_addr& address) const;
  // Parses "1.2.3.4" or "::1" as IPv4-mapped / plain IPv6.
  static bool ParseAddress(std::string_view text, in6_addr* out);

 private:
  in6_addr prefix_{};
  int length_ = 0;  // In bits, over the 128-bit form.
};

// One AccessMatch, compiled.
class AccessMatcher {
 public:
  AccessMatcher(const config::v1::AccessMatch& proto, const std::string& path,
                config::ConfigErrors& errors);
  // `client` is null when the client address did not parse (then CIDR terms never match).
  bool Match(const http::RequestHeaders& request, const in6_addr* client) const;

 private:
  std::vector<std::string> methods_;
  bool exact_methods_;
  std::unique_ptr<router::StringMatcher> path_;
  std::vector<router::HeaderMatcher> headers_;
  std::vector<router::QueryParameterMatcher> query_parameters_;
  std::vector<CidrRange> source_cidrs_;
  std::vector<AccessMatcher> and_rules_;
  std::vector<AccessMatcher> or_rules_;
  std::unique_ptr<AccessMatcher> not_rule_;
};

// A compiled AccessPolicy, shared by every request of a listener's config snapshot.
class AccessPolicy {
 public:
  struct Rule {
    std::string name;
    bool deny;
    bool shadow;
    AccessMatcher match;
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
  Decision Evaluate(const http::RequestHeaders& request, const std::string& client_ip,
                    bool count = true) const;
  // Describes the evaluation step by step.
  void Explain(const http::RequestHeaders& request, const std::string& client_ip,
               http::PolicyExplanation& explanation) const;

 private:
  std::vector<std::unique_ptr<Rule>> rules_;
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
