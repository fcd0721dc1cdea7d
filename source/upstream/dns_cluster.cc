#include "source/upstream/dns_cluster.h"

#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/logging.h"
#include "source/network/tcp_connection.h"

namespace phoenix::upstream {
namespace {

void SetPort(sockaddr_storage& address, uint32_t port) {
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(port);
  } else if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(port);
  }
}

std::string Format(const sockaddr_storage& address) {
  return network::FormatAddress(reinterpret_cast<const sockaddr*>(&address));
}

}  // namespace

// One endpoint's name: resolved now and then every dns_refresh_rate, keeping the addresses
// of its last good resolution.
class DnsCluster::Target {
 public:
  Target(DnsCluster& parent, const ClusterInfo::DnsTarget& target)
      : parent_(parent),
        target_(target),
        timer_(parent.dispatcher_.CreateTimer([this] { Resolve(); })) {
    Resolve();
  }

  const ClusterInfo::DnsTarget& target() const { return target_; }
  const std::vector<sockaddr_storage>& addresses() const { return addresses_; }

 private:
  void Resolve() {
    const ClusterInfo& cluster = *parent_.cluster_;
    cluster.stats().update_attempt.Inc();
    query_ =
        parent_.resolver_.Resolve(target_.name, cluster.dns_lookup_family(),
                                  [this](absl::StatusOr<std::vector<sockaddr_storage>> result) {
                                    OnResolved(std::move(result));
                                  });
  }

  void OnResolved(absl::StatusOr<std::vector<sockaddr_storage>> result) {
    query_.reset();
    if (result.ok() && result->empty()) result = absl::NotFoundError("no address");
    const ClusterInfo& cluster = *parent_.cluster_;
    timer_->Enable(cluster.dns_refresh_rate());
    if (!result.ok()) {
      cluster.stats().update_failure.Inc();
      PHX_LOG(kWarn, "cluster ", cluster.name(), ": cannot resolve '", target_.name,
              "': ", result.status().message(), "; keeping its ", addresses_.size(),
              " address(es) of the last good resolution");
      return;
    }
    cluster.stats().update_success.Inc();
    for (sockaddr_storage& address : *result) SetPort(address, target_.port);
    addresses_ = std::move(*result);
    parent_.Update();
  }

  DnsCluster& parent_;
  const ClusterInfo::DnsTarget target_;
  std::vector<sockaddr_storage> addresses_;  // Of the last good resolution (port set).
  std::unique_ptr<network::DnsQuery> query_;
  std::unique_ptr<Timer> timer_;
};

DnsCluster::DnsCluster(Dispatcher& dispatcher, network::DnsResolver& resolver,
                       std::shared_ptr<const ClusterInfo> cluster,
                       std::function<void()> on_hosts_changed, const ClusterInfo* previous)
    : dispatcher_(dispatcher),
      resolver_(resolver),
      cluster_(std::move(cluster)),
      on_hosts_changed_(std::move(on_hosts_changed)) {
  if (previous != nullptr) SeedFrom(*previous);
  for (const auto& target : cluster_->dns_targets()) {
    targets_.push_back(std::make_unique<Target>(*this, target));
  }
}

DnsCluster::~DnsCluster() = default;

void DnsCluster::SeedFrom(const ClusterInfo& previous) {
  auto same_target = [](const ClusterInfo::DnsTarget& a, const ClusterInfo::DnsTarget& b) {
    return a.name == b.name && a.port == b.port && a.priority == b.priority;
  };
  const auto& before = previous.dns_targets();
  const auto& now = cluster_->dns_targets();
  if (previous.type() != cluster_->type() ||
      previous.dns_lookup_family() != cluster_->dns_lookup_family() ||
      !std::equal(before.begin(), before.end(), now.begin(), now.end(), same_target)) {
    return;
  }
  HostVector hosts;
  for (const auto& host : *previous.hosts()) {
    if (cluster_->type() == config::v1::Cluster::LOGICAL_DNS) {
      hosts.push_back(
          Host::Logical(host->address().storage, host->address_string(), host->priority()));
    } else {
      hosts.push_back(std::make_shared<Host>(host->address().storage, host->address_string(),
                                             host->priority()));
    }
  }
  cluster_->UpdateHosts(std::move(hosts));
}

void DnsCluster::Update() {
  HostVectorConstSharedPtr current = cluster_->hosts();
  if (cluster_->type() == config::v1::Cluster::LOGICAL_DNS) {
    const Target& only = *targets_.front();
    const sockaddr_storage& first = only.addresses().front();
    if (current->empty()) {
      cluster_->UpdateHosts(
          {Host::Logical(first, absl::StrCat(only.target().name, ":", only.target().port),
                         only.target().priority)});
      PHX_LOG(kInfo, "cluster ", cluster_->name(), ": ", only.target().name, " is at ",
              Format(first));
      if (on_hosts_changed_ != nullptr) on_hosts_changed_();
      return;
    }
    Host& host = *current->front();
    if (Format(host.address().storage) != Format(first)) {
      PHX_LOG(kInfo, "cluster ", cluster_->name(), ": ", only.target().name, " moved to ",
              Format(first), "; new connections go there");
      host.set_address(first);
    }
    return;
  }
  std::vector<ResolvedHost> resolved;
  for (const auto& target : targets_) {
    for (const sockaddr_storage& address : target->addresses()) {
      resolved.push_back({address, target->target().priority});
    }
  }
  bool changed = false;
  HostVector next = MergeHosts(*current, resolved, &changed);
  if (!changed) return;
  std::vector<std::string> names;
  for (const auto& host : next) names.push_back(host->address_string());
  PHX_LOG(kInfo, "cluster ", cluster_->name(), ": hosts now ", absl::StrJoin(names, ", "));
  cluster_->UpdateHosts(std::move(next));
  if (on_hosts_changed_ != nullptr) on_hosts_changed_();
}

}  // namespace phoenix::upstream
