#include "source/upstream/cluster_manager.h"

#include <algorithm>

#include "source/upstream/auto_conn_pool.h"
#include "source/upstream/http2_conn_pool.h"

namespace phoenix::upstream {
namespace {
thread_local ClusterManager* this_thread_cluster_manager = nullptr;
}  // namespace

ClusterManager* ClusterManager::ForThisThread() { return this_thread_cluster_manager; }

void ClusterManager::SetForThisThread(ClusterManager* manager) {
  this_thread_cluster_manager = manager;
}

ThreadLocalCluster::ThreadLocalCluster(Dispatcher& dispatcher,
                                       std::shared_ptr<const ClusterInfo> info,
                                       ConnectionPoolFactory pool_factory)
    : dispatcher_(dispatcher),
      info_(std::move(info)),
      load_balancer_(*info_, dispatcher.time_source()),
      pool_factory_(std::move(pool_factory)),
      pools_generation_(info_->host_set().generation()) {}

void ThreadLocalCluster::RetirePools() {
  const HostVector& hosts = load_balancer_.hosts();
  for (auto it = pools_.begin(); it != pools_.end();) {
    bool stays = std::any_of(hosts.begin(), hosts.end(),
                             [&](const HostSharedPtr& h) { return h.get() == it->first; });
    if (stays) {
      ++it;
      continue;
    }
    it->second->Drain();
    retired_.push_back(std::move(it->second));
    pools_.erase(it++);
  }
}

void ThreadLocalCluster::SweepRetiredPools() {
  // A pool goes once it holds nothing and no request still accounts to its host (the pool
  // keeps the host alive for them); never inside its own callbacks.
  for (auto& pool : retired_) {
    if (pool->Idle() && pool->host().rq_active.load(std::memory_order_relaxed) == 0) {
      dispatcher_.DeferredDelete(std::move(pool));
    }
  }
  std::erase(retired_, nullptr);
}

Host* ThreadLocalCluster::ChooseHost(const std::vector<const Host*>& excluded) {
  auto failed = [&](const Host* h) {
    return std::find(excluded.begin(), excluded.end(), h) != excluded.end();
  };
  Host* host = load_balancer_.Choose();
  // Choose() took the cluster's new hosts, if any; and pools that drain go once idle.
  if (pools_generation_ != load_balancer_.generation()) {
    pools_generation_ = load_balancer_.generation();
    RetirePools();
  }
  if (!retired_.empty()) SweepRetiredPools();
  if (host == nullptr || !failed(host)) return host;
  for (int tries = 0; tries < 3 && failed(host); ++tries) {
    if (Host* candidate = load_balancer_.Choose()) host = candidate;
  }
  if (!failed(host)) return host;
  uint64_t now = dispatcher_.time_source().MonotonicMs();
  for (const auto& candidate : load_balancer_.hosts()) {
    if (!failed(candidate.get()) && candidate->Available(now)) return candidate.get();
  }
  return host;
}

bool ThreadLocalCluster::BeginRequest(Host& host) {
  if (!info_->breakers().requests.TryAcquire()) return false;
  const ClusterStats& stats = info_->stats();
  stats.upstream_rq_total.Inc();
  stats.upstream_rq_active.Inc();
  host.rq_total.fetch_add(1, std::memory_order_relaxed);
  host.rq_active.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ThreadLocalCluster::EndRequest(Host& host, double duration_ms) {
  host.rq_active.fetch_sub(1, std::memory_order_relaxed);
  info_->breakers().requests.Release();
  const ClusterStats& stats = info_->stats();
  stats.upstream_rq_active.Dec();
  stats.upstream_rq_time.Record(duration_ms);
}

void ThreadLocalCluster::ReportResponse(Host& host, int status) {
  if (status >= 100 && status < 600) info_->stats().upstream_rq_class[status / 100 - 1]->Inc();
  if (status >= 500) host.rq_error.fetch_add(1, std::memory_order_relaxed);
  ReportOutcome(*info_, host, status, /*gateway_failure=*/false, dispatcher_.time_source());
}

void ThreadLocalCluster::ReportFailure(Host& host) {
  info_->stats().upstream_rq_reset.Inc();
  host.rq_error.fetch_add(1, std::memory_order_relaxed);
  ReportOutcome(*info_, host, 0, /*gateway_failure=*/true, dispatcher_.time_source());
}

bool ThreadLocalCluster::BeginRetry() {
  if (info_->breakers().TryAcquireRetry()) {
    info_->stats().upstream_rq_retry.Inc();
    return true;
  }
  info_->breakers().retry_overflow.Inc();
  return false;
}

void ThreadLocalCluster::EndRetry() { info_->breakers().retries.Release(); }

void ThreadLocalCluster::OnOverflow() { info_->breakers().overflow.Inc(); }

ConnectionPool& ThreadLocalCluster::PoolFor(Host& host) {
  auto& pool = pools_[&host];
  if (pool == nullptr && pool_factory_ != nullptr) {
    pool = pool_factory_(host);
  } else if (pool == nullptr) {
    // The pool keeps its host alive, also after a DNS cluster drops it: the connections it
    // has finish their requests, and no new request is sent to a host the balancer lost.
    HostSharedPtr h = host.shared_from_this();
    switch (info_->protocol()) {
      case config::v1::Cluster::HTTP2:
        pool = std::make_unique<Http2ConnPool>(dispatcher_, info_, h);
        break;
      case config::v1::Cluster::AUTO:
        pool = std::make_unique<AutoConnPool>(dispatcher_, info_, h);
        break;
      default:
        pool = std::make_unique<Http1ConnPool>(dispatcher_, info_, h);
        break;
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
      next[name] = std::make_shared<ThreadLocalCluster>(dispatcher_, info, pool_factory_);
    }
  }
  clusters_.swap(next);
  last_ = nullptr;
}

std::shared_ptr<ThreadLocalCluster> ClusterManager::Get(const std::string& name) const {
  if (last_ != nullptr && name == last_name_) return last_;
  auto it = clusters_.find(name);
  if (it == clusters_.end()) return nullptr;
  last_name_ = name;
  last_ = it->second;
  return last_;
}

}  // namespace phoenix::upstream
