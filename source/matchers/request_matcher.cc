#include "source/matchers/request_matcher.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace phoenix::matchers {

namespace {

// The forms of a not_rule's terms: the polarity flips.
PathForms UnderNot(PathForms forms) {
  switch (forms) {
    case PathForms::kWiden:
      return PathForms::kWidenUnderNot;
    case PathForms::kWidenUnderNot:
      return PathForms::kWiden;
    case PathForms::kAsWritten:
      break;
  }
  return PathForms::kAsWritten;
}

}  // namespace

RequestMatcher::RequestMatcher(const config::v1::AccessMatch& proto, const std::string& path,
                               config::ConfigErrors& errors, PathForms forms)
    : exact_methods_(proto.exact_methods()) {
  for (const auto& method : proto.methods()) methods_.push_back(absl::AsciiStrToUpper(method));
  if (proto.has_path()) {
    path_ = std::make_unique<PolicyPathMatcher>(proto.path(), forms == PathForms::kWiden,
                                                path + ".path", errors);
  }
  for (int i = 0; i < proto.headers_size(); ++i) {
    headers_.emplace_back(proto.headers(i), absl::StrCat(path, ".headers[", i, "]"), errors);
  }
  for (int i = 0; i < proto.query_parameters_size(); ++i) {
    query_parameters_.emplace_back(proto.query_parameters(i),
                                   absl::StrCat(path, ".query_parameters[", i, "]"), errors);
  }
  for (int i = 0; i < proto.source_cidrs_size(); ++i) {
    CidrRange range;
    if (!CidrRange::Parse(proto.source_cidrs(i), &range)) {
      errors.Add(absl::StrCat(path, ".source_cidrs[", i, "]"),
                 absl::StrCat("'", proto.source_cidrs(i), "' is not a CIDR range"));
    }
    source_cidrs_.push_back(range);
  }
  for (int i = 0; i < proto.and_rules_size(); ++i) {
    and_rules_.emplace_back(proto.and_rules(i), absl::StrCat(path, ".and_rules[", i, "]"), errors,
                            forms);
  }
  for (int i = 0; i < proto.or_rules_size(); ++i) {
    or_rules_.emplace_back(proto.or_rules(i), absl::StrCat(path, ".or_rules[", i, "]"), errors,
                           forms);
  }
  if (proto.has_principal()) {
    principal_ = std::make_unique<StringMatcher>(proto.principal(), path + ".principal", errors);
  }
  if (proto.has_not_rule()) {
    not_rule_ = std::make_unique<RequestMatcher>(proto.not_rule(), path + ".not_rule", errors,
                                                 UnderNot(forms));
  }
}

bool RequestMatcher::Match(const http::RequestHeaders& request, const RequestSource& source,
                           bool* folded) const {
  bool path_folded = false;
  if (!methods_.empty()) {
    bool found = false;
    for (const auto& method : methods_) {
      if (method == request.method ||
          (!exact_methods_ && method == "GET" && request.method == "HEAD")) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (path_ != nullptr) {
    PolicyPathMatcher::Result result = path_->Match(request.PathWithoutQuery(), source.app_paths);
    if (result == PolicyPathMatcher::Result::kNoMatch) return false;
    path_folded = result != PolicyPathMatcher::Result::kAsWritten;
  }
  for (const auto& header : headers_) {
    if (!header.Match(request)) return false;
  }
  if (!query_parameters_.empty()) {
    std::string_view query = request.Query();
    for (const auto& parameter : query_parameters_) {
      if (!parameter.Match(query)) return false;
    }
  }
  if (!source_cidrs_.empty()) {
    if (source.client == nullptr) return false;
    bool inside = false;
    for (const auto& range : source_cidrs_) inside = inside || range.Contains(*source.client);
    if (!inside) return false;
  }
  if (principal_ != nullptr && (source.principal.empty() || !principal_->Match(source.principal))) {
    return false;
  }
  for (const auto& rule : and_rules_) {
    if (!rule.Match(request, source, &path_folded)) return false;
  }
  if (!or_rules_.empty()) {
    bool any = false;
    for (const auto& rule : or_rules_) any = any || rule.Match(request, source, &path_folded);
    if (!any) return false;
  }
  if (not_rule_ != nullptr && not_rule_->Match(request, source)) return false;
  if (folded != nullptr && path_folded) *folded = true;
  return true;
}

}  // namespace phoenix::matchers
