#include "source/upstream/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "source/common/duration.h"
#include "source/common/strings.h"
#include "source/network/tcp_connection.h"
#include "source/network/transport_socket_registry.h"

namespace phoenix::upstream {

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
    : ClusterStats(StatsScope(store, "cluster.").Labelled("cluster_name", name)) {}

namespace {

uint32_t OrDefault(uint32_t value) { return value == 0 ? 1024 : value; }

// A DNS name (RFC 1123 letters, digits, '-', '.', and '_' as service names use) or an IP
// address: what getaddrinfo is worth asking about.
bool IsHostName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
           c == ':';
  });
}

constexpr std::string_view kStaticHostNameHint =
    ": a cluster of type STATIC (the default) takes IP addresses; to resolve a host name, say "
    "type: STRICT_DNS or LOGICAL_DNS";

}  // namespace

std::vector<ResolvedHost> ParseIpEndpoints(const config::v1::ClusterLoadAssignment& assignment,
                                           const std::string& path, std::string_view host_name_hint,
                                           config::ConfigErrors& errors) {
  std::vector<ResolvedHost> out;
  const auto& endpoints = assignment.endpoints();
  for (int i = 0; i < endpoints.size(); ++i) {
    const auto& locality = endpoints[i];
    for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
      std::string epath = absl::StrCat(path, ".endpoints[", i, "].lb_endpoints[", j,
                                       "].endpoint.address.socket_address");
      const auto& socket = locality.lb_endpoints(j).endpoint().address().socket_address();
      bool port_ok = socket.port_value() != 0 && socket.port_value() <= 65535;
      if (!port_ok) {
        errors.Add(epath + ".port_value",
                   absl::StrCat("port ", socket.port_value(), " is out of range: use 1-65535"));
      }
      ResolvedHost endpoint{};
      if (!ParseSocketAddress(socket.address(), port_ok ? socket.port_value() : 1,
                              &endpoint.address)) {
        errors.Add(epath + ".address",
                   absl::StrCat("'", socket.address(), "' is not an IP address",
                                IsHostName(socket.address()) ? AbslView(host_name_hint) : ""));
        continue;
      }
      if (!port_ok) continue;
      endpoint.priority = locality.priority();
      out.push_back(std::move(endpoint));
    }
  }
  return out;
}

HostVector MergeHosts(const HostVector& current, const std::vector<ResolvedHost>& wanted,
                      bool* changed) {
  HostVector next;
  for (const ResolvedHost& r : wanted) {
    std::string text = network::FormatAddress(reinterpret_cast<const sockaddr*>(&r.address));
    auto same = [&](const HostSharedPtr& h) {
      return h->address_string() == text && h->priority() == r.priority;
    };
    if (std::any_of(next.begin(), next.end(), same)) continue;
    auto kept = std::find_if(current.begin(), current.end(), same);
    next.push_back(kept != current.end() ? *kept
                                         : std::make_shared<Host>(r.address, text, r.priority));
  }
  *changed = next != current;
  return next;
}

void ClusterInfo::UpdateHosts(HostVector hosts) const {
  stats_->membership_hosts.Set(static_cast<int64_t>(hosts.size()));
  host_set_->Replace(std::move(hosts));
}

network::DnsLookupFamily ClusterInfo::dns_lookup_family() const {
  switch (proto_.dns_lookup_family()) {
    case config::v1::V6_ONLY:
      return network::DnsLookupFamily::kV6Only;
    case config::v1::AUTO:
      return network::DnsLookupFamily::kAuto;
    default:
      return network::DnsLookupFamily::kV4Only;
  }
}

CircuitBreakers::CircuitBreakers(const config::v1::CircuitBreakers& proto, StatsStore& store,
                                 const std::string& cluster)
    : CircuitBreakers(proto, StatsScope(store, "cluster.").Labelled("cluster_name", cluster)) {}

CircuitBreakers::CircuitBreakers(const config::v1::CircuitBreakers& proto, const StatsScope& scope)
    : connections(
          OrDefault(proto.max_connections()),
          scope.gauge("circuit_breakers.remaining_cx", "Connections the breaker still allows")),
      pending(OrDefault(proto.max_pending_requests()),
              scope.gauge("circuit_breakers.remaining_pending",
                          "Pending requests the breaker still allows")),
      requests(OrDefault(proto.max_requests()),
               scope.gauge("circuit_breakers.remaining_rq", "Requests the breaker still allows")),
      retries(OrDefault(proto.max_retries()), scope.gauge("circuit_breakers.remaining_retries",
                                                          "Retries the breaker still allows")),
      overflow(scope.counter("upstream_rq_overflow", "Requests answered 503 UO by a breaker")),
      retry_overflow(scope.counter("upstream_rq_retry_overflow",
                                   "Retries not made because of max_retries or the budget")) {
  if (proto.has_retry_budget()) {
    has_budget = true;
    const auto& budget = proto.retry_budget();
    if (budget.has_budget_percent()) budget_percent = budget.budget_percent();
    if (budget.has_min_retry_concurrency()) min_retry_concurrency = budget.min_retry_concurrency();
  }
}

