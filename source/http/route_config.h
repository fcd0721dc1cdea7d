#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/http/header_map.h"
#include "source/http/path_normalizer.h"

namespace phoenix::http {

// A route picked for a request. The connection manager and the filters see only this; the
// router, which implements it, knows what the route does.
class Route {
 public:
  virtual ~Route() = default;
  // The route's configured name (may be empty), for the access log and explanations.
  virtual const std::string& name() const = 0;
  // Whether this route allows an upgrade of `type` (lowercase), overriding the connection
  // manager's upgrade_configs; nullopt: the route does not say.
  virtual std::optional<bool> UpgradeEnabled(std::string_view type) const { return std::nullopt; }
  // How the app this route leads to matches paths (its virtual host's app_path_semantics):
  // policies compare paths the same way.
  virtual const PathSemantics& app_path_semantics() const {
    static constexpr PathSemantics kNone;
    return kNone;
  }
};

// The routing table of one listener (Envoy's Router::Config): picks the route for a request.
// Immutable once built and shared by every worker.
class RouteConfig {
 public:
  virtual ~RouteConfig() = default;
  // The first route that accepts `request`, or null (no route: 404, flag NR).
  virtual const Route* RouteFor(const RequestHeaders& request) const = 0;
};

using RouteConfigConstSharedPtr = std::shared_ptr<const RouteConfig>;

}  // namespace phoenix::http
