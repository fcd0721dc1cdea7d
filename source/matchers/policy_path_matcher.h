#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "re2/re2.h"
#include "source/common/config_errors.h"
#include "source/http/path_normalizer.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

// The form of a normalized path that a typical framework routes to the same handler as the
// path itself (Express, Rails, Spring, ASP.NET and the like): ASCII lowercase, each segment's
// ";params" dropped, no trailing slash ("/Crash;x/" -> "/crash"). The root stays "/".
std::string FoldPath(std::string_view path);
// FoldPath's changes that `fold` asks for only.
std::string FoldPath(std::string_view path, const http::PathSemantics& fold);

// What folding changed in `path`, for explanations: "case, ;params, trailing slash" (empty if
// nothing).
std::string DescribeFolding(std::string_view path);

// A policy's path term. As written, it is a StringMatcher. Widened, it also matches when the
// folded path matches the folded term: a DENY rule written `exact: /crash` then covers
// /CRASH, /crash/, /crash;a=b and /Crash/;x — every form the app would serve as /crash.
// Widening only ever adds matches; the rule decides where that fails closed.
// Where the app's virtual host declares its path semantics, every term (allow or deny, strict
// or not) also matches the path folded as declared: those spellings are one path to the app.
class PolicyPathMatcher {
 public:
  enum class Result { kNoMatch, kAsWritten, kFolded, kDeclared };

  PolicyPathMatcher(const config::v1::StringMatcher& proto, bool widen, std::string_view path,
                    config::ConfigErrors& errors);
  // `app`: the declared semantics of the app the request goes to; null or none: as written
  // (or widened).
  Result Match(std::string_view path, const http::PathSemantics* app = nullptr) const;

 private:
  bool MatchFolded(std::string_view folded, const http::PathSemantics& fold) const;

  StringMatcher as_written_;
  bool widen_;
  config::v1::StringMatcher::MatchPatternCase kind_;
  // The pattern under each folding (PathSemantics::index()); exact/suffix: folded as the path
  // is; prefix/contains: without dropping a trailing slash.
  std::array<std::string, 8> folded_patterns_;
  std::unique_ptr<RE2> regex_;         // The regex as written (case as written).
  std::unique_ptr<RE2> folded_regex_;  // The regex, case-insensitive.
};

}  // namespace phoenix::matchers