bool CircuitBreakers::TryAcquireRetry() {
  if (!has_budget) return retries.TryAcquire();
  auto budget = static_cast<uint32_t>(requests.count() * budget_percent / 100);
  return retries.TryAcquireWithin(std::max(budget, min_retry_concurrency));
}

std::shared_ptr<const ClusterInfo> ClusterInfo::Create(const config::v1::Cluster& proto,
                                                       StatsStore& stats, const std::string& path,
                                                       config::ConfigErrors& errors,
                                                       const network::SecretMap* secrets) {
  std::shared_ptr<ClusterInfo> info(new ClusterInfo(proto));
  size_t errors_before = errors.errors().size();
  if (proto.name().empty()) errors.Add(path + ".name", "a cluster needs a name");
  if (proto.has_connect_timeout()) {
    info->connect_timeout_ = ToMilliseconds(proto.connect_timeout());
    if (info->connect_timeout_.count() <= 0) {
      errors.Add(path + ".connect_timeout", "must be positive");
    }
  }
  if (proto.has_idle_timeout()) info->idle_timeout_ = ToMilliseconds(proto.idle_timeout());
  if (proto.circuit_breakers().has_retry_budget()) {
    double percent = proto.circuit_breakers().retry_budget().budget_percent();
    if (percent < 0 || percent > 100) {
      errors.Add(path + ".circuit_breakers.retry_budget.budget_percent", "a percentage: 0-100");
    }
  }
  if (proto.has_healthy_panic_threshold()) {
    info->healthy_panic_threshold_ = proto.healthy_panic_threshold();
    if (proto.healthy_panic_threshold() > 100) {
      errors.Add(path + ".healthy_panic_threshold", "a percentage: 0-100");
    }
  }
  if (proto.max_idle_connections_per_host() != 0) {
    info->max_idle_per_host_ = proto.max_idle_connections_per_host();
  }
  bool dns = proto.type() == config::v1::Cluster::STRICT_DNS ||
             proto.type() == config::v1::Cluster::LOGICAL_DNS;
  bool supervised = proto.type() == config::v1::Cluster::SUPERVISED;
  if (proto.has_dns_refresh_rate()) {
    info->dns_refresh_rate_ = ToMilliseconds(proto.dns_refresh_rate());
    if (info->dns_refresh_rate_.count() <= 0) {
      errors.Add(path + ".dns_refresh_rate", "must be positive");
    }
  }
  bool eds = proto.type() == config::v1::Cluster::EDS;
  size_t endpoint_count = 0;
  for (const auto& locality : proto.load_assignment().endpoints()) {
    endpoint_count += locality.lb_endpoints_size();
  }
  HostVector hosts;
  if (dns) {
    const auto& endpoints = proto.load_assignment().endpoints();
    for (int i = 0; i < endpoints.size(); ++i) {
      const auto& locality = endpoints[i];
      for (int j = 0; j < locality.lb_endpoints_size(); ++j) {
        std::string epath = absl::StrCat(path, ".load_assignment.endpoints[", i, "].lb_endpoints[",
                                         j, "].endpoint.address.socket_address");
        const auto& socket = locality.lb_endpoints(j).endpoint().address().socket_address();
        bool port_ok = socket.port_value() != 0 && socket.port_value() <= 65535;
        if (!port_ok) {
          errors.Add(epath + ".port_value",
                     absl::StrCat("port ", socket.port_value(), " is out of range: use 1-65535"));
        }
        if (!IsHostName(socket.address())) {
          errors.Add(
              epath + ".address",
              absl::StrCat("'", socket.address(), "' is neither a host name nor an IP address"));
        } else if (port_ok) {
          info->dns_targets_.push_back(
              {socket.address(), socket.port_value(), locality.priority()});
        }
      }
    }
  } else if (!eds && !supervised) {
    for (auto& endpoint : ParseIpEndpoints(proto.load_assignment(), path + ".load_assignment",
                                           kStaticHostNameHint, errors)) {
      hosts.push_back(std::make_shared<Host>(
          endpoint.address,
          network::FormatAddress(reinterpret_cast<const sockaddr*>(&endpoint.address)),
          endpoint.priority));
    }
  }
  if (eds && endpoint_count != 0) {
    errors.Add(path + ".load_assignment",
               "an EDS cluster's hosts come from its ClusterLoadAssignment: give no endpoints "
               "here");
  }
  if (!eds && proto.has_eds_cluster_config()) {
    errors.Add(path + ".eds_cluster_config", "only for type: EDS");
  }
  if (supervised && endpoint_count != 0) {
    errors.Add(path + ".load_assignment",
               "a SUPERVISED cluster's hosts are its app's instances: give no endpoints");
  } else if (!supervised && !eds && endpoint_count == 0 &&
             errors.errors().size() == errors_before) {
    errors.Add(path + ".load_assignment", "a cluster needs at least one endpoint");
  }
  if (proto.type() == config::v1::Cluster::LOGICAL_DNS && endpoint_count > 1) {
    errors.Add(path + ".load_assignment",
               absl::StrCat("a LOGICAL_DNS cluster has exactly one endpoint (it has ",
                            endpoint_count, "); for several, say type: STRICT_DNS"));
  }
  // What TLS offers by ALPN when its config lists nothing: what the cluster speaks.
  std::vector<std::string> alpn;
  if (proto.protocol() == config::v1::Cluster::HTTP2) {
    alpn = {"h2"};
  } else if (proto.protocol() == config::v1::Cluster::AUTO) {
    alpn = {"h2", "http/1.1"};
  }
  network::TransportSocketContext transport_context{network::TransportSocketSide::kUpstream,
                                                    secrets, &stats, proto.name(), alpn};
  info->transport_socket_factory_ = network::TransportSocketRegistry::Build(
      proto.transport_socket(), transport_context, path + ".transport_socket", errors);
  if (proto.protocol() == config::v1::Cluster::AUTO && info->transport_socket_factory_ &&
      !info->transport_socket_factory_->ImplementsSecureTransport()) {
    errors.Add(path + ".protocol",
               "AUTO picks HTTP/2 or HTTP/1.1 by ALPN in the TLS handshake: give the cluster a "
               "TLS transport_socket, or say HTTP1 or HTTP2");
  }
  info->http2_options_ = http::Http2OptionsFromProto(proto.http2_protocol_options(), 1024 * 1024,
                                                     path + ".http2_protocol_options", errors);
  if (proto.has_http2_protocol_options() && proto.protocol() == config::v1::Cluster::HTTP1) {
    errors.Add(path + ".http2_protocol_options", "the cluster speaks HTTP/1.1 (protocol: HTTP1)");
  }
  if (errors.errors().size() != errors_before) return nullptr;
  info->stats_ = std::make_unique<ClusterStats>(stats, proto.name());
  info->UpdateHosts(std::move(hosts));
  info->breakers_ =
      std::make_unique<CircuitBreakers>(proto.circuit_breakers(), stats, proto.name());
  return info;
}

