#include "source/matchers/policy_path_matcher.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace phoenix::matchers {

std::string FoldPath(std::string_view path, const http::PathSemantics& fold) {
  std::string out;
  out.reserve(path.size());
  bool in_params = false;
  for (char c : path) {
    if (c == '/') in_params = false;
    if (c == ';' && fold.ignore_path_params) in_params = true;
    if (in_params) continue;
    out.push_back(fold.case_insensitive ? absl::ascii_tolower(static_cast<unsigned char>(c)) : c);
  }
  if (fold.ignore_trailing_slash) {
    while (out.size() > 1 && out.back() == '/') out.pop_back();
  }
  return out;
}

std::string FoldPath(std::string_view path) { return FoldPath(path, http::kTypicalFrameworkPaths); }

namespace {

// FoldPath's changes but a trailing slash's: how prefix and contains terms fold.
http::PathSemantics KeepingTrailingSlash(http::PathSemantics fold) {
  fold.ignore_trailing_slash = false;
  return fold;
}

}  // namespace

std::string DescribeFolding(std::string_view path) {
  std::vector<std::string> changes;
  for (char c : path) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      changes.push_back("case");
      break;
    }
  }
  if (path.find(';') != std::string_view::npos) changes.push_back(";params");
  std::string without_params = FoldPath(path, {.ignore_path_params = true});
  if (without_params.size() > 1 && without_params.back() == '/') {
    changes.push_back("trailing slash");
  }
  return absl::StrJoin(changes, ", ");
}

PolicyPathMatcher::PolicyPathMatcher(const config::v1::StringMatcher& proto, bool widen,
                                     std::string_view path, config::ConfigErrors& errors)
    : as_written_(proto, path, errors), widen_(widen), kind_(proto.match_pattern_case()) {
  for (int i = 1; i < 8; ++i) {
    http::PathSemantics fold{(i & 1) != 0, (i & 2) != 0, (i & 4) != 0};
    switch (kind_) {
      case config::v1::StringMatcher::kExact:
        folded_patterns_[i] = FoldPath(proto.exact(), fold);
        break;
      case config::v1::StringMatcher::kSuffix:
        folded_patterns_[i] = FoldPath(proto.suffix(), fold);
        break;
      case config::v1::StringMatcher::kPrefix:
        folded_patterns_[i] = FoldPath(proto.prefix(), KeepingTrailingSlash(fold));
        break;
      case config::v1::StringMatcher::kContains:
        folded_patterns_[i] = FoldPath(proto.contains(), KeepingTrailingSlash(fold));
        break;
      default:
        break;
    }
  }
  if (kind_ == config::v1::StringMatcher::kSafeRegex) {
    // Errors were reported for the pattern as written; these copies add none.
    config::ConfigErrors ignored;
    regex_ = CompileRegex(proto.safe_regex().regex(), proto.ignore_case(), path, ignored);
    folded_regex_ = CompileRegex(proto.safe_regex().regex(), /*ignore_case=*/true, path, ignored);
  }
}

bool PolicyPathMatcher::MatchFolded(std::string_view folded,
                                    const http::PathSemantics& fold) const {
  // A folded path has no trailing slash; a term may well have one ("prefix: /admin/"), and
  // "/admin" names the same resource: the term also matches the folded path plus "/".
  std::string_view pattern = folded_patterns_[fold.index()];
  bool slash_term = fold.ignore_trailing_slash && pattern.size() > 1 && pattern.back() == '/';
  std::string_view without_slash = slash_term ? pattern.substr(0, pattern.size() - 1) : pattern;
  switch (kind_) {
    case config::v1::StringMatcher::kExact:
      return folded == pattern;
    case config::v1::StringMatcher::kSuffix:
      return folded.ends_with(pattern);
    case config::v1::StringMatcher::kPrefix:
      return folded.starts_with(pattern) || (slash_term && folded == without_slash);
    case config::v1::StringMatcher::kContains:
      return folded.find(pattern) != std::string_view::npos ||
             (slash_term && folded.ends_with(without_slash));
    case config::v1::StringMatcher::kSafeRegex: {
      const RE2* regex = fold.case_insensitive ? folded_regex_.get() : regex_.get();
      if (regex == nullptr) return false;
      if (RE2::FullMatch(re2::StringPiece(folded.data(), folded.size()), *regex)) return true;
      if (!fold.ignore_trailing_slash || folded.size() <= 1) return false;  // "/" + "/": none.
      // One buffer per thread: the deny rules meet every request.
      thread_local std::string with_slash;
      with_slash.assign(folded.data(), folded.size());
      with_slash.push_back('/');
      return RE2::FullMatch(with_slash, *regex);
    }
    case config::v1::StringMatcher::MATCH_PATTERN_NOT_SET:
      return false;
  }
  return false;
}

namespace {

// Whether FoldPath(path, fold) would change `path` (most request paths: no).
bool NeedsFolding(std::string_view path, const http::PathSemantics& fold) {
  if (fold.ignore_trailing_slash && path.size() > 1 && path.back() == '/') return true;
  for (char c : path) {
    if ((c == ';' && fold.ignore_path_params) ||
        (fold.case_insensitive && absl::ascii_isupper(static_cast<unsigned char>(c)))) {
      return true;
    }
  }
  return false;
}

}  // namespace

PolicyPathMatcher::Result PolicyPathMatcher::Match(std::string_view path,
                                                   const http::PathSemantics* app) const {
  if (as_written_.Match(path)) return Result::kAsWritten;
  // Widened, a term covers every spelling the app could declare; else what it declares.
  http::PathSemantics fold = widen_           ? http::kTypicalFrameworkPaths
                             : app != nullptr ? *app
                                              : http::PathSemantics{};
  if (!fold.any()) return Result::kNoMatch;
  // Every request meets every deny rule: fold (and allocate) only a path that folding changes.
  bool matched =
      NeedsFolding(path, fold) ? MatchFolded(FoldPath(path, fold), fold) : MatchFolded(path, fold);
  if (!matched) return Result::kNoMatch;
  return widen_ ? Result::kFolded : Result::kDeclared;
}

}  // namespace phoenix::matchers
