#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "phoenix/config/v1/supervisor.pb.h"
#include "source/common/config_errors.h"
#include "source/common/rotating_file.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::config {

// When an app's autoscaler adds or removes an instance (config Autoscaling, defaults applied).
struct AutoscalingConfig {
  double target_rps_per_instance = 10;
  uint32_t max_in_flight_per_instance = 0;  // 0: no limit.
  std::chrono::milliseconds scale_up_window{10000};
  std::chrono::milliseconds scale_down_window{60000};
  std::chrono::milliseconds sample_interval{1000};
};

// How a crashed instance is restarted (config RestartBackOff and CrashLoop, defaults applied).
struct RestartConfig {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{30000};
  uint32_t crash_loop_crashes = 5;
  std::chrono::milliseconds crash_loop_interval{60000};
};

// One supervised app, validated, with every default applied: what server::Supervisor runs.
struct AppConfig {
  std::string name;
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // Sorted by name.
  std::string working_directory;
  uint32_t port_start = 0;
  uint32_t port_end = 0;  // Included.
  uint32_t min_instances = 1;
  uint32_t max_instances = 1;
  std::string http_path;  // Readiness by GET of this path; empty: by TCP connect.
  std::chrono::milliseconds probe_interval{200};
  std::chrono::milliseconds probe_timeout{1000};
  std::chrono::milliseconds startup_timeout{30000};
  std::string cluster;
  RestartConfig restart;
  std::chrono::milliseconds stop_grace_period{10000};
  std::string log_path;  // Empty: phoenix's stderr.
  RotationPolicy log_rotation;
  bool autoscaling = false;
  AutoscalingConfig scaling;
};

// Validates the bootstrap's `supervisor` section and applies its defaults. Errors go to
// `errors` under supervisor.apps[i].<field>. With `check_clusters` (a static config, where every
// cluster is known), each app must name a SUPERVISED cluster of `clusters`, and every SUPERVISED
// cluster must be fed by an app; `cluster_paths` (name -> field path) places that error.
std::vector<AppConfig> BuildSupervisorConfig(
    const v1::Supervisor& proto, const upstream::ClusterMap& clusters, bool check_clusters,
    const std::vector<std::pair<std::string, std::string>>& cluster_paths, ConfigErrors& errors);

}  // namespace phoenix::config
