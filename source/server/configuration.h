#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/server/filter_chain_manager.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::server {

// Listening sockets for one listener address: one SO_REUSEPORT socket per worker, bound on
// the main thread so a bad address rejects the config instead of failing in a worker.
struct ListenerSockets {
  std::string address;
  std::vector<int> fds;  // fds[i] belongs to worker i, which takes ownership.
};

struct ListenerConfig {
  std::string name;
  std::string address;  // "127.0.0.1:8080"
  sockaddr_storage sockaddr;
  std::shared_ptr<const FilterChainManager> filter_chains;
  std::shared_ptr<ListenerSockets> sockets;  // Set by the server before publishing.
};

// One immutable, validated, versioned configuration. Built on the main thread, published to
// every worker; a reload builds a new one and never edits an old one.
struct ConfigSnapshot {
  uint64_t version = 0;
  config::v1::Bootstrap bootstrap;
  std::vector<ListenerConfig> listeners;
  upstream::ClusterMap clusters;
  sockaddr_storage admin_address;
  std::chrono::milliseconds drain_timeout{10000};
};

// Reads and parses the YAML file; errors name file:line:column.
absl::StatusOr<config::v1::Bootstrap> LoadBootstrapFile(const std::string& path,
                                                        config::SourceMap* source_map);

// Validates `bootstrap` and compiles it. Clusters identical to one in `previous` reuse its
// ClusterInfo (hosts keep counters, workers keep pools). `source_map` may be null.
absl::StatusOr<std::shared_ptr<ConfigSnapshot>> BuildSnapshot(
    const config::v1::Bootstrap& bootstrap, const config::SourceMap* source_map, StatsStore& stats,
    const ConfigSnapshot* previous, uint64_t version);

}  // namespace phoenix::server
