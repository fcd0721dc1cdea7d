#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "source/control_plane/audit_log.h"
#include "source/control_plane/directory_history.h"
#include "source/control_plane/directory_watcher.h"
#include "source/control_plane/resource_store.h"

namespace phoenix::control_plane {

// The store of one phoenix-cp on one machine (the default): the resource directory itself
// (edited by hand or through phoenixctl), the versions' files under DIR/.phoenix-cp/history,
// the audit trail in a local JSON-lines file; changes are noticed by polling.
class DirectoryStore : public ResourceStore {
 public:
  DirectoryStore(std::string dir, std::string audit_log_path,
                 std::chrono::milliseconds poll_interval);
  ~DirectoryStore() override;

  absl::StatusOr<StoredState> Read() override;
  // ABORTED when the newest kept version is not seen.version, or the directory's files are no
  // longer seen.files (edited by hand meanwhile). Writes only the files that differ, removes
  // those `next` does not have.
  absl::Status Commit(const StoredState& seen, const FileSet& next,
                      const std::string& audit_line) override;
  absl::StatusOr<FileSet> Version(uint64_t version) override;
  absl::Status AppendAudit(const std::string& line) override;
  absl::StatusOr<std::vector<std::string>> AuditLines() override;
  void Watch(std::function<void()> on_change) override;
  void StopWatching() override { watcher_.reset(); }
  const std::string& root() const override { return dir_; }
  std::string description() const override { return "directory " + dir_; }

 private:
  const std::string dir_;
  const std::chrono::milliseconds poll_interval_;
  std::mutex mu_;  // One commit at a time.
  AuditLog audit_;
  DirectoryHistory history_;
  std::unique_ptr<DirectoryWatcher> watcher_;
};

}  // namespace phoenix::control_plane
