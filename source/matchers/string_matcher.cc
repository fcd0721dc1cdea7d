#include "source/matchers/string_matcher.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::matchers {

std::unique_ptr<RE2> CompileRegex(const std::string& pattern, bool ignore_case,
                                  std::string_view path, config::ConfigErrors& errors) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(!ignore_case);
  auto regex = std::make_unique<RE2>(pattern, options);
  if (!regex->ok()) {
    errors.Add(path, absl::StrCat("invalid RE2 regex: ", regex->error()));
    return nullptr;
  }
  return regex;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(AbslView(a), AbslView(b));
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

StringMatcher::StringMatcher(const config::v1::StringMatcher& proto, std::string_view path,
                             config::ConfigErrors& errors)
    : kind_(proto.match_pattern_case()), ignore_case_(proto.ignore_case()) {
  switch (kind_) {
    case config::v1::StringMatcher::kExact:
      pattern_ = proto.exact();
      break;
    case config::v1::StringMatcher::kPrefix:
      pattern_ = proto.prefix();
      break;
    case config::v1::StringMatcher::kSuffix:
      pattern_ = proto.suffix();
      break;
    case config::v1::StringMatcher::kContains:
      pattern_ = proto.contains();
      break;
    case config::v1::StringMatcher::kSafeRegex:
      regex_ = CompileRegex(proto.safe_regex().regex(), ignore_case_,
                            absl::StrCat(AbslView(path), ".safe_regex.regex"), errors);
      break;
    case config::v1::StringMatcher::MATCH_PATTERN_NOT_SET:
      errors.Add(path, "a string matcher needs one of exact, prefix, suffix, contains, safe_regex");
      break;
  }
  if (ignore_case_) pattern_ = absl::AsciiStrToLower(pattern_);
}

bool StringMatcher::Match(std::string_view value) const {
  std::string lowered;
  if (ignore_case_ && kind_ != config::v1::StringMatcher::kSafeRegex) {
    lowered = absl::AsciiStrToLower(AbslView(value));
    value = lowered;
  }
  switch (kind_) {
    case config::v1::StringMatcher::kExact:
      return value == pattern_;
    case config::v1::StringMatcher::kPrefix:
      return value.starts_with(pattern_);
    case config::v1::StringMatcher::kSuffix:
      return value.ends_with(pattern_);
    case config::v1::StringMatcher::kContains:
      return value.find(pattern_) != std::string_view::npos;
    case config::v1::StringMatcher::kSafeRegex:
      return regex_ != nullptr &&
             RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *regex_);
    default:
      return false;
  }
}

}  // namespace phoenix::matchers
