#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "re2/re2.h"
#include "source/common/config_errors.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

// The form of a normalized path that a typical framework routes to the same handler as the
// path itself (Express, Rails, Spring, ASP.NET and the like): ASCII lowercase, each segment's
// ";params" dropped, no trailing slash ("/Crash;x/" -> "/crash"). The root stays "/".
std::string FoldPath(std::string_view path);

// What folding changed in `path`, for explanations: "case, ;params, trailing slash" (empty if
// nothing).
std::string DescribeFolding(std::string_view path);

// A policy's path term. As written, it is a StringMatcher. Widened, it also matches when the
// folded path matches the folded term: a DENY rule written `exact: /crash` then covers
// /CRASH, /crash/, /crash;a=b and /Crash/;x — every form the app would serve as /crash.
// Widening only ever adds matches; the rule decides where that fails closed.
class PolicyPathMatcher {
 public:
  enum class Result { kNoMatch, kAsWritten, kFolded };

  PolicyPathMatcher(const config::v1::StringMatcher& proto, bool widen, std::string_view path,
                    config::ConfigErrors& errors);
  Result Match(std::string_view path) const;

 private:
  bool MatchFolded(std::string_view folded) const;

  StringMatcher as_written_;
  bool widen_;
  config::v1::StringMatcher::MatchPatternCase kind_;
  std::string folded_pattern_;  // exact/suffix: folded; prefix/contains: lowercase, no params.
  std::unique_ptr<RE2> folded_regex_;  // The regex, case-insensitive.
};

}  // namespace phoenix::matchers
