#include "source/config/supervisor_config.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "source/common/duration.h"
#include "source/config/log_rotation.h"

namespace phoenix::config {
namespace {

bool IsStatName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// A duration field: its value when set (it must then be positive), else `fallback`.
std::chrono::milliseconds Positive(bool has, const google::protobuf::Duration& duration,
                                   std::chrono::milliseconds fallback, const std::string& path,
                                   ConfigErrors& errors) {
  if (!has) return fallback;
  std::chrono::milliseconds value = ToMilliseconds(duration);
  if (value.count() <= 0) errors.Add(path, "must be positive");
  return value;
}

AppConfig BuildApp(const v1::App& proto, const std::string& path, ConfigErrors& errors) {
  AppConfig app;
  app.name = proto.name();
  if (!IsStatName(proto.name())) {
    errors.Add(path + ".name", "an app needs a name of letters, digits, '_' and '-'");
  }
  app.command = proto.command();
  if (proto.command().empty()) errors.Add(path + ".command", "an app needs a command");
  app.args.assign(proto.args().begin(), proto.args().end());
  std::map<std::string, std::string> env(proto.env().begin(), proto.env().end());
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      errors.Add(absl::StrCat(path, ".env.", name), "not a variable name");
    } else if (name == "PORT") {
      errors.Add(path + ".env.PORT", "PORT is the instance's port, set by the supervisor");
    }
  }
  app.env.assign(env.begin(), env.end());
  app.working_directory = proto.working_directory();
  app.min_instances = proto.min_instances() == 0 ? 1 : proto.min_instances();
  app.max_instances = proto.max_instances() == 0 ? app.min_instances : proto.max_instances();
  if (app.max_instances < app.min_instances) {
    errors.Add(path + ".max_instances",
               absl::StrCat("must be at least min_instances (", app.min_instances, ")"));
  }
  app.autoscaling = proto.has_autoscaling();
  if (!app.autoscaling && app.max_instances > app.min_instances) {
    errors.Add(path + ".max_instances",
               "more than min_instances needs autoscaling (say when to add instances)");
  }
  const auto& ports = proto.port_range();
  app.port_start = ports.start();
  app.port_end = ports.end();
  if (!proto.has_port_range()) {
    errors.Add(path + ".port_range", "an app needs a port range for its instances' PORT");
  } else if (ports.start() == 0 || ports.end() > 65535 || ports.end() < ports.start()) {
    errors.Add(path + ".port_range", absl::StrCat("ports ", ports.start(), "-", ports.end(),
                                                  ": use 1-65535, start at most end"));
  } else if (ports.end() - ports.start() + 1 < app.max_instances) {
    errors.Add(path + ".port_range",
               absl::StrCat(ports.end() - ports.start() + 1, " port(s) for up to ",
                            app.max_instances, " instances: give at least one per instance"));
  }
  const auto& readiness = proto.readiness();
  if (readiness.probe_case() == v1::Readiness::kHttpPath) {
    app.http_path = readiness.http_path();
    if (!app.http_path.starts_with("/")) {
      errors.Add(path + ".readiness.http_path", "a path starts with '/'");
    }
  }
  app.probe_interval = Positive(readiness.has_interval(), readiness.interval(), app.probe_interval,
                                path + ".readiness.interval", errors);
  app.probe_timeout = Positive(readiness.has_timeout(), readiness.timeout(), app.probe_timeout,
                               path + ".readiness.timeout", errors);
  app.startup_timeout = Positive(readiness.has_startup_timeout(), readiness.startup_timeout(),
                                 app.startup_timeout, path + ".readiness.startup_timeout", errors);
  app.cluster = proto.cluster();
  if (proto.cluster().empty()) {
    errors.Add(path + ".cluster", "name the SUPERVISED cluster the instances are endpoints of");
  }
  const auto& back_off = proto.restart_back_off();
  app.restart.initial = Positive(back_off.has_initial(), back_off.initial(), app.restart.initial,
                                 path + ".restart_back_off.initial", errors);
  app.restart.max = Positive(back_off.has_max(), back_off.max(), app.restart.max,
                             path + ".restart_back_off.max", errors);
  if (app.restart.max < app.restart.initial) {
    errors.Add(path + ".restart_back_off.max", "must be at least initial");
  }
  if (proto.crash_loop().max_crashes() != 0) {
    app.restart.crash_loop_crashes = proto.crash_loop().max_crashes();
  }
  app.restart.crash_loop_interval =
      Positive(proto.crash_loop().has_interval(), proto.crash_loop().interval(),
               app.restart.crash_loop_interval, path + ".crash_loop.interval", errors);
  app.stop_grace_period = Positive(proto.has_stop_grace_period(), proto.stop_grace_period(),
                                   app.stop_grace_period, path + ".stop_grace_period", errors);
  app.log_path = proto.log_path();
  app.log_rotation = ToRotationPolicy(proto.log_rotation());
  if (proto.has_log_rotation() && app.log_path.empty()) {
    errors.Add(path + ".log_rotation", "rotates log_path: give one");
  }
  if (app.autoscaling) {
    const auto& scaling = proto.autoscaling();
    std::string spath = path + ".autoscaling";
    if (scaling.target_rps_per_instance() < 0) {
      errors.Add(spath + ".target_rps_per_instance", "must be positive");
    } else if (scaling.target_rps_per_instance() > 0) {
      app.scaling.target_rps_per_instance = scaling.target_rps_per_instance();
    }
    app.scaling.max_in_flight_per_instance = scaling.max_in_flight_per_instance();
    app.scaling.scale_up_window =
        Positive(scaling.has_scale_up_window(), scaling.scale_up_window(),
                 app.scaling.scale_up_window, spath + ".scale_up_window", errors);
    app.scaling.scale_down_window =
        Positive(scaling.has_scale_down_window(), scaling.scale_down_window(),
                 app.scaling.scale_down_window, spath + ".scale_down_window", errors);
    app.scaling.sample_interval =
        Positive(scaling.has_sample_interval(), scaling.sample_interval(),
                 app.scaling.sample_interval, spath + ".sample_interval", errors);
    if (app.scaling.scale_down_window < app.scaling.scale_up_window) {
      errors.Add(spath + ".scale_down_window", "must be at least scale_up_window");
    }
  }
  return app;
}

}  // namespace

