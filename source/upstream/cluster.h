#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "phoenix/config/v1/cluster.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/common/time_source.h"
#include "source/http/http2_codec.h"
#include "source/network/dns_resolver.h"
#include "source/network/transport_socket.h"
#include "source/network/transport_socket_registry.h"

namespace phoenix::upstream {

// One upstream endpoint, shared by all workers. Its counters are atomics so every worker
// can account to it and /clusters can read it.
class Host : public std::enable_shared_from_this<Host> {
 public:
  Host(const sockaddr_storage& address, std::string address_string, uint32_t priority)
      : address_(address), address_string_(std::move(address_string)), priority_(priority) {}
  // A LOGICAL_DNS cluster's one host: named `name_and_port` (its address_string), its
  // address follows the name's resolution (set_address).
  static std::shared_ptr<Host> Logical(const sockaddr_storage& address, std::string name_and_port,
                                       uint32_t priority) {
    auto host = std::make_shared<Host>(address, std::move(name_and_port), priority);
    host->logical_ = true;
    return host;
  }

  // A copy of the address, which a LOGICAL_DNS host's may change meanwhile.
  struct Address {
    sockaddr_storage storage;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  };
  // Where new connections to the host go.
  Address address() const {
    if (!logical_) return {address_};
    absl::MutexLock lock(&address_mu_);
    return {address_};
  }
  // A logical host's new address (connections open to the old one stay).
  void set_address(const sockaddr_storage& address) {
    absl::MutexLock lock(&address_mu_);
    address_ = address;
  }
  const std::string& address_string() const { return address_string_; }
  uint32_t priority() const { return priority_; }

  std::atomic<uint64_t> rq_total{0};
  std::atomic<uint64_t> rq_error{0};  // 5xx and resets
  std::atomic<int64_t> rq_active{0};
  std::atomic<uint64_t> cx_total{0};
  std::atomic<uint64_t> cx_connect_fail{0};
  std::atomic<int64_t> cx_active{0};

  // Health, shared by all workers. Active checks set `failed_active_hc`; outlier detection
  // sets `ejected_until_ms` (TimeSource::MonotonicMs(), the same on every thread).
  std::atomic<bool> failed_active_hc{false};
  std::atomic<uint64_t> ejected_until_ms{0};
  std::atomic<uint32_t> times_ejected{0};
  std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_gateway_failures{0};
  // Outcomes in the current success-rate interval.
  std::atomic<uint32_t> interval_requests{0};
  std::atomic<uint32_t> interval_successes{0};

  bool Ejected(uint64_t now_ms) const {
    return ejected_until_ms.load(std::memory_order_relaxed) > now_ms;
  }
  bool Available(uint64_t now_ms) const {
    return !failed_active_hc.load(std::memory_order_relaxed) && !Ejected(now_ms);
  }

 private:
  // Written only for a logical host; read under the lock only then.
  mutable absl::Mutex address_mu_;
  sockaddr_storage address_;
  std::string address_string_;
  uint32_t priority_;
  bool logical_ = false;
};

using HostSharedPtr = std::shared_ptr<Host>;
using HostVector = std::vector<HostSharedPtr>;
using HostVectorConstSharedPtr = std::shared_ptr<const HostVector>;

// A host's address (port set) and priority: what a DNS cluster's name resolved to, or an
// endpoint of a ClusterLoadAssignment.
struct ResolvedHost {
  sockaddr_storage address;
  uint32_t priority;
};

// The IP endpoints of `assignment` (STATIC and EDS clusters). Errors go under `path`
// (+ ".endpoints[i].lb_endpoints[j]..."); `host_name_hint` follows the error for an address
// that is a host name.
std::vector<ResolvedHost> ParseIpEndpoints(const config::v1::ClusterLoadAssignment& assignment,
                                           const std::string& path, std::string_view host_name_hint,
                                           config::ConfigErrors& errors);

// The hosts a cluster should have now: the Host in `current` with the same address and
// priority where there is one (so its counters, health and connections carry on), a new Host
// for the rest, in the order of `wanted`, without duplicates. `*changed` says whether the
// result differs from `current`.
HostVector MergeHosts(const HostVector& current, const std::vector<ResolvedHost>& wanted,
                      bool* changed);

// The current hosts of a cluster. A STATIC cluster sets them once; a DNS cluster's are
// replaced as a whole, on the main thread, when its names resolve to other addresses. Any
// thread may read them: a worker's load balancer notices a new generation on its next pick
// (one atomic load), as it notices the health flags the main thread sets on each host.
class HostSet {
 public:
  HostVectorConstSharedPtr hosts() const {
    absl::MutexLock lock(&mu_);
    return hosts_;
  }
  // Moves on with every Replace().
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void Replace(HostVector hosts) {
    auto next = std::make_shared<const HostVector>(std::move(hosts));
    absl::MutexLock lock(&mu_);
    hosts_ = std::move(next);
    generation_.fetch_add(1, std::memory_order_release);
  }

