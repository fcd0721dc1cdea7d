#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "source/common/stats.h"
#include "source/config/config_source.h"
#include "source/config/snapshot.h"

namespace phoenix::config {

// What a config source's updates subscribe to: each update's resources are laid over the ones
// in force, type by type, and built into a new snapshot, which is then offered to the
// publisher (the server: it binds the listeners' sockets and posts the snapshot to its
// workers). The update is ACKed only when both succeed; otherwise the last good snapshot stays.
class SnapshotBuilder : public ConfigUpdateCallbacks {
 public:
  using Publisher = std::function<absl::Status(std::shared_ptr<const ConfigSnapshot>)>;

  // `source` tells how references between resources are checked (ConfigSource::dynamic()).
  SnapshotBuilder(const ConfigSource& source, StatsStore& stats, Publisher publisher)
      : kind_(source.dynamic() ? SourceKind::kDynamic : SourceKind::kStatic),
        stats_(stats),
        publisher_(std::move(publisher)) {}

  absl::Status OnConfigUpdate(const ConfigUpdate& update) override;
  // Builds the snapshot in force again from its own resources, reading the files they name
  // (certificates, keys, CA bundles) afresh: how a rotated certificate file takes effect
  // without any config change. A failure keeps the snapshot in force.
  absl::Status Rebuild();

  // Serves `secret` beside the source's secrets, replacing one of the same name, from now on
  // (the workload certificate the proxy was issued: it comes from no config source). Rebuilds
  // the snapshot in force with it; an error keeps the snapshot in force, and the secret is
  // still kept for later updates.
  absl::Status SetLocalSecret(const v1::Secret& secret);

  // The snapshot last published; null before the first.
  const std::shared_ptr<const ConfigSnapshot>& current() const { return current_; }

 private:
  const SourceKind kind_;
  StatsStore& stats_;
  Publisher publisher_;
  std::shared_ptr<const ConfigSnapshot> current_;
  uint64_t next_version_ = 1;
  std::map<std::string, v1::Secret> local_secrets_;  // By name.
};

}  // namespace phoenix::config
