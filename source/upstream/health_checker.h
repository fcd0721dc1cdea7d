#pragma once

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "source/common/dispatcher.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster.h"

namespace phoenix::upstream {

// Active health checks for one cluster's hosts (HTTP GET or TCP connect), run on the main
// thread's loop. A host that fails `unhealthy_threshold` checks in a row is marked
// failed_active_hc, which every worker's load balancer honours; `healthy_threshold` passes in
// a row bring it back. Hosts start healthy.
class HealthChecker {
 public:
  HealthChecker(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster);
  ~HealthChecker();

  // The cluster's hosts changed (DNS): checks start for new hosts and end for those gone;
  // the others go on as they were.
  void OnHostsChanged();

  // For a cluster new to the workers: probes at once every host not checked yet, lets each
  // host's first result alone decide its health, and posts `on_warm` to the dispatcher once
  // every host has a result (hosts that arrive meanwhile included). A later call replaces
  // `on_warm`.
  void Warm(std::function<void()> on_warm);
  // Whether every host has been checked at least once.
  bool warm() const;

 private:
  class HostCheck;
  void OnFirstResult();

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> cluster_;
  std::vector<std::unique_ptr<HostCheck>> checks_;
  std::function<void()> on_warm_;  // Set while warming.
};

}  // namespace phoenix::upstream