 private:
  mutable absl::Mutex mu_;
  HostVectorConstSharedPtr hosts_ = std::make_shared<const HostVector>();
  std::atomic<uint64_t> generation_{0};
};

// One circuit breaker: a cluster-wide count with a ceiling. Acquire is exact across workers
// (compare-and-swap); the gauge shows how much room is left.
class Breaker {
 public:
  Breaker(uint32_t max, Gauge& remaining) : max_(max), remaining_(remaining) {
    remaining_.Set(max);
  }
  bool TryAcquire() { return TryAcquireWithin(max_); }
  // With a ceiling computed per call (a retry budget) instead of the configured one.
  bool TryAcquireWithin(uint32_t limit) {
    uint32_t current = count_.load(std::memory_order_relaxed);
    do {
      if (current >= limit) return false;
    } while (!count_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    remaining_.Set(static_cast<int64_t>(limit) - current - 1);
    return true;
  }
  uint32_t count() const { return count_.load(std::memory_order_relaxed); }
  void Release() {
    uint32_t before = count_.fetch_sub(1, std::memory_order_relaxed);
    remaining_.Set(max_ - before + 1);
  }

 private:
  const uint32_t max_;
  std::atomic<uint32_t> count_{0};
  Gauge& remaining_;
};

struct CircuitBreakers {
  CircuitBreakers(const config::v1::CircuitBreakers& proto, StatsStore& store,
                  const std::string& cluster);
  CircuitBreakers(const config::v1::CircuitBreakers& proto, const StatsScope& scope);
  Breaker connections;
  Breaker pending;
  Breaker requests;
  Breaker retries;
  // Takes a retry slot: within max_retries, or within the retry budget if one is set.
  bool TryAcquireRetry();
  bool has_budget = false;
  double budget_percent = 20;
  uint32_t min_retry_concurrency = 3;
  Counter& overflow;        // Requests answered 503 UO by a breaker.
  Counter& retry_overflow;  // Retries not made because of max_retries or the budget.
};

// cluster.<name>.<stat>
#define PHX_CLUSTER_STATS(COUNTER, GAUGE, HISTOGRAM)                                    \
  COUNTER(upstream_rq_total, "Requests sent to the cluster's hosts")                    \
  GAUGE(upstream_rq_active, "Requests to the cluster in progress")                      \
  COUNTER(upstream_cx_total, "Connections opened to the cluster's hosts")               \
  GAUGE(upstream_cx_active, "Connections to the cluster's hosts now open")              \
  COUNTER(upstream_cx_connect_fail, "Connection attempts that failed")                  \
  COUNTER(upstream_cx_connect_timeout, "Connection attempts that timed out")            \
  COUNTER(upstream_cx_reuse, "Requests sent on a kept-alive connection")                \
  COUNTER(upstream_cx_destroy, "Connections to the cluster's hosts closed")             \
  COUNTER(upstream_rq_reset, "Requests whose upstream connection or stream was reset")  \
  COUNTER(upstream_rq_retry, "Requests retried")                                        \
  COUNTER(update_attempt, "Resolutions of the cluster's endpoint names started (DNS)")  \
  COUNTER(update_success, "Resolutions of the cluster's endpoint names that succeeded") \
  COUNTER(update_failure, "Resolutions that failed (the last good addresses stay)")     \
  GAUGE(membership_hosts, "Hosts the cluster has now")                                  \
  HISTOGRAM(upstream_rq_time, "Time from sending a request upstream to its response's end")
// cluster.<name>.health_check.<stat>: active health check results.
#define PHX_CLUSTER_HEALTH_CHECK_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(success, "Active health checks passed")                 \
  COUNTER(failure, "Active health checks failed")
// cluster.<name>.outlier_detection.<stat>: ejections by either kind of outlier detection.
#define PHX_CLUSTER_OUTLIER_DETECTION_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(ejections_total, "Hosts ejected by outlier detection")

// Groups of cluster stats under a prefix of their own, so that each stat's member name can be
// its name.
struct ClusterHealthCheckStats {
  PHX_STATS(ClusterHealthCheckStats, PHX_CLUSTER_HEALTH_CHECK_STATS);
};
struct ClusterOutlierDetectionStats {
  PHX_STATS(ClusterOutlierDetectionStats, PHX_CLUSTER_OUTLIER_DETECTION_STATS);
};

// What is counted for one cluster, shared by every worker.
struct ClusterStats {
  PHX_STATS(ClusterStats, PHX_CLUSTER_STATS,
            upstream_rq_class(scope.StatusClassCounters("upstream_rq_",
                                                        "Upstream responses by status class")),
            health_check(scope.Nested("health_check")),
            outlier_detection(scope.Nested("outlier_detection")));
  // Registered as cluster.<name>.<stat>.
  ClusterStats(StatsStore& store, const std::string& name);
  std::array<Counter*, 5> upstream_rq_class;  // upstream_rq_1xx..5xx
  ClusterHealthCheckStats health_check;
  ClusterOutlierDetectionStats outlier_detection;
};

// A validated cluster definition plus its hosts and stats. Immutable and shared by every
// worker; a reload with an identical definition keeps the same object, so hosts keep
// their counters and workers keep their pools.
class ClusterInfo {
 public:
  // Returns null and adds errors (under `path`) if the definition is invalid. `secrets` are
  // those its TLS context may name (may be null).
  static std::shared_ptr<const ClusterInfo> Create(const config::v1::Cluster& proto,
                                                   StatsStore& stats, const std::string& path,
                                                   config::ConfigErrors& errors,
                                                   const network::SecretMap* secrets = nullptr);