std::vector<AppConfig> BuildSupervisorConfig(
    const v1::Supervisor& proto, const upstream::ClusterMap& clusters, bool check_clusters,
    const std::vector<std::pair<std::string, std::string>>& cluster_paths, ConfigErrors& errors) {
  std::vector<AppConfig> apps;
  std::set<std::string> names;
  std::map<std::string, std::string> fed;  // cluster -> app
  for (int i = 0; i < proto.apps_size(); ++i) {
    std::string path = absl::StrCat("supervisor.apps[", i, "]");
    AppConfig app = BuildApp(proto.apps(i), path, errors);
    if (!app.name.empty() && !names.insert(app.name).second) {
      errors.Add(path + ".name", absl::StrCat("duplicate app name '", app.name, "'"));
    }
    if (!app.cluster.empty()) {
      if (auto [it, inserted] = fed.emplace(app.cluster, app.name); !inserted) {
        errors.Add(path + ".cluster", absl::StrCat("cluster '", app.cluster,
                                                   "' is already fed by app '", it->second, "'"));
      }
      auto cluster = clusters.find(app.cluster);
      if (cluster != clusters.end() && cluster->second->type() != v1::Cluster::SUPERVISED) {
        errors.Add(path + ".cluster",
                   absl::StrCat("cluster '", app.cluster, "' must be of type SUPERVISED"));
      } else if (cluster == clusters.end() && check_clusters &&
                 std::none_of(cluster_paths.begin(), cluster_paths.end(),
                              [&](const auto& c) { return c.first == app.cluster; })) {
        // (A cluster that is there but invalid has its own error.)
        std::vector<std::string> candidates;
        for (const auto& [name, info] : clusters) candidates.push_back(name);
        std::string near = NearestName(app.cluster, candidates);
        errors.Add(path + ".cluster",
                   absl::StrCat("unknown cluster '", app.cluster, "'",
                                near.empty() ? "" : absl::StrCat("; did you mean '", near, "'?")));
      }
    }
    apps.push_back(std::move(app));
  }
  if (check_clusters) {
    for (const auto& [name, cluster_path] : cluster_paths) {
      auto cluster = clusters.find(name);
      if (cluster != clusters.end() && cluster->second->type() == v1::Cluster::SUPERVISED &&
          !fed.contains(name)) {
        errors.Add(cluster_path + ".type",
                   absl::StrCat("no supervisor app names the SUPERVISED cluster '", name, "'"));
      }
    }
  }
  return apps;
}

}  // namespace phoenix::config
