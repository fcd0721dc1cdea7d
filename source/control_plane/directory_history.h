#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/file_set.h"

namespace phoenix::control_plane {

// The files of a resource directory's last accepted versions, one file per version
// (`<folder>/<version>.files`, EncodeFileSet, mode 0600: resource files may hold private
// keys), so rollback and the version count survive a restart. The folder is a hidden one in
// the resource directory (.phoenix-cp/history), which the resource loader never reads.
class DirectoryHistory {
 public:
  explicit DirectoryHistory(std::string folder) : folder_(std::move(folder)) {}

  // The kept versions, oldest first.
  std::vector<uint64_t> Versions() const;
  // The newest kept version; 0 when none.
  uint64_t Latest() const;
  // Keeps `files` as `version` (atomically: temp file, then rename), then drops all but the
  // newest `keep` versions.
  absl::Status Keep(uint64_t version, const FileSet& files, size_t keep);
  // NOT_FOUND when `version` is not kept.
  absl::StatusOr<FileSet> Files(uint64_t version) const;

 private:
  std::string PathOf(uint64_t version) const;

  const std::string folder_;
};

}  // namespace phoenix::control_plane
