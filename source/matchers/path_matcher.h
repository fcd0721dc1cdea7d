#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/route.pb.h"
#include "re2/re2.h"
#include "source/common/config_errors.h"
#include "source/http/path_normalizer.h"

namespace phoenix::matchers {

// A route's path match: prefix, exact path or RE2 full match, case-sensitive unless the
// route says otherwise or its app declares paths case-insensitive. Sees the normalized path
// without its query; where the app declares that a trailing slash or ;params make no
// difference, a path also matches without them.
class PathMatcher {
 public:
  using Kind = config::v1::RouteMatch::PathSpecifierCase;

  // Errors go under `path` + ".match...". `app`: the virtual host's app_path_semantics.
  PathMatcher(const config::v1::RouteMatch& match, const std::string& path,
              config::ConfigErrors& errors, const http::PathSemantics& app = {});
  bool Match(std::string_view request_path) const;

  Kind kind() const { return kind_; }
  // The prefix or exact path (lowercased when case-insensitive); empty for a regex.
  const std::string& literal() const { return literal_; }

 private:
  Kind kind_;
  std::string literal_;
  bool case_sensitive_;
  std::unique_ptr<RE2> regex_;
  // The app's trailing-slash and ;params semantics; the literal folded by them.
  http::PathSemantics fold_;
  std::string folded_literal_;

  bool MatchAsIs(std::string_view request_path, std::string_view literal) const;
};

}  // namespace phoenix::matchers
