#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "source/control_plane/etcd_client.h"
#include "source/control_plane/etcd_keys.h"
#include "source/control_plane/etcd_shared_records.h"
#include "source/control_plane/etcd_watcher.h"
#include "source/control_plane/resource_store.h"

namespace phoenix::control_plane {

// The store shared by several phoenix-cp replicas: everything lives in etcd under a prefix
// (EtcdKeys has the layout). A commit is one etcd transaction that checks the version key
// is still the one seen and then writes the version, the changed files, the version's
// history entry and its audit record together, so two replicas committing at once never lose
// an update: one wins, the other is told (ABORTED) and reads again. A watch on the version
// key tells every replica of every commit.
class EtcdStore : public ResourceStore {
 public:
  EtcdStore(std::unique_ptr<EtcdClient> client, std::string prefix);
  ~EtcdStore() override;

  absl::StatusOr<StoredState> Read() override;
  absl::Status Commit(const StoredState& seen, const FileSet& next,
                      const std::string& audit_line) override;
  absl::StatusOr<FileSet> Version(uint64_t version) override;
  absl::Status AppendAudit(const std::string& line) override;
  absl::StatusOr<std::vector<std::string>> AuditLines() override;
  void Watch(std::function<void()> on_change) override;
  void StopWatching() override { watcher_.reset(); }
  const std::string& root() const override { return root_; }
  std::string description() const override;
  SharedRecords* shared_records() override { return &shared_; }

 private:
  // A new audit record's key (unique across replicas and calls).
  std::string NextAuditKey();

  std::unique_ptr<EtcdClient> client_;
  const EtcdKeys keys_;
  const std::string root_;     // "": etcd paths are shown as they are.
  const std::string replica_;  // Random, tells this replica's audit keys apart.
  std::atomic<uint64_t> audit_sequence_{0};
  EtcdSharedRecords shared_;
  std::unique_ptr<EtcdWatcher> watcher_;
};

}  // namespace phoenix::control_plane
