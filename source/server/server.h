#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "source/common/dispatcher.h"
#include "source/common/logging.h"
#include "source/common/stats.h"
#include "source/config/config_source.h"
#include "source/config/snapshot.h"
#include "source/config/snapshot_builder.h"
#include "source/network/dns_resolver.h"
#include "source/server/admin.h"
#include "source/server/certificate_watcher.h"
#include "source/server/cluster_warmer.h"
#include "source/server/overload_manager.h"
#include "source/server/supervisor.h"
#include "source/server/webhook_notifier.h"
#include "source/server/worker.h"
#include "source/server/workload_identity.h"
#include "source/upstream/dns_cluster.h"
#include "source/upstream/health_checker.h"
#include "source/upstream/success_rate_ejector.h"

namespace phoenix::server {

struct Options {
  std::string config_path;
  std::string mode = "serve";  // serve | validate
  int concurrency = 0;         // 0: one worker per core
  LogLevel log_level = LogLevel::kInfo;
};

// server.<stat>: registered at startup, so that each reads 0 before its first event.
#define PHX_SERVER_STATS(COUNTER, GAUGE, HISTOGRAM)                                          \
  COUNTER(config_reload_success, "Config changes applied")                                   \
  COUNTER(config_reload_failure, "Config changes refused; the config in force stayed")       \
  COUNTER(certificate_rotation_success, "Certificate rotations applied")                     \
  COUNTER(certificate_rotation_failure, "Certificate rotations refused; the old one stayed") \
  GAUGE(config_version, "Version of the config in force")                                    \
  GAUGE(concurrency, "Worker threads")                                                       \
  GAUGE(live, "1 while the server serves, 0 once it drains")
struct ServerStats {
  PHX_STATS(ServerStats, PHX_SERVER_STATS);
};

// The process: owns the main loop (config, admin, signals), the stats store and the
// workers. It subscribes to a config::ConfigSource (the YAML file today; SIGHUP and
// POST /reload ask it again) through a config::SnapshotBuilder, and publishes each snapshot
// built: binds its listeners' sockets and posts it to every worker. A snapshot that cannot be
// built or bound is NACKed and the current one stays in force.
class Server {
 public:
  explicit Server(Options options);
  ~Server();

  // Serves until SIGTERM/SIGINT and the drain complete. Returns the exit code.
  int Run();

 private:
  // Makes `snapshot` the one in force (the SnapshotBuilder's publisher).
  absl::Status Publish(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Says in the log which listeners a new snapshot adds, moves or removes (operator-visible).
  static void LogListenerChanges(const config::ConfigSnapshot& before,
                                 const config::ConfigSnapshot& after);
  // The sockets of each of `snapshot`'s listeners, in order: kept by address across snapshots.
  absl::StatusOr<ListenerSocketsList> BindListeners(const config::ConfigSnapshot& snapshot);
  // Rebuilds the config in force so that changed certificate files take effect (`trigger`
  // says why, for the log); a bad new certificate keeps the old one.
  absl::Status RotateCertificates(std::string_view trigger);
  // Starts the ADS stream when the bootstrap has dynamic_resources (once).
  void StartAdsSource();
  void InstallAdminHandlers();
  void InstallSignals();
  void StartDrain();
  // Once the workers have drained: stops the supervised apps' instances (gracefully), then
  // Shutdown().
  void StopAppsThenShutdown();
  void Shutdown();
  std::string ServerInfoJson();
  AdminResponse ExplainPolicy(std::string_view query);
  // `query`: include_defaults (every field, set or not), pretty (indented).
  std::string ConfigDumpJson(std::string_view query);
  std::string ClustersText();
  // Keeps a DnsCluster for each STRICT_DNS / LOGICAL_DNS cluster of current_; `previous` is
  // the snapshot it replaces (null at first).
  void UpdateDnsClusters(const config::ConfigSnapshot* previous);
  // Sets each EDS cluster's hosts from its ClusterLoadAssignment in the snapshot in force;
  // hosts that stay keep their Host (counters, health); health checks follow.
  void ApplyEndpointAssignments(const config::ConfigSnapshot* previous);
  // Watches the resources `config` names (keeping the CPU baselines of those watched already),
  // and reads them every refresh interval while any is watched.
  void ApplyOverloadConfig(const config::OverloadConfig& config);
  // The processes of the supervised apps' instances (the overload manager's app_cpu).
  std::vector<pid_t> AppInstancePids();

  Options options_;
  RealTimeSource time_source_;                    // For the main thread and every worker.
  std::unique_ptr<config::ConfigSource> source_;  // The bootstrap file.
  // With dynamic_resources in the bootstrap: the control plane's stream.
  std::unique_ptr<config::ConfigSource> ads_source_;
  std::unique_ptr<WorkloadIdentity> workload_identity_;  // With bootstrap workload_identity.
  Dispatcher dispatcher_;
  StatsStore stats_;
  ServerStats server_stats_{StatsScope(stats_, "server.")};
  config::SnapshotBuilder snapshot_builder_;
  AdminServer admin_;
  WebhookNotifier overload_notifier_;
  // Declared before the workers, which read its shedding flag until they are joined.
  OverloadManager overload_manager_{stats_, &overload_notifier_};
  std::unique_ptr<Timer> overload_timer_;
  std::chrono::milliseconds overload_interval_{1000};
  CertificateWatcher certificate_watcher_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<const config::ConfigSnapshot> current_;
  std::map<std::string, std::shared_ptr<ListenerSockets>> sockets_;  // by address
  // Resolves the names of STRICT_DNS and LOGICAL_DNS clusters on the main loop (libuv's
  // thread pool does the blocking getaddrinfo).
  std::unique_ptr<network::DnsResolver> dns_resolver_;
  // One per DNS cluster; kept while its ClusterInfo is.
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::DnsCluster>> dns_clusters_;
  // Active health checks, one per cluster that has them; kept while its ClusterInfo is.
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::HealthChecker>> health_checkers_;
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::SuccessRateEjector>>
      success_rate_ejectors_;
  // Holds a control plane's snapshot back from the workers until its new clusters are warm.
  ClusterWarmer cluster_warmer_{dispatcher_, std::chrono::seconds(5)};
  // The bootstrap's supervisor section at work (null without one); made at startup.
  std::unique_ptr<Supervisor> supervisor_;
  bool stopping_apps_ = false;
  uint64_t start_ms_ = 0;
  bool draining_ = false;
  bool health_failed_ = false;
  bool stopped_ = false;
  std::vector<uv_signal_t*> signals_;
  std::unique_ptr<Timer> drain_poll_timer_;
  uint64_t drain_deadline_ms_ = 0;  // On time_source_'s monotonic clock.
};

}  // namespace phoenix::server
