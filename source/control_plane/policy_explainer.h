#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/policy_check.pb.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// What one node's config would do with a request, as the proxy itself works it out
// (`phoenix --mode check-policy`, its admin /policy/explain).
struct NodeExplanation {
  std::string listener;
  std::vector<std::string> lines;  // Normalization, each filter's verdict, routing.
  std::string outcome;             // One line: "denied by X", "route R -> cluster C", ...
};

// `phoenixctl explain`: builds node `node_id`'s resources of `snapshot` with the proxy's own
// code, then walks `request` through listener `listener` (the first listener when empty), on
// the filter chain a new plaintext connection would get. NOT_FOUND when the node has no such
// listener; the build's error when its resources do not build.
absl::StatusOr<NodeExplanation> ExplainForNode(const ResourceSnapshot& snapshot,
                                               const std::string& node_id,
                                               const std::string& listener,
                                               const config::v1::PolicyCheckRequest& request);

}  // namespace phoenix::control_plane
