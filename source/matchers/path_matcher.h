#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "re2/re2.h"
#include "source/common/config_errors.h"

namespace phoenix::matchers {

// A route's path match: prefix, exact path or RE2 full match, case-sensitive unless the
// route says otherwise. Sees the normalized path without its query.
class PathMatcher {
 public:
  using Kind = config::v1::RouteMatch::PathSpecifierCase;

  // Errors go under `path` + ".match...".
  PathMatcher(const config::v1::RouteMatch& match, const std::string& path,
              config::ConfigErrors& errors);
  bool Match(std::string_view request_path) const;

  Kind kind() const { return kind_; }
  // The prefix or exact path (lowercased when case-insensitive); empty for a regex.
  const std::string& literal() const { return literal_; }

 private:
  Kind kind_;
  std::string literal_;
  bool case_sensitive_;
  std::unique_ptr<RE2> regex_;
};

}  // namespace phoenix::matchers