  const std::string& name() const { return proto_.name(); }
  const config::v1::Cluster& proto() const { return proto_; }
  std::chrono::milliseconds connect_timeout() const { return connect_timeout_; }
  std::chrono::milliseconds idle_timeout() const { return idle_timeout_; }
  uint32_t max_idle_per_host() const { return max_idle_per_host_; }
  uint32_t healthy_panic_threshold() const { return healthy_panic_threshold_; }
  // The hosts now (a DNS cluster's change as its names resolve). Keep the pointer while
  // iterating: `for (auto& h : *cluster.hosts())` would iterate a vector that may be gone.
  HostVectorConstSharedPtr hosts() const { return host_set_->hosts(); }
  const HostSet& host_set() const { return *host_set_; }
  // Replaces the hosts (main thread; DnsCluster) and counts them in membership_hosts.
  void UpdateHosts(HostVector hosts) const;

  // One endpoint of a STRICT_DNS or LOGICAL_DNS cluster: a name to resolve.
  struct DnsTarget {
    std::string name;
    uint32_t port;
    uint32_t priority;
  };
  config::v1::Cluster::DiscoveryType type() const { return proto_.type(); }
  // An EDS cluster's ClusterLoadAssignment name: eds_cluster_config.service_name, else its own.
  const std::string& eds_service_name() const {
    return proto_.eds_cluster_config().service_name().empty()
               ? proto_.name()
               : proto_.eds_cluster_config().service_name();
  }
  const std::vector<DnsTarget>& dns_targets() const { return dns_targets_; }
  std::chrono::milliseconds dns_refresh_rate() const { return dns_refresh_rate_; }
  network::DnsLookupFamily dns_lookup_family() const;
  // Makes the transport socket of each connection to a host (requests and health checks).
  const network::TransportSocketFactory& transport_socket_factory() const {
    return *transport_socket_factory_;
  }
  ClusterStats& stats() const { return *stats_; }
  // Which HTTP version its connections speak: HTTP1, HTTP2, or AUTO (by ALPN, per host).
  config::v1::Cluster::UpstreamProtocol protocol() const { return proto_.protocol(); }
  // Whether every connection speaks HTTP/2 (protocol: HTTP2), and with which settings (also
  // those of AUTO's HTTP/2 connections).
  bool http2() const { return proto_.protocol() == config::v1::Cluster::HTTP2; }
  const http::Http2Options& http2_options() const { return http2_options_; }
  // Shared by every worker; mutable because counting is what a breaker does.
  CircuitBreakers& breakers() const { return *breakers_; }

