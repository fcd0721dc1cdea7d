#include "source/matchers/path_matcher.h"

#include "absl/strings/ascii.h"
#include "source/matchers/policy_path_matcher.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

PathMatcher::PathMatcher(const config::v1::RouteMatch& match, const std::string& path,
                         config::ConfigErrors& errors, const http::PathSemantics& app)
    : kind_(match.path_specifier_case()),
      case_sensitive_(!app.case_insensitive &&
                      (!match.has_case_sensitive() || match.case_sensitive())),
      fold_{false, app.ignore_trailing_slash, app.ignore_path_params} {
  if (app.case_insensitive && match.has_case_sensitive() && match.case_sensitive()) {
    errors.Add(path + ".match.case_sensitive",
               "contradicts the virtual host's app_path_semantics.case_insensitive");
  }
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
  if (fold_.any()) {
    http::PathSemantics literal_fold = fold_;
    // "prefix: /api/" still wants what is under /api/.
    if (kind_ == config::v1::RouteMatch::kPrefix) literal_fold.ignore_trailing_slash = false;
    folded_literal_ = FoldPath(literal_, literal_fold);
  }
}

bool PathMatcher::Match(std::string_view request_path) const {
  if (MatchAsIs(request_path, literal_)) return true;
  if (!fold_.any()) return false;
  // Tried for every route of the virtual host: allocate only for a path folding changes.
  bool foldable =
      (fold_.ignore_path_params && request_path.find(';') != std::string_view::npos) ||
      (fold_.ignore_trailing_slash && request_path.size() > 1 && request_path.back() == '/');
  return foldable && MatchAsIs(FoldPath(request_path, fold_), folded_literal_);
}

bool PathMatcher::MatchAsIs(std::string_view request_path, std::string_view literal) const {
  switch (kind_) {
    case config::v1::RouteMatch::kPrefix:
      return case_sensitive_ ? request_path.starts_with(literal)
                             : StartsWithIgnoreCase(request_path, literal);
    case config::v1::RouteMatch::kPath:
      return case_sensitive_ ? request_path == literal : EqualsIgnoreCase(request_path, literal);
    case config::v1::RouteMatch::kSafeRegex:
      return regex_ != nullptr &&
             RE2::FullMatch(re2::StringPiece(request_path.data(), request_path.size()), *regex_);
    default:
      return false;
  }
}

}  // namespace phoenix::matchers