void ReportOutcome(const ClusterInfo& cluster, Host& host, int status, bool gateway_failure,
                   TimeSource& time_source) {
  const auto& proto = cluster.proto().outlier_detection();
  if (!cluster.proto().has_outlier_detection()) return;
  bool is_5xx = gateway_failure || status >= 500;
  bool is_gateway = gateway_failure || status == 502 || status == 503 || status == 504;
  host.interval_requests.fetch_add(1, std::memory_order_relaxed);
  if (!is_5xx) host.interval_successes.fetch_add(1, std::memory_order_relaxed);
  if (!is_5xx && host.times_ejected.load(std::memory_order_relaxed) > 0 &&
      !host.Ejected(time_source.MonotonicMs())) {
    // A host that serves again earns back shorter ejections (Envoy decays the multiplier).
    uint32_t times = host.times_ejected.load(std::memory_order_relaxed);
    if (times > 0) host.times_ejected.compare_exchange_strong(times, times - 1);
  }
  uint32_t five =
      is_5xx ? host.consecutive_5xx.fetch_add(1) + 1 : (host.consecutive_5xx.store(0), 0u);
  uint32_t gateway = is_gateway ? host.consecutive_gateway_failures.fetch_add(1) + 1
                                : (host.consecutive_gateway_failures.store(0), 0u);
  uint32_t max_5xx = proto.has_consecutive_5xx() ? proto.consecutive_5xx() : 5;
  uint32_t max_gateway =
      proto.has_consecutive_gateway_failure() ? proto.consecutive_gateway_failure() : 5;
  bool eject = (max_5xx != 0 && five >= max_5xx) || (max_gateway != 0 && gateway >= max_gateway);
  if (!eject) return;
  uint64_t now = time_source.MonotonicMs();
  if (!host.Ejected(now)) Eject(cluster, host, now);
}

