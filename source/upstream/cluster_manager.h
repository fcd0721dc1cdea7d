#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "source/common/dispatcher.h"
#include "source/upstream/cluster.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::upstream {

// Makes the connection pool of one host of a cluster on one worker. Unset (the default), the
// pool of the cluster's protocol (Http1ConnPool or Http2ConnPool); the seam where a test puts
// a fake pool.
using ConnectionPoolFactory = std::function<std::unique_ptr<ConnectionPool>(Host& host)>;

// A cluster as one worker sees it: host selection, connection pools, and the bookkeeping of
// every upstream request (circuit breakers, stats, outlier detection), each one call, so
// the router only decides what to do with a request.
class ThreadLocalCluster {
 public:
  ThreadLocalCluster(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> info,
                     ConnectionPoolFactory pool_factory = nullptr);

  const ClusterInfo& info() const { return *info_; }
  // A host for the next attempt: the load balancer's pick, else any available host, never
  // one in `excluded` (hosts that already failed this request) while another is available.
  // Null: no healthy host.
  Host* ChooseHost(const std::vector<const Host*>& excluded);
  ConnectionPool& PoolFor(Host& host);

  // An attempt on `host` begins: takes a max_requests slot (false: the breaker is open) and
  // counts it.
  bool BeginRequest(Host& host);
  // The attempt that BeginRequest allowed is over, after `duration_ms`.
  void EndRequest(Host& host, double duration_ms);
  // The upstream answered `status` / failed at the connection or protocol level: stats and
  // outlier detection.
  void ReportResponse(Host& host, int status);
  void ReportFailure(Host& host);
  // A retry begins: takes a max_retries slot (false: the breaker or budget refuses); a
  // retry that began ends with EndRetry.
  bool BeginRetry();
  void EndRetry();
  // A request was refused by a breaker.
  void OnOverflow();

 private:
  // The cluster's hosts changed (DNS): the pools of hosts that left drain (retired_).
  void RetirePools();
  // Destroys the retired pools that are done.
  void SweepRetiredPools();

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> info_;
  LoadBalancer load_balancer_;
  ConnectionPoolFactory pool_factory_;  // Null: the cluster's protocol's pool.
  absl::flat_hash_map<const Host*, std::unique_ptr<ConnectionPool>> pools_;
  uint64_t pools_generation_;  // The host set generation pools_ follows.
  // Pools of hosts that left, draining; each keeps its host alive until it goes.
  std::vector<std::unique_ptr<ConnectionPool>> retired_;
};

using ClusterMap = std::map<std::string, std::shared_ptr<const ClusterInfo>>;

// A worker's clusters. Update() swaps in a new set; a cluster whose ClusterInfo object is
// unchanged keeps its pools. Requests in flight hold their ThreadLocalCluster alive.
class ClusterManager {
 public:
  // `pool_factory` makes every cluster's pools (null: Http1ConnPool).
  explicit ClusterManager(Dispatcher& dispatcher, ConnectionPoolFactory pool_factory = nullptr)
      : dispatcher_(dispatcher), pool_factory_(std::move(pool_factory)) {}

  void Update(const ClusterMap& clusters);
  std::shared_ptr<ThreadLocalCluster> Get(const std::string& name) const;
  void Clear() {
    clusters_.clear();
    last_ = nullptr;
  }

  // The cluster manager of the calling worker thread, or null on other threads. Set by the
  // worker on its own thread: this is how the router (a filter, created by a factory shared
  // by every worker) reaches its worker's clusters without the HTTP layer knowing them.
  static ClusterManager* ForThisThread();
  static void SetForThisThread(ClusterManager* manager);

 private:
  Dispatcher& dispatcher_;
  ConnectionPoolFactory pool_factory_;
  absl::flat_hash_map<std::string, std::shared_ptr<ThreadLocalCluster>> clusters_;
  // The cluster Get found last, by name: requests in a row mostly go to one cluster, and a
  // compare costs less than hashing the name.
  mutable std::string last_name_;
  mutable std::shared_ptr<ThreadLocalCluster> last_;
};

}  // namespace phoenix::upstream
