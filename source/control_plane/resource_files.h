#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/common/config_errors.h"

namespace phoenix::control_plane {

// One YAML file of the resource directory, parsed: a StaticResources-shaped document and
// where each of its fields was written, so validation errors can name file:line:column.
struct ResourceFile {
  std::string path;
  // Its scope (ScopeOfPath): "" for a file directly in the directory (every node gets it);
  // the node id for a file in nodes/<id>/ (only that node gets it); "@cluster/<c>" or
  // "@metadata/<k>=<v>" for the nodes of a cluster or with a metadata value.
  std::string node;
  config::v1::StaticResources resources;
  config::SourceMap source_map;
};

// Which nodes a resource file is for, from its path relative to the resource root (its
// scope): "" (every node) for <name>.yaml; the node id for nodes/<id>/<name>.yaml;
// "@cluster/<c>" for clusters/<c>/<name>.yaml (nodes whose node.cluster is c);
// "@metadata/<k>=<v>" for metadata/<k>=<v>/<name>.yaml (nodes whose metadata has the string
// field k, equal to v). nullopt for any other path (a node id may not start with '@').
std::optional<std::string> ScopeOfPath(std::string_view relative_path);

// Reads every *.yaml directly in `dir` and in `dir`/nodes/<id>/, sorted by path. The first
// file that does not parse is the error (file:line:column: field: message).
absl::StatusOr<std::vector<ResourceFile>> LoadResourceFiles(const std::string& dir);

// What the directory watcher compares between two looks: every file LoadResourceFiles would
// read, with its modification time (ns) and size. Cheap: one stat per file.
using DirectoryFingerprint = std::map<std::string, std::pair<int64_t, int64_t>>;
DirectoryFingerprint FingerprintResourceFiles(const std::string& dir);

}  // namespace phoenix::control_plane
