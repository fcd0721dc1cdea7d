#include "source/matchers/header_matcher.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "source/common/strings.h"

namespace phoenix::matchers {
namespace {

// Finds `name` among "a=1&b=2" query parameters. Values are compared as sent.
bool FindQueryParameter(std::string_view query, std::string_view name, std::string_view* value) {
  for (absl::string_view part : absl::StrSplit(AbslView(query), '&')) {
    std::string_view p = StdView(part);
    size_t eq = p.find('=');
    std::string_view key = p.substr(0, eq);
    if (key == name) {
      *value = eq == std::string_view::npos ? std::string_view() : p.substr(eq + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

HeaderMatcher::HeaderMatcher(const config::v1::HeaderMatcher& proto, const std::string& path,
                             config::ConfigErrors& errors)
    : name_(absl::AsciiStrToLower(proto.name())), invert_(proto.invert_match()) {
  if (proto.name().empty()) errors.Add(path + ".name", "header name is required");
  if (proto.has_string_match()) {
    value_ = std::make_unique<StringMatcher>(proto.string_match(), path + ".string_match", errors);
  } else if (!proto.present_match()) {
    errors.Add(path, "set string_match or present_match: true");
  }
}

bool HeaderMatcher::Match(const http::RequestHeaders& request) const {
  std::string_view value;
  bool present = request.Lookup(name_, &value);
  bool matched = present && (value_ == nullptr || value_->Match(value));
  return matched != invert_;
}

QueryParameterMatcher::QueryParameterMatcher(const config::v1::QueryParameterMatcher& proto,
                                             const std::string& path, config::ConfigErrors& errors)
    : name_(proto.name()) {
  if (proto.name().empty()) errors.Add(path + ".name", "query parameter name is required");
  if (proto.has_string_match()) {
    value_ = std::make_unique<StringMatcher>(proto.string_match(), path + ".string_match", errors);
  } else if (!proto.present_match()) {
    errors.Add(path, "set string_match or present_match: true");
  }
}

bool QueryParameterMatcher::Match(std::string_view query) const {
  std::string_view value;
  if (!FindQueryParameter(query, name_, &value)) return false;
  return value_ == nullptr || value_->Match(value);
}

}  // namespace phoenix::matchers
