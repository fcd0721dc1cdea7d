#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/resource_files.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// Decides what a new state of the resource directory becomes: a new snapshot with the next
// version (1, 2, ...), nothing (same content: the version stays), or a refusal (the last
// good snapshot stays). The one place versions are counted.
class SnapshotStore {
 public:
  struct Outcome {
    enum class Kind { kAccepted, kUnchanged, kRefused };
    Kind kind = Kind::kUnchanged;
    absl::Status error;                   // kRefused: why.
    std::vector<ResourceChange> changes;  // kAccepted: what changed.
  };

  // `files` is the directory as LoadResourceFiles read it (or its error).
  Outcome Offer(const absl::StatusOr<std::vector<ResourceFile>>& files);
  // The last accepted snapshot; null before the first.
  std::shared_ptr<const ResourceSnapshot> current() const { return current_; }

 private:
  std::shared_ptr<const ResourceSnapshot> current_;
};

}  // namespace phoenix::control_plane
