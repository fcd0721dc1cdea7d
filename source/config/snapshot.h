#pragma once

#include <sys/socket.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/config/filter_chain_manager.h"
#include "source/config/overload_config.h"
#include "source/config/supervisor_config.h"
#include "source/router/route_table.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::config {

// One listener of a snapshot, compiled. Its sockets are the server's business, not the
// config's: the server binds them by address when it publishes the snapshot.
struct ListenerConfig {
  std::string name;
  std::string address;  // "127.0.0.1:8080"
  sockaddr_storage sockaddr;
  std::shared_ptr<const FilterChainManager> filter_chains;
};

// Named route configurations (static_resources.route_configurations, or RouteConfiguration
// resources), shared by every listener that names one.
using RouteConfigMap = std::map<std::string, std::shared_ptr<const router::RouteTable>>;

// One immutable, validated, versioned configuration. Built on the main thread, published to
// every worker; a reload builds a new one and never edits an old one.
struct ConfigSnapshot {
  uint64_t version = 0;
  v1::Bootstrap bootstrap;
  std::vector<ListenerConfig> listeners;
  RouteConfigMap route_configs;
  upstream::ClusterMap clusters;
  // The endpoints of EDS clusters, by ClusterLoadAssignment cluster_name; the server sets them
  // as those clusters' hosts when it publishes the snapshot.
  std::map<std::string, std::vector<upstream::ResolvedHost>> endpoint_assignments;
  sockaddr_storage admin_address;
  std::chrono::milliseconds drain_timeout{10000};
  OverloadConfig overload;
  // What applying it should tell the operator (a listener whose routes have not arrived);
  // the server logs them when it publishes the snapshot, a validator may ignore them.
  std::vector<std::string> warnings;
  // The bootstrap's supervisor section: local apps feeding SUPERVISED clusters.
  std::vector<AppConfig> apps;
};

// How references between resources are checked. A static source (a file) delivers every
// resource together, so a name that resolves to nothing is a typo and fails validation. A
// dynamic one (xDS) delivers them independently, so the resource may simply not have arrived
// yet: a route to a missing cluster answers 503 with flag NC, a listener whose route
// configuration is missing answers 404 (NR), until it arrives.
enum class SourceKind { kStatic, kDynamic };

// Reads and parses the YAML file; errors name file:line:column.
absl::StatusOr<v1::Bootstrap> LoadBootstrapFile(const std::string& path, SourceMap* source_map);

// Validates `bootstrap` and compiles it. Clusters identical to one in `previous` reuse its
// ClusterInfo (hosts keep counters, workers keep pools). `source_map` may be null. `kind`
// says how references are checked (see SourceKind). HTTP
// filters and transport sockets are found by name in their registries, so whoever builds a
// snapshot registers them first (server::RegisterBuiltinFilters and
// server::RegisterBuiltinTransportSockets).
absl::StatusOr<std::shared_ptr<ConfigSnapshot>> BuildSnapshot(const v1::Bootstrap& bootstrap,
                                                              const SourceMap* source_map,
                                                              StatsStore& stats,
                                                              const ConfigSnapshot* previous,
                                                              uint64_t version, SourceKind kind);

}  // namespace phoenix::config