bool Eject(const ClusterInfo& cluster, Host& host, uint64_t now) {
  const auto& proto = cluster.proto().outlier_detection();
  // Never eject more than max_ejection_percent of the hosts (at least one may go).
  uint32_t max_percent = proto.has_max_ejection_percent() ? proto.max_ejection_percent() : 10;
  size_t ejected = 0;
  HostVectorConstSharedPtr hosts = cluster.hosts();
  for (const auto& h : *hosts) ejected += h->Ejected(now);
  size_t allowed = std::max<size_t>(1, hosts->size() * max_percent / 100);
  if (max_percent == 0 || ejected >= allowed) return false;
  uint64_t base_ms =
      proto.has_base_ejection_time() ? ToMilliseconds(proto.base_ejection_time()).count() : 30000;
  uint32_t times = host.times_ejected.fetch_add(1) + 1;
  host.ejected_until_ms.store(now + base_ms * times);
  host.consecutive_5xx.store(0);
  host.consecutive_gateway_failures.store(0);
  cluster.stats().outlier_detection.ejections_total.Inc();
  return true;
}

LoadBalancer::LoadBalancer(const ClusterInfo& cluster, TimeSource& time_source)
    : cluster_(cluster), time_source_(time_source), random_(std::random_device{}()) {
  Refresh();
  // Workers start at different offsets so round robin spreads across them too.
  next_ = random_();
}

void LoadBalancer::Refresh() {
  // The generation first: hosts replaced after this reading are noticed on the next pick.
  generation_ = cluster_.host_set().generation();
  hosts_ = cluster_.hosts();
  priorities_.clear();
  for (const auto& host : *hosts_) {
    if (priorities_.size() <= host->priority()) priorities_.resize(host->priority() + 1);
    priorities_[host->priority()].push_back(host.get());
  }
  // Levels with no hosts take no traffic.
  std::erase_if(priorities_, [](const std::vector<Host*>& level) { return level.empty(); });
  load_.resize(priorities_.size());
}

Host* LoadBalancer::PickFrom(const std::vector<Host*>& hosts) {
  if (hosts.empty()) return nullptr;
  switch (cluster_.proto().lb_policy()) {
    case config::v1::Cluster::RANDOM:
      return hosts[random_() % hosts.size()];
    case config::v1::Cluster::LEAST_REQUEST: {
      if (hosts.size() == 1) return hosts[0];
      // Power of two choices: two distinct random hosts, fewer active requests wins.
      size_t a = random_() % hosts.size();
      size_t b = (a + 1 + random_() % (hosts.size() - 1)) % hosts.size();
      return hosts[a]->rq_active.load(std::memory_order_relaxed) <=
                     hosts[b]->rq_active.load(std::memory_order_relaxed)
                 ? hosts[a]
                 : hosts[b];
    }
    default:
      return hosts[next_++ % hosts.size()];
  }
}

Host* LoadBalancer::Choose() {
  if (cluster_.host_set().generation() != generation_) Refresh();
  if (priorities_.empty()) return nullptr;
  uint64_t now = time_source_.MonotonicMs();
  if (priorities_.size() == 1) {
    // One level (the common case): its available hosts, or all of them under the panic
    // threshold; no level to draw.
    const std::vector<Host*>& level = priorities_[0];
    size_t healthy = 0;
    for (const Host* host : level) healthy += host->Available(now);
    if (healthy == level.size()) return PickFrom(level);
    uint32_t health = std::min<uint32_t>(100, 140 * healthy / level.size());
    if (health < cluster_.healthy_panic_threshold()) return PickFrom(level);
    scratch_.clear();
    for (Host* host : level) {
      if (host->Available(now)) scratch_.push_back(host);
    }
    return PickFrom(scratch_);
  }
  // Envoy's priority load with an overprovisioning factor of 1.4.
  std::vector<uint32_t>& load = load_;  // Sized once: no allocation per request.
  uint32_t remaining = 100;
  uint32_t total_health = 0;
  for (size_t p = 0; p < priorities_.size(); ++p) {
    size_t healthy = 0;
    for (const Host* host : priorities_[p]) healthy += host->Available(now);
    uint32_t health = std::min<uint32_t>(100, 140 * healthy / priorities_[p].size());
    total_health = std::min<uint32_t>(100, total_health + health);
    load[p] = std::min(health, remaining);
    remaining -= load[p];
  }
  if (total_health < cluster_.healthy_panic_threshold()) {
    return PickFrom(priorities_[0]);  // Panic: better a sick host than none.
  }
  // Normalize to the healthy share, then pick a level.
  uint32_t point = random_() % std::max<uint32_t>(1, 100 - remaining);
  size_t level = 0;
  for (; level + 1 < load.size() && point >= load[level]; ++level) point -= load[level];
  scratch_.clear();
  for (Host* host : priorities_[level]) {
    if (host->Available(now)) scratch_.push_back(host);
  }
  return PickFrom(scratch_);
}

}  // namespace phoenix::upstream
