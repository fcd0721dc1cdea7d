#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/dispatcher.h"
#include "source/upstream/cluster.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::upstream {

// A cluster as one worker sees it: its load balancer and its connection pools.
class ThreadLocalCluster {
 public:
  ThreadLocalCluster(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> info);

  const ClusterInfo& info() const { return *info_; }
  LoadBalancer& load_balancer() { return load_balancer_; }
  Http1ConnPool& PoolFor(Host& host);

 private:
  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> info_;
  LoadBalancer load_balancer_;
  absl::flat_hash_map<const Host*, std::unique_ptr<Http1ConnPool>> pools_;
};

using ClusterMap = std::map<std::string, std::shared_ptr<const ClusterInfo>>;

// A worker's clusters. Update() swaps in a new set; a cluster whose ClusterInfo object is
// unchanged keeps its pools. Requests in flight hold their ThreadLocalCluster alive.
class ClusterManager {
 public:
  explicit ClusterManager(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  void Update(const ClusterMap& clusters);
  std::shared_ptr<ThreadLocalCluster> Get(const std::string& name) const;
  void Clear() { clusters_.clear(); }

  // The cluster manager of the calling worker thread, or null on other threads. Set by the
  // worker on its own thread: this is how the router (a filter, created by a factory shared
  // by every worker) reaches its worker's clusters without the HTTP layer knowing them.
  static ClusterManager* ForThisThread();
  static void SetForThisThread(ClusterManager* manager);

 private:
  Dispatcher& dispatcher_;
  absl::flat_hash_map<std::string, std::shared_ptr<ThreadLocalCluster>> clusters_;
};

}  // namespace phoenix::upstream
