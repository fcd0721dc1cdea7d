#include "source/matchers/path_matcher.h"

#include "absl/strings/ascii.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

PathMatcher::PathMatcher(const config::v1::RouteMatch& match, const std::string& path,
                         config::ConfigErrors& errors)
    : kind_(match.path_specifier_case()),
      case_sensitive_(!match.has_case_sensitive() || match.case_sensitive()) {
  switch (kind_) {
    case config::v1::RouteMatch::kPrefix:
      literal_ = match.prefix();
      break;
    case config::v1::RouteMatch::kPath:
      literal_ = match.path();
      break;
    case config::v1::RouteMatch::kSafeRegex:
      regex_ = CompileRegex(match.safe_regex().regex(), !case_sensitive_,
                            path + ".match.safe_regex.regex", errors);
      break;
    case config::v1::RouteMatch::PATH_SPECIFIER_NOT_SET:
      errors.Add(path + ".match", "a route match needs one of prefix, path, safe_regex");
      break;
  }
  if (!case_sensitive_) literal_ = absl::AsciiStrToLower(literal_);
}

bool PathMatcher::Match(std::string_view request_path) const {
  switch (kind_) {
    case config::v1::RouteMatch::kPrefix:
      return case_sensitive_ ? request_path.starts_with(literal_)
                             : StartsWithIgnoreCase(request_path, literal_);
    case config::v1::RouteMatch::kPath:
      return case_sensitive_ ? request_path == literal_ : EqualsIgnoreCase(request_path, literal_);
    case config::v1::RouteMatch::kSafeRegex:
      return regex_ != nullptr &&
             RE2::FullMatch(re2::StringPiece(request_path.data(), request_path.size()), *regex_);
    default:
      return false;
  }
}

}  // namespace phoenix::matchers
