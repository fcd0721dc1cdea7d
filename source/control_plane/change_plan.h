#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/resource_files.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// A resource file a client sent (phoenixctl apply/diff/validate): where it goes in the
// resource directory and what it holds.
struct IncomingFile {
  std::string path;  // "routes.yaml" or "nodes/<node id>/secrets.yaml".
  std::string content;
};

// One resource change with the unified diff of its YAML (private keys redacted).
struct ResourceDiffText {
  ResourceChange change;
  std::string diff;  // Headed "--- Type/name" / "+++ Type/name" ("/dev/null" when absent).
};

// A checked change of the resource directory: the snapshot it would make and how that
// differs from the one in force.
struct ChangePlan {
  std::shared_ptr<const ResourceSnapshot> candidate;
  std::vector<ResourceChange> changes;
};

// INVALID_ARGUMENT unless `path` is "<name>.yaml" or "nodes/<node id>/<name>.yaml" (no "..",
// nothing hidden, nothing absolute).
absl::Status CheckIncomingPath(const std::string& path);

// Plans what writing `files` into `dir` would do: each path checked, each file parsed (errors
// name the path as sent, with line:column), laid over the directory's own files (same path:
// replaced), and the whole validated as the directory watcher would. INVALID_ARGUMENT lists
// every error, one per line.
// With `replace_all` the files are the whole new directory (a rollback): the directory's own
// files are not laid under them.
absl::StatusOr<ChangePlan> PlanChange(const std::string& dir,
                                      const std::vector<IncomingFile>& files,
                                      const ResourceSnapshot* current, bool replace_all = false);

// Each of `changes` (between `before` and `after`) with its diff.
std::vector<ResourceDiffText> DescribeChanges(const ResourceSnapshot* before,
                                              const ResourceSnapshot& after,
                                              const std::vector<ResourceChange>& changes);

// All the diffs as one text, for the audit log.
std::string JoinDiffs(const std::vector<ResourceDiffText>& diffs);

// Writes `files` into `dir`, each to a hidden temporary file first and then renamed over its
// path, so the directory watcher never reads half a file.
absl::Status WriteIncomingFiles(const std::string& dir, const std::vector<IncomingFile>& files);

// Every resource file of `dir` (as LoadResourceFiles would read them) with its content and its
// path relative to `dir`: what a version was made of, to return to it later.
absl::StatusOr<std::vector<IncomingFile>> ReadIncomingFiles(const std::string& dir);

// Removes the resource files of `dir` that `keep` does not name (a rollback's files that did
// not exist then).
absl::Status RemoveOtherFiles(const std::string& dir, const std::vector<IncomingFile>& keep);

}  // namespace phoenix::control_plane