 private:
  explicit ClusterInfo(const config::v1::Cluster& proto) : proto_(proto) {}

  config::v1::Cluster proto_;
  std::chrono::milliseconds connect_timeout_{5000};
  std::chrono::milliseconds idle_timeout_{60000};
  uint32_t max_idle_per_host_ = 32;
  uint32_t healthy_panic_threshold_ = 50;
  // Shared by every worker; mutable because a DNS cluster's hosts change.
  std::unique_ptr<HostSet> host_set_ = std::make_unique<HostSet>();
  std::vector<DnsTarget> dns_targets_;
  std::chrono::milliseconds dns_refresh_rate_{5000};
  network::TransportSocketFactoryPtr transport_socket_factory_;
  http::Http2Options http2_options_;
  std::unique_ptr<ClusterStats> stats_;
  std::unique_ptr<CircuitBreakers> breakers_;
};

// Picks a host for each request, one per worker per cluster (no locks but the host set's, when
// the hosts changed since the last pick). Hosts that failed
// active health checks or are ejected are skipped. Priorities work as Envoy's: priority 0
// takes a share of traffic of min(100%, 1.4 x its healthy fraction), the rest spills to
// priority 1, and so on; when the overall healthy share is under the panic threshold, traffic
// spreads over all hosts of the first priority regardless of health.
class LoadBalancer {
 public:
  LoadBalancer(const ClusterInfo& cluster, TimeSource& time_source);
  Host* Choose();
  // The hosts it picks from: the cluster's as of its last pick, and their generation.
  const HostVector& hosts() const { return *hosts_; }
  uint64_t generation() const { return generation_; }

 private:
  Host* PickFrom(const std::vector<Host*>& hosts);
  // Takes the cluster's hosts if they changed since the last pick.
  void Refresh();

  const ClusterInfo& cluster_;
  TimeSource& time_source_;
  uint64_t generation_ = 0;
  HostVectorConstSharedPtr hosts_;              // Keeps the hosts priorities_ points to alive.
  std::vector<std::vector<Host*>> priorities_;  // Index: priority level, lowest first.
  std::vector<Host*> scratch_;
  std::vector<uint32_t> load_;  // Per-priority share of traffic, recomputed per pick.
  size_t next_ = 0;
  std::minstd_rand random_;
};

// Feeds request outcomes to outlier detection for one cluster (any worker).
void ReportOutcome(const ClusterInfo& cluster, Host& host, int status, bool gateway_failure,
                   TimeSource& time_source);

// Ejects `host` if max_ejection_percent allows; returns whether it did.
bool Eject(const ClusterInfo& cluster, Host& host, uint64_t now_ms);

// Parses "ip" + port into a sockaddr. False for anything but an IPv4/IPv6 literal.
bool ParseSocketAddress(const std::string& ip, uint32_t port, sockaddr_storage* out);

}  // namespace phoenix::upstream
