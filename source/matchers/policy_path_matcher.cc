#include "source/matchers/policy_path_matcher.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace phoenix::matchers {

namespace {

// Lowercase, with each segment's ";params" dropped; trailing slashes kept.
std::string LowerWithoutParams(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  bool in_params = false;
  for (char c : path) {
    if (c == '/') in_params = false;
    if (c == ';') in_params = true;
    if (!in_params) out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::string FoldPath(std::string_view path) {
  std::string out = LowerWithoutParams(path);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string DescribeFolding(std::string_view path) {
  std::vector<std::string> changes;
  for (char c : path) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      changes.push_back("case");
      break;
    }
  }
  if (path.find(';') != std::string_view::npos) changes.push_back(";params");
  if (LowerWithoutParams(path).size() > FoldPath(path).size()) changes.push_back("trailing slash");
  return absl::StrJoin(changes, ", ");
}

PolicyPathMatcher::PolicyPathMatcher(const config::v1::StringMatcher& proto, bool widen,
                                     std::string_view path, config::ConfigErrors& errors)
    : as_written_(proto, path, errors), widen_(widen), kind_(proto.match_pattern_case()) {
  if (!widen_) return;
  switch (kind_) {
    case config::v1::StringMatcher::kExact:
      folded_pattern_ = FoldPath(proto.exact());
      break;
    case config::v1::StringMatcher::kSuffix:
      folded_pattern_ = FoldPath(proto.suffix());
      break;
    case config::v1::StringMatcher::kPrefix:
      folded_pattern_ = LowerWithoutParams(proto.prefix());
      break;
    case config::v1::StringMatcher::kContains:
      folded_pattern_ = LowerWithoutParams(proto.contains());
      break;
    case config::v1::StringMatcher::kSafeRegex: {
      // Errors were reported for the pattern as written; this copy adds none.
      config::ConfigErrors ignored;
      folded_regex_ = CompileRegex(proto.safe_regex().regex(), /*ignore_case=*/true, path, ignored);
      break;
    }
    case config::v1::StringMatcher::MATCH_PATTERN_NOT_SET:
      break;
  }
}

bool PolicyPathMatcher::MatchFolded(std::string_view folded) const {
  // The folded path has no trailing slash; a term may well have one ("prefix: /admin/"), and
  // "/admin" names the same resource: the term also matches the folded path plus "/".
  std::string_view pattern = folded_pattern_;
  bool slash_term = pattern.size() > 1 && pattern.back() == '/';
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
      if (folded_regex_ == nullptr) return false;
      if (RE2::FullMatch(re2::StringPiece(folded.data(), folded.size()), *folded_regex_)) {
        return true;
      }
      if (folded.size() <= 1) return false;  // "/" plus "/" is no path.
      // One buffer per thread: the deny rules meet every request.
      thread_local std::string with_slash;
      with_slash.assign(folded.data(), folded.size());
      with_slash.push_back('/');
      return RE2::FullMatch(with_slash, *folded_regex_);
    }
    case config::v1::StringMatcher::MATCH_PATTERN_NOT_SET:
      return false;
  }
  return false;
}

namespace {

// Whether FoldPath would change `path` (most request paths: no).
bool NeedsFolding(std::string_view path) {
  if (path.size() > 1 && path.back() == '/') return true;
  for (char c : path) {
    if (c == ';' || absl::ascii_isupper(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

}  // namespace

PolicyPathMatcher::Result PolicyPathMatcher::Match(std::string_view path) const {
  if (as_written_.Match(path)) return Result::kAsWritten;
  if (!widen_) return Result::kNoMatch;
  // Every request meets every deny rule: fold (and allocate) only a path that folding changes.
  bool folded = NeedsFolding(path) ? MatchFolded(FoldPath(path)) : MatchFolded(path);
  return folded ? Result::kFolded : Result::kNoMatch;
}

}  // namespace phoenix::matchers
