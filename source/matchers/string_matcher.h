#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "re2/re2.h"
#include "source/common/config_errors.h"

namespace phoenix::matchers {

// Compiles an RE2 pattern for full matches; adds an error under `path` and returns null when
// the pattern is invalid.
std::unique_ptr<RE2> CompileRegex(const std::string& pattern, bool ignore_case,
                                  std::string_view path, config::ConfigErrors& errors);

// exact / prefix / suffix / contains / RE2 full match, optionally ignoring ASCII case. The
// value language of every header, query and path matcher in routes and policies.
class StringMatcher {
 public:
  // Adds errors under `path` for an invalid regex.
  StringMatcher(const config::v1::StringMatcher& proto, std::string_view path,
                config::ConfigErrors& errors);
  bool Match(std::string_view value) const;

 private:
  config::v1::StringMatcher::MatchPatternCase kind_;
  std::string pattern_;
  bool ignore_case_;
  std::unique_ptr<RE2> regex_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);

}  // namespace phoenix::matchers
