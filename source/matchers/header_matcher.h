#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "source/common/config_errors.h"
#include "source/http/header_map.h"
#include "source/matchers/string_matcher.h"

namespace phoenix::matchers {

// Matches one request header (or pseudo-header such as ":method") by value or presence.
class HeaderMatcher {
 public:
  HeaderMatcher(const config::v1::HeaderMatcher& proto, const std::string& path,
                config::ConfigErrors& errors);
  bool Match(const http::RequestHeaders& request) const;

 private:
  std::string name_;
  std::unique_ptr<StringMatcher> value_;  // null: presence only
  bool invert_;
};

// Matches one query parameter by value or presence.
class QueryParameterMatcher {
 public:
  QueryParameterMatcher(const config::v1::QueryParameterMatcher& proto, const std::string& path,
                        config::ConfigErrors& errors);
  bool Match(std::string_view query) const;

 private:
  std::string name_;
  std::unique_ptr<StringMatcher> value_;  // null: presence only
};

}  // namespace phoenix::matchers
