#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/service/admin/v1/admin.pb.h"

namespace phoenix::cli {

// The resource files phoenixctl sends for -f, with the path each takes in phoenix-cp's
// resource directory: a FILE goes to <its name> (every node), or to nodes/<node>/<its name>
// when `node` is set; a DIR is read as phoenix-cp reads its own (DIR/*.yaml and
// DIR/nodes/<id>/*.yaml, same relative paths). Errors say which path and why.
absl::StatusOr<std::vector<service::admin::v1::ResourceFile>> CollectFiles(
    const std::vector<std::string>& paths, const std::string& node);

}  // namespace phoenix::cli
