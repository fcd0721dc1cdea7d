#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "phoenix/config/v1/access_policy.pb.h"
#include "source/common/config_errors.h"
#include "source/http/header_map.h"
#include "source/matchers/cidr_range.h"
#include "source/matchers/header_matcher.h"
#include "source/matchers/policy_path_matcher.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

// Who sent a request, as policies see it.
struct RequestSource {
  // The client address; null when it did not parse (then CIDR terms never match).
  const in6_addr* client = nullptr;
  // The verified identity of the mTLS peer (URI SAN, else DNS SAN, else subject); "" when the
  // connection showed no certificate (then principal terms never match).
  std::string_view principal;
  // How the app the request is routed to matches paths (its virtual host's declaration); null:
  // no route, or no declaration.
  const http::PathSemantics* app_paths = nullptr;
};

// Which spellings of a path a matcher's path terms cover.
enum class PathForms {
  // The path as written only: routes, rate limits, `strict: true` rules.
  kAsWritten,
  // Also its folded form (FoldPath): a DENY rule's terms, so that the obvious rule covers
  // every form the app serves alike. Under a not_rule the polarity flips: there the term stays
  // as written, so that widening never lets more through.
  kWiden,
  // As written, but widened under a not_rule: an ALLOW rule's terms (never widened themselves;
  // a widened exception to an allow allows less).
  kWidenUnderNot,
};

// One compiled AccessMatch: method, path, headers, query parameters, client CIDRs and peer
// principal, combined with and/or/not. The match language every policy filter shares.
class RequestMatcher {
 public:
  RequestMatcher(const config::v1::AccessMatch& proto, const std::string& path,
                 config::ConfigErrors& errors, PathForms forms = PathForms::kAsWritten);
  // With `folded`, says whether a path term matched only in a folded form (widened, or as the
  // app declares).
  bool Match(const http::RequestHeaders& request, const RequestSource& source,
             bool* folded = nullptr) const;

 private:
  std::vector<std::string> methods_;
  bool exact_methods_;
  std::unique_ptr<PolicyPathMatcher> path_;
  std::vector<HeaderMatcher> headers_;
  std::vector<QueryParameterMatcher> query_parameters_;
  std::vector<CidrRange> source_cidrs_;
  std::unique_ptr<StringMatcher> principal_;
  std::vector<RequestMatcher> and_rules_;
  std::vector<RequestMatcher> or_rules_;
  std::unique_ptr<RequestMatcher> not_rule_;
};

}  // namespace phoenix::matchers
