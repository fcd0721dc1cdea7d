#include "source/control_plane/snapshot_store.h"

namespace phoenix::control_plane {

SnapshotStore::Outcome SnapshotStore::Offer(
    const absl::StatusOr<std::vector<ResourceFile>>& files) {
  Outcome outcome;
  if (!files.ok()) {
    outcome.kind = Outcome::Kind::kRefused;
    outcome.error = files.status();
    return outcome;
  }
  uint64_t next_version = current_ ? current_->version() + 1 : 1;
  auto snapshot = BuildResourceSnapshot(*files, next_version);
  if (!snapshot.ok()) {
    outcome.kind = Outcome::Kind::kRefused;
    outcome.error = snapshot.status();
    return outcome;
  }
  outcome.changes = DiffSnapshots(current_.get(), **snapshot);
  if (current_ && outcome.changes.empty()) return outcome;  // kUnchanged
  outcome.kind = Outcome::Kind::kAccepted;
  current_ = *std::move(snapshot);
  return outcome;
}

}  // namespace phoenix::control_plane
