#include "source/server/cluster_warmer.h"

#include "source/common/logging.h"

namespace phoenix::server {

ClusterWarmer::ClusterWarmer(Dispatcher& dispatcher, std::chrono::milliseconds timeout)
    : dispatcher_(dispatcher), timeout_(timeout) {}

void ClusterWarmer::Hold(std::shared_ptr<const config::ConfigSnapshot> snapshot,
                         bool warm_new_clusters, const CheckerLookup& checkers,
                         std::function<void()> release) {
  ++hold_generation_;
  release_ = std::move(release);
  std::set<std::shared_ptr<const upstream::ClusterInfo>> warm;
  cold_.clear();
  for (const auto& [name, cluster] : snapshot->clusters) {
    if (!warm_new_clusters || warm_.contains(cluster)) {
      warm.insert(cluster);
      continue;
    }
    if (cluster->type() == config::v1::Cluster::EDS &&
        !snapshot->endpoint_assignments.contains(cluster->eds_service_name())) {
      cold_.insert(cluster);  // Until a snapshot with its endpoints comes.
      continue;
    }
    upstream::HealthChecker* checker = checkers(*cluster);
    if (checker != nullptr && !checker->warm()) {
      cold_.insert(cluster);
      uint64_t generation = hold_generation_;
      checker->Warm([this, generation, cluster = cluster.get()] {
        if (generation != hold_generation_) return;
        for (auto it = cold_.begin(); it != cold_.end(); ++it) {
          if (it->get() != cluster) continue;
          warm_.insert(*it);
          cold_.erase(it);
          break;
        }
        MaybeRelease();
      });
      continue;
    }
    warm.insert(cluster);
  }
  warm_.swap(warm);  // Clusters gone from the snapshot are forgotten.
  if (cold_.empty()) {
    Release();
    return;
  }
  PHX_LOG(kInfo, "warming clusters ", Names(cold_), " before the workers take config version ",
          snapshot->version);
  if (timeout_timer_ == nullptr) {
    timeout_timer_ = dispatcher_.CreateTimer([this] {
      PHX_LOG(kWarn, "clusters ", Names(cold_), " still warming after ", timeout_.count(),
              " ms; the config goes to the workers without them being warm");
      for (const auto& cluster : cold_) warm_.insert(cluster);
      cold_.clear();
      Release();
    });
  }
  // Counted from when holding began: later snapshots do not put the deadline off.
  if (!timeout_timer_->enabled()) timeout_timer_->Enable(timeout_);
}

void ClusterWarmer::MaybeRelease() {
  if (cold_.empty() && release_) Release();
}

void ClusterWarmer::Release() {
  if (timeout_timer_ != nullptr) timeout_timer_->Disable();
  std::function<void()> release = std::move(release_);
  release_ = nullptr;
  if (release) release();
}

std::string ClusterWarmer::Names(
    const std::set<std::shared_ptr<const upstream::ClusterInfo>>& clusters) {
  std::string names;
  for (const auto& cluster : clusters) {
    if (!names.empty()) names += ", ";
    names += "'" + cluster->name() + "'";
  }
  return names;
}

}  // namespace phoenix::server
