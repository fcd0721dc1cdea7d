#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/dispatcher.h"
#include "source/common/stats.h"
#include "source/config/supervisor_config.h"
#include "source/server/app_supervisor.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::server {

// The bootstrap's supervisor section at work: one AppSupervisor per app, on the main loop.
// The server makes it once the workers run, hands it each new snapshot's clusters, and waits
// for StopAll() before it exits.
class Supervisor {
 public:
  // Fails if an app's log file cannot be opened.
  static absl::StatusOr<std::unique_ptr<Supervisor>> Create(
      Dispatcher& dispatcher, StatsStore& stats, const std::vector<config::AppConfig>& apps);

  // Points each app at its cluster of `clusters` (the snapshot in force).
  void SetClusters(const upstream::ClusterMap& clusters);
  void Start();
  // Stops every app's instances gracefully; `done` runs once all have exited.
  void StopAll(std::function<void()> done);
  void KillAll();
  // The running instances' processes, of every app (the overload manager's app_cpu).
  std::vector<pid_t> Pids() const;
  // {"apps":[...]} for GET /apps.
  std::string Json() const;

 private:
  std::vector<std::unique_ptr<AppSupervisor>> apps_;
  size_t running_ = 0;  // Apps not stopped yet (StopAll).
  std::function<void()> on_stopped_;
};

}  // namespace phoenix::server
