#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/control_plane/change_plan.h"

namespace phoenix::control_plane {

// A set of resource files (path relative to the resource root, content), sorted by path, no
// path twice: what one version is made of.
using FileSet = std::vector<IncomingFile>;

// `files` sorted by path; of two with the same path, the later one stays.
FileSet SortedFileSet(std::vector<IncomingFile> files);

// `base` with `incoming` laid over it (same path: replaced).
FileSet MergeFileSets(const FileSet& base, const std::vector<IncomingFile>& incoming);

bool SameFileSets(const FileSet& a, const FileSet& b);

// One file set as one text, to keep a version as a single value (an etcd key, a history
// file): per file "<path>\n<byte length>\n<content>\n". Readable with etcdctl or cat.
std::string EncodeFileSet(const FileSet& files);
// INVALID_ARGUMENT when `text` is not what EncodeFileSet makes.
absl::StatusOr<FileSet> DecodeFileSet(std::string_view text);

}  // namespace phoenix::control_plane
