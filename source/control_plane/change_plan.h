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

// A checked change of the resource files: the files it makes, the snapshot they make and how
// that differs from the one in force.
struct ChangePlan {
  std::vector<IncomingFile> files;  // Sorted by path.
  std::shared_ptr<const ResourceSnapshot> candidate;
  std::vector<ResourceChange> changes;
};

// INVALID_ARGUMENT unless `path` is "<name>.yaml" or "nodes/<node id>/<name>.yaml" (no "..",
// nothing hidden, nothing absolute).
absl::Status CheckIncomingPath(const std::string& path);

// Where a resource file of `root` is: "root/path" (or `path` when root is "").
std::string JoinRoot(const std::string& root, const std::string& path);

// Plans laying `incoming` over `base` (the files in force, kept under `root`; same path:
// replaced) as version `version`: each incoming path checked, each file parsed (errors name
// an incoming file as sent, a base file as root/path, with line:column), and the whole
// validated as the proxy would (BuildResourceSnapshot). INVALID_ARGUMENT lists every error,
// one per line. A rollback passes no base: its files are the whole new set. `provided`: as
// BuildResourceSnapshot takes them.
absl::StatusOr<ChangePlan> PlanChange(const std::vector<IncomingFile>& base,
                                      const std::vector<IncomingFile>& incoming,
                                      const std::string& root, const ResourceSnapshot* current,
                                      uint64_t version,
                                      const std::vector<config::v1::Secret>& provided = {});

// Parses `files` (kept under `root`) into what BuildResourceSnapshot takes; the first file
// that does not parse is the error (root/path:line:column: ...).
absl::StatusOr<std::vector<ResourceFile>> ParseResourceFiles(const std::vector<IncomingFile>& files,
                                                             const std::string& root);

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
// path relative to `dir`, sorted by path.
absl::StatusOr<std::vector<IncomingFile>> ReadIncomingFiles(const std::string& dir);

// Removes the resource files of `dir` that `keep` does not name (a deleted file, or a
// rollback's files that did not exist then).
absl::Status RemoveOtherFiles(const std::string& dir, const std::vector<IncomingFile>& keep);

}  // namespace phoenix::control_plane
