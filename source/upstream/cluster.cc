#include "source/upstream/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "source/network/tcp_connection.h"

namespace phoenix::upstream {
namespace {

std::chrono::milliseconds ToMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

}  // namespace

bool ParseSocketAddress(const std::string& ip, uint32_t port, sockaddr_storage* out) {
  if (port > 65535) return false;
  std::memset(out, 0, sizeof(*out));
  auto* in = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, ip.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    return true;
  }
  return false;
}

ClusterStats::ClusterStats(StatsStore& store, const std::string& name)
    : upstream_rq_total(store.counter(absl::StrCat("cluster.", name, ".upstream_rq_total"))),
      upstream_rq_active(store.gauge(absl::StrCat("cluster.", name, ".upstream_rq_active"))),
      upstream_cx_total(store.counter(absl::StrCat("cluster.", name, ".upstream_cx_total"))),
      upstream_cx_active(store.gauge(absl::StrCat("cluster.", name, ".upstream_cx_active"))),
      upstream_cx_connect_fail(
          store.counter(absl::StrCat("cluster.", name, ".upstream_cx_connect_fail"))),
      upstream_cx_connect_timeout(
          store.counter(absl::StrCat("cluster.", name, ".upstream_cx_connect_timeout"))),
      upstream_cx_reuse(store.counter(absl::StrCat("cluster.", name, ".upstream_cx_reuse"))),
      upstream_cx_destroy(store.counter(absl::StrCat("cluster.", name, ".upstream_cx_destroy"))),
      upstream_rq_reset(store.counter(absl::StrCat("cluster.", name, ".upstream_rq_reset"))),
      upstream_rq_retry(store.counter(absl::StrCat("cluster.", name, ".upstream_rq_retry"))),
      upstream_rq_time(store.histogram(absl::StrCat("cluster.", name, ".upstream_rq_time"))) {
  for (int i = 0; i < 5; ++i) {
    upstream_rq_class[i] =
        &store.counter(absl::StrCat("cluster.", name, ".upstream_rq_", i + 1, "xx"));
  }
}

namespace {

uint32_t OrDefault(uint32_t value) { return value == 0 ? 1024 : value; }

}  // namespace

CircuitBreakers::CircuitBreakers(const config::v1::CircuitBreakers& proto, StatsStore& store,
                                 const std::string& cluster)
    : connections(OrDefault(proto.max_connections()),
                  store.gauge(absl::StrCat("cluster.", cluster, ".circuit_breakers.remaining_cx"))),
      pending(
          OrDefault(proto.max_pending_requests()),
          store.gauge(absl::StrCat("cluster.", cluster, ".circuit_breakers.remaining_pending"))),
      requests(OrDefault(proto.max_requests()),
               store.gauge(absl::StrCat("cluster.", cluster, ".circuit_breakers.remaining_rq"))),
      retries(
          OrDefault(proto.max_retries()),
          store.gauge(absl::StrCat("cluster.", cluster, ".circuit_breakers.remaining_retries"))),
      overflow(store.counter(absl::StrCat("cluster.", cluster, ".upstream_rq_overflow"))),
      retry_overflow(
          store.counter(absl::StrCat("cluster.", cluster, ".upstream_rq_retry_overflow"))) {}

std::shared_ptr<const ClusterInfo> ClusterInfo::Create(const config::v1::Cluster& proto,
                                                       StatsStore& stats, const std::string& path,
                                                       config::ConfigErrors& errors) {
  std::shared_ptr<ClusterInfo> info(new ClusterInfo(proto));
  size_t errors_before = errors.errors().size();
  if (proto.name().empty()) errors.Add(path + ".name", "a cluster needs a name");
  if (proto.has_connect_timeout()) {
    info->connect_timeout_ = ToMs(proto.connect_timeout());
    if (info->connect_timeout_.count() <= 0) {
      errors.Add(path + ".connect_timeout", "must be positive");
    }
  }
  if (proto.has_idle_timeout()) info->idle_timeout_ = ToMs(proto.idle_timeout());
  if (proto.max_idle_connections_per_host() != 0) {
    info->max_idle_per_host_ = proto.max_idle_connections_per_host();
  }
  const auto& endpoints = proto.load_assignment().endpoints();
  for (int i = 0; i < endpoints.size(); ++i) {
    const auto& locality = endpoints[i];
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      std::string epath = absl::StrCat(path, ".load_assignment.endpoints[", i, "].lb_endpoints[", j,
                                       "].endpoint.address.socket_address");
      const auto& socket = locality.lb_endpoints(j).endpoint().address().socket_address();
      sockaddr_storage address;
      if (!ParseSocketAddress(socket.address(), socket.port_value(), &address)) {
        errors.Add(epath + ".address",
                   absl::StrCat("'", socket.address(), "' is not an IP address"));
        continue;
      }
      if (socket.port_value() == 0 || socket.port_value() > 65535) {
        errors.Add(epath + ".port_value", "port must be 1-65535");
        continue;
      }
      info->hosts_.push_back(std::make_shared<Host>(
          address, network::FormatAddress(reinterpret_cast<const sockaddr*>(&address)),
          locality.priority()));
    }
  }
  if (info->hosts_.empty() && errors.errors().size() == errors_before) {
    errors.Add(path + ".load_assignment", "a cluster needs at least one endpoint");
  }
  if (errors.errors().size() != errors_before) return nullptr;
  info->stats_ = std::make_unique<ClusterStats>(stats, proto.name());
  info->breakers_ =
      std::make_unique<CircuitBreakers>(proto.circuit_breakers(), stats, proto.name());
  return info;
}

LoadBalancer::LoadBalancer(const ClusterInfo& cluster)
    : cluster_(cluster), random_(std::random_device{}()) {
  uint32_t best = UINT32_MAX;
  for (const auto& host : cluster.hosts()) best = std::min(best, host->priority());
  for (const auto& host : cluster.hosts()) {
    if (host->priority() == best) hosts_.push_back(host.get());
  }
  // Workers start at different offsets so round robin spreads across them too.
  if (!hosts_.empty()) next_ = random_() % hosts_.size();
}

Host* LoadBalancer::Choose() {
  if (hosts_.empty()) return nullptr;
  switch (cluster_.proto().lb_policy()) {
    case config::v1::Cluster::RANDOM:
      return hosts_[random_() % hosts_.size()];
    case config::v1::Cluster::LEAST_REQUEST: {
      if (hosts_.size() == 1) return hosts_[0];
      // Power of two choices: two distinct random hosts, fewer active requests wins.
      size_t a = random_() % hosts_.size();
      size_t b = (a + 1 + random_() % (hosts_.size() - 1)) % hosts_.size();
      return hosts_[a]->rq_active.load(std::memory_order_relaxed) <=
                     hosts_[b]->rq_active.load(std::memory_order_relaxed)
                 ? hosts_[a]
                 : hosts_[b];
    }
    default:
      return hosts_[next_++ % hosts_.size()];
  }
}

}  // namespace phoenix::upstream
