#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <vector>

#include "source/common/dispatcher.h"
#include "source/network/dns_resolver.h"
#include "source/upstream/cluster.h"

namespace phoenix::upstream {

// Keeps the hosts of a STRICT_DNS or LOGICAL_DNS cluster in line with what its names resolve
// to, on the main thread's loop: each endpoint's name is resolved at once and then every
// dns_refresh_rate. STRICT_DNS: every address of every name is a host (MergeHosts). LOGICAL_DNS:
// one host, whose address for new connections is the name's first. A failed resolution keeps
// the addresses of the name's last good one and counts update_failure. Workers see new hosts
// through the cluster's HostSet; `on_hosts_changed` (e.g. the health checker) hears of them
// on this loop.
class DnsCluster {
 public:
  // `previous`, if given, is the cluster this one replaces in a reload: with the same names
  // it starts with their addresses rather than none, so requests go on while it resolves.
  DnsCluster(Dispatcher& dispatcher, network::DnsResolver& resolver,
             std::shared_ptr<const ClusterInfo> cluster, std::function<void()> on_hosts_changed,
             const ClusterInfo* previous = nullptr);
  ~DnsCluster();

 private:
  class Target;

  // A target's addresses changed: recompute the cluster's hosts.
  void Update();
  void SeedFrom(const ClusterInfo& previous);

  Dispatcher& dispatcher_;
  network::DnsResolver& resolver_;
  std::shared_ptr<const ClusterInfo> cluster_;
  std::function<void()> on_hosts_changed_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace phoenix::upstream
