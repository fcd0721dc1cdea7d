#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "source/common/dispatcher.h"
#include "source/config/snapshot.h"
#include "source/upstream/health_checker.h"

namespace phoenix::server {

// Holds a snapshot from a control plane back from the workers until every cluster new to them
// is warm, as Envoy warms clusters: its endpoints are known (an EDS cluster's
// ClusterLoadAssignment has arrived) and, with health checks, each host has been checked once,
// that first result alone deciding its health. So a route never sends traffic to a cluster
// that has no hosts yet, or to hosts that are down. A later snapshot replaces one still held;
// `timeout` after holding began, the snapshot held then goes anyway, with a warning.
class ClusterWarmer {
 public:
  // The health checker of a cluster of the snapshot being held; null when it has none.
  using CheckerLookup = std::function<upstream::HealthChecker*(const upstream::ClusterInfo&)>;

  ClusterWarmer(Dispatcher& dispatcher, std::chrono::milliseconds timeout);

  // Runs `release` (on the dispatcher's thread) once every cluster of `snapshot` is warm: at
  // once when none is new, or when `warm_new_clusters` is false (a file's config: its clusters
  // are all there from the start). Replaces any snapshot still held.
  void Hold(std::shared_ptr<const config::ConfigSnapshot> snapshot, bool warm_new_clusters,
            const CheckerLookup& checkers, std::function<void()> release);

 private:
  // Releases the held snapshot if no cluster is cold any more.
  void MaybeRelease();
  void Release();
  static std::string Names(const std::set<std::shared_ptr<const upstream::ClusterInfo>>& clusters);

  Dispatcher& dispatcher_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<Timer> timeout_timer_;
  // Clusters the workers have (or will have with the held snapshot) that are warm. Owning
  // references, so an address is never reused by another cluster while it is listed here.
  std::set<std::shared_ptr<const upstream::ClusterInfo>> warm_;
  std::set<std::shared_ptr<const upstream::ClusterInfo>> cold_;
  std::function<void()> release_;
  uint64_t hold_generation_ = 0;  // Tells a stale health-check callback from a current one.
};

}  // namespace phoenix::server
