#include "source/upstream/cluster_manager.h"

namespace phoenix::upstream {
namespace {
thread_local ClusterManager* this_thread_cluster_manager = nullptr;
}  // namespace

ClusterManager* ClusterManager::ForThisThread() { return this_thread_cluster_manager; }

void ClusterManager::SetForThisThread(ClusterManager* manager) {
  this_thread_cluster_manager = manager;
}

ThreadLocalCluster::ThreadLocalCluster(Dispatcher& dispatcher,
                                       std::shared_ptr<const ClusterInfo> info)
    : dispatcher_(dispatcher),
      info_(std::move(info)),
      load_balancer_(*info_, dispatcher.time_source()) {}

Http1ConnPool& ThreadLocalCluster::PoolFor(Host& host) {
  auto& pool = pools_[&host];
  if (pool == nullptr) {
    for (const auto& h : info_->hosts()) {
      if (h.get() == &host) pool = std::make_unique<Http1ConnPool>(dispatcher_, info_, h);
    }
  }
  return *pool;
}

void ClusterManager::Update(const ClusterMap& clusters) {
  absl::flat_hash_map<std::string, std::shared_ptr<ThreadLocalCluster>> next;
  for (const auto& [name, info] : clusters) {
    auto it = clusters_.find(name);
    if (it != clusters_.end() && &it->second->info() == info.get()) {
      next[name] = it->second;
    } else {
      next[name] = std::make_shared<ThreadLocalCluster>(dispatcher_, info);
    }
  }
  clusters_.swap(next);
}

std::shared_ptr<ThreadLocalCluster> ClusterManager::Get(const std::string& name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second;
}

}  // namespace phoenix::upstream
