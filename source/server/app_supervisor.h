#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "source/common/dispatcher.h"
#include "source/common/rotating_file.h"
#include "source/common/stats.h"
#include "source/config/supervisor_config.h"
#include "source/server/autoscaler.h"
#include "source/server/child_process.h"
#include "source/server/readiness_probe.h"
#include "source/server/restart_policy.h"
#include "source/upstream/cluster.h"

namespace phoenix::server {

// supervisor.<app>.<stat>, labelled app=<app>.
#define PHX_APP_STATS(COUNTER, GAUGE, HISTOGRAM)                                           \
  GAUGE(instances_starting, "Instances started and not ready yet (no traffic)")            \
  GAUGE(instances_ready, "Instances ready: endpoints of the app's cluster")                \
  GAUGE(instances_draining, "Instances leaving: draining their requests, or stopping")     \
  GAUGE(instances_waiting_restart, "Crashed instances waiting out their restart back-off") \
  GAUGE(in_crash_loop, "1 while the app is in a crash loop (restarts wait the maximum)")   \
  COUNTER(starts, "Instances started (first starts, restarts and scale-ups)")              \
  COUNTER(crashes, "Instances that exited or were killed without being asked to stop")     \
  COUNTER(restarts, "Crashed instances started again")                                     \
  COUNTER(crash_loops, "Crash loops detected")                                             \
  COUNTER(scale_up, "Instances added by the autoscaler")                                   \
  COUNTER(scale_down, "Instances removed by the autoscaler")
struct AppStats {
  PHX_STATS(AppStats, PHX_APP_STATS);
};

// Runs one supervised app on the main loop: starts min_instances instances, probes each until
// ready and only then makes it an endpoint of the app's cluster, restarts crashed ones after
// the RestartPolicy's back-off, adds and drains instances as its Autoscaler decides, and stops
// them (SIGTERM, SIGKILL after the grace period) when phoenix drains.
class AppSupervisor {
 public:
  // `log` takes the instances' output; null: phoenix's stderr.
  AppSupervisor(Dispatcher& dispatcher, StatsStore& stats, config::AppConfig config,
                std::unique_ptr<RotatingFile> log);
  ~AppSupervisor();

  const config::AppConfig& config() const { return config_; }
  // The cluster (of the snapshot in force) whose hosts the ready instances are; given again
  // when a reload replaces it.
  void SetCluster(std::shared_ptr<const upstream::ClusterInfo> cluster);
  // Starts min_instances instances and the autoscaler.
  void Start();
  // Stops every instance: each leaves the cluster, gets SIGTERM, and SIGKILL after the grace
  // period. `done` runs once none is left (at once if none runs).
  void StopAll(std::function<void()> done);
  // SIGKILLs every instance now (phoenix is exiting without waiting).
  void KillAll();
  // Appends the pids of the instances running now.
  void AddPids(std::vector<pid_t>& pids) const;
  // This app and its instances, as a JSON object (for /apps).
  std::string Json() const;

 private:
  enum class State { kStarting, kReady, kDraining, kStopping, kWaitingRestart };
  struct Instance {
    uint32_t id = 0;
    uint32_t port = 0;
    State state = State::kStarting;
    std::unique_ptr<ChildProcess> process;
    std::unique_ptr<ReadinessProbe> probe;
    std::unique_ptr<Timer> timer;  // Next probe, restart, drain check or SIGKILL.
    upstream::HostSharedPtr host;  // The instance as an endpoint (ready and draining).
    MonotonicTime started{};
    MonotonicTime state_since{};
    uint32_t restarts = 0;
    // The back-off over this instance's own crashes (made at its first).
    std::unique_ptr<RestartPolicy> back_off;
    bool startup_timed_out = false;
  };
  static const char* StateName(State state);

  void SpawnInstance(Instance& instance);
  // The instances' output, to the app's log.
  void WriteLog(std::string_view data);
  void Probe(Instance& instance);
  void OnExit(Instance& instance, int64_t exit_status, int term_signal);
  // Leaves the cluster and waits for its requests in flight (scale down).
  void Drain(Instance& instance);
  // SIGTERM now, SIGKILL after the grace period; the slot goes when it exits.
  void Stop(Instance& instance);
  void Remove(Instance& instance);
  void SetState(Instance& instance, State state);
  void RefreshGauges();
  // Gives the cluster the hosts of the ready instances.
  void PublishHosts();
  void Sample();
  uint32_t FreePort() const;
  uint32_t Count(State state) const;
  uint64_t NowMs() { return dispatcher_.time_source().MonotonicMs(); }
  void MaybeDone();

  Dispatcher& dispatcher_;
  const config::AppConfig config_;
  std::unique_ptr<RotatingFile> log_;
  AppStats stats_;
  RestartPolicy restart_policy_;
  Autoscaler autoscaler_;
  std::shared_ptr<const upstream::ClusterInfo> cluster_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::unique_ptr<Timer> sample_timer_;
  uint32_t next_id_ = 1;
  bool stopping_ = false;
  std::function<void()> on_stopped_;
};

}  // namespace phoenix::server
