#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/file_set.h"
#include "source/control_plane/shared_records.h"

namespace phoenix::control_plane {

// The stored state: the resource files and the version they were committed as (0: nothing
// committed yet).
struct StoredState {
  uint64_t version = 0;
  FileSet files;
};

// Where phoenix-cp keeps what must outlive it and be shared: the resource files, the version
// in force, the files of past versions (for rollback) and the audit trail. It exists so the
// control plane's logic (validate, commit, publish) is the same whether the state lives in a
// local directory (one phoenix-cp) or in etcd (several replicas). Thread-safe.
class ResourceStore {
 public:
  // How many past versions are kept for rollback.
  static constexpr uint64_t kKeptVersions = 50;

  virtual ~ResourceStore() = default;

  // The version in force and the files as they are now. In a directory the files may have
  // been edited by hand since that version was committed; in etcd they are that version's.
  virtual absl::StatusOr<StoredState> Read() = 0;
  // Commits `next` as version seen.version + 1, with `audit_line` (a JSON line), if the store
  // is still as `seen` says: ABORTED when another commit (or a hand edit) came first, so
  // nothing is ever overwritten unseen: read again and retry.
  virtual absl::Status Commit(const StoredState& seen, const FileSet& next,
                              const std::string& audit_line) = 0;
  // The files of a kept version; NOT_FOUND (saying which are kept) otherwise.
  virtual absl::StatusOr<FileSet> Version(uint64_t version) = 0;
  // Appends an audit record that goes with no commit (a refused change).
  virtual absl::Status AppendAudit(const std::string& line) = 0;
  // Every audit record, oldest first.
  virtual absl::StatusOr<std::vector<std::string>> AuditLines() = 0;
  // Calls `on_change` (on the store's own thread) whenever the state may have changed, and
  // after a lost connection comes back. Once.
  virtual void Watch(std::function<void()> on_change) = 0;
  // Stops the watch; `on_change` is not called once this returns.
  virtual void StopWatching() = 0;
  // Where the files are, for errors and `phoenixctl get` (JoinRoot(root, path)): the
  // directory, or "" in etcd (a file is named by its path alone).
  virtual const std::string& root() const = 0;
  // For logs: "directory DIR", "etcd http://... prefix /phoenix/".
  virtual std::string description() const = 0;
  // The records the replicas sharing this store share beside the resources (the mesh CA's
  // rotation); null when the store is one phoenix-cp's own (a directory).
  virtual SharedRecords* shared_records() { return nullptr; }
};

}  // namespace phoenix::control_plane
