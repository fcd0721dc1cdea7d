#include "source/server/app_supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "source/common/logging.h"
#include "source/common/strings.h"

extern char** environ;

namespace phoenix::server {
namespace {

constexpr std::chrono::milliseconds kDrainPoll{50};

std::string ExitText(int64_t exit_status, int term_signal) {
  if (term_signal != 0) {
    return absl::StrCat("was killed by signal ", term_signal, " (", strsignal(term_signal), ")");
  }
  return absl::StrCat("exited with status ", exit_status);
}

}  // namespace

AppSupervisor::AppSupervisor(Dispatcher& dispatcher, StatsStore& stats, config::AppConfig config,
                             std::unique_ptr<RotatingFile> log)
    : dispatcher_(dispatcher),
      config_(std::move(config)),
      log_(std::move(log)),
      stats_(StatsScope(stats, "supervisor.").Labelled("app", config_.name)),
      restart_policy_(config_.restart),
      autoscaler_(config_.scaling) {}

AppSupervisor::~AppSupervisor() { KillAll(); }

const char* AppSupervisor::StateName(State state) {
  switch (state) {
    case State::kStarting:
      return "STARTING";
    case State::kReady:
      return "READY";
    case State::kDraining:
      return "DRAINING";
    case State::kStopping:
      return "STOPPING";
    case State::kWaitingRestart:
      return "WAITING_RESTART";
  }
  return "?";
}

void AppSupervisor::SetCluster(std::shared_ptr<const upstream::ClusterInfo> cluster) {
  if (cluster == cluster_) return;
  cluster_ = std::move(cluster);
  PublishHosts();
}

void AppSupervisor::Start() {
  for (uint32_t i = 0; i < config_.min_instances; ++i) {
    auto instance = std::make_unique<Instance>();
    instance->id = next_id_++;
    instance->port = FreePort();
    instances_.push_back(std::move(instance));
    SpawnInstance(*instances_.back());
  }
  if (config_.autoscaling) {
    sample_timer_ = dispatcher_.CreateTimer([this] {
      Sample();
      if (!stopping_) sample_timer_->Enable(config_.scaling.sample_interval);
    });
    sample_timer_->Enable(config_.scaling.sample_interval);
  }
}

uint32_t AppSupervisor::FreePort() const {
  for (uint32_t port = config_.port_start; port <= config_.port_end; ++port) {
    bool used = std::any_of(instances_.begin(), instances_.end(),
                            [port](const auto& i) { return i->port == port; });
    if (!used) return port;
  }
  return 0;  // Validation keeps max_instances within the range.
}

uint32_t AppSupervisor::Count(State state) const {
  return static_cast<uint32_t>(std::count_if(instances_.begin(), instances_.end(),
                                             [state](const auto& i) { return i->state == state; }));
}

void AppSupervisor::SetState(Instance& instance, State state) {
  instance.state = state;
  instance.state_since = dispatcher_.time_source().MonotonicNow();
  RefreshGauges();
}

void AppSupervisor::RefreshGauges() {
  stats_.instances_starting.Set(Count(State::kStarting));
  stats_.instances_ready.Set(Count(State::kReady));
  stats_.instances_draining.Set(Count(State::kDraining) + Count(State::kStopping));
  stats_.instances_waiting_restart.Set(Count(State::kWaitingRestart));
}

void AppSupervisor::SpawnInstance(Instance& instance) {
  ProcessSpec spec;
  spec.command = config_.command;
  spec.args = config_.args;
  spec.working_directory = config_.working_directory;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    // NOTIFY_SOCKET is systemd's line to phoenix (Type=notify), not to the apps.
    bool overridden = entry.starts_with("PORT=") || entry.starts_with("PHOENIX_APP=") ||
                      entry.starts_with("PHOENIX_INSTANCE=") || entry.starts_with("NOTIFY_SOCKET=");
    for (const auto& [name, value] : config_.env) {
      overridden |= entry.starts_with(absl::StrCat(name, "="));
    }
    if (!overridden) spec.env.emplace_back(entry);
  }
  for (const auto& [name, value] : config_.env) spec.env.push_back(absl::StrCat(name, "=", value));
  spec.env.push_back(absl::StrCat("PORT=", instance.port));
  spec.env.push_back(absl::StrCat("PHOENIX_APP=", config_.name));
  spec.env.push_back(absl::StrCat("PHOENIX_INSTANCE=", instance.id));
  stats_.starts.Inc();
  instance.started = dispatcher_.time_source().MonotonicNow();
  instance.startup_timed_out = false;
  SetState(instance, State::kStarting);
  Instance* raw = &instance;
  auto child = ChildProcess::Spawn(
      dispatcher_, spec,
      [this, raw](int64_t exit_status, int term_signal) { OnExit(*raw, exit_status, term_signal); },
      [this](std::string_view data) { WriteLog(data); });
  if (!child.ok()) {
    PHX_LOG(kError, "app ", config_.name, ": instance ", instance.id, ": ",
            child.status().message());
    // As if it had crashed at once: the back-off applies. From the instance's own timer, so
    // never after the instance (or this supervisor) is gone.
    instance.timer = dispatcher_.CreateTimer([this, raw] { OnExit(*raw, 127, 0); });
    instance.timer->Enable(std::chrono::milliseconds(0));
    return;
  }
  instance.process = std::move(*child);
  PHX_LOG(kInfo, "app ", config_.name, ": instance ", instance.id, " started (pid ",
          instance.process->pid(), ", port ", instance.port, ")");
  instance.timer = dispatcher_.CreateTimer([this, raw] { Probe(*raw); });
  Probe(instance);
}

void AppSupervisor::WriteLog(std::string_view data) {
  if (log_ != nullptr) {
    log_->Write(data);
    return;
  }
  while (!data.empty()) {
    ssize_t n = write(STDERR_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void AppSupervisor::Probe(Instance& instance) {
  if (instance.state != State::kStarting) return;
  auto waited = dispatcher_.time_source().MonotonicNow() - instance.started;
  if (waited >= config_.startup_timeout) {
    PHX_LOG(kWarn, "app ", config_.name, ": instance ", instance.id, " (pid ",
            instance.process->pid(), ") not ready after ", config_.startup_timeout.count(),
            " ms: killing it");
    instance.startup_timed_out = true;
    instance.probe.reset();
    instance.process->Signal(SIGKILL);
    return;
  }
  Instance* raw = &instance;
  instance.probe = std::make_unique<ReadinessProbe>(
      dispatcher_, instance.port, config_.http_path, config_.probe_timeout,
      [this, raw](bool ready, std::string detail) {
        Instance& i = *raw;
        if (i.state != State::kStarting) return;
        if (!ready) {
          PHX_LOG(kDebug, "app ", config_.name, ": instance ", i.id, " not ready yet: ", detail);
          i.timer->Enable(config_.probe_interval);
          dispatcher_.DeferredDelete(std::move(i.probe));
          return;
        }
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            dispatcher_.time_source().MonotonicNow() - i.started);
        SetState(i, State::kReady);
        sockaddr_storage address;
        upstream::ParseSocketAddress("127.0.0.1", i.port, &address);
        i.host = std::make_shared<upstream::Host>(address, absl::StrCat("127.0.0.1:", i.port), 0);
        PHX_LOG(kInfo, "app ", config_.name, ": instance ", i.id, " (pid ", i.process->pid(),
                ", port ", i.port, ") ready after ", took.count(),
                " ms: now an endpoint of cluster ", config_.cluster);
        PublishHosts();
        dispatcher_.DeferredDelete(std::move(i.probe));
      });
}

void AppSupervisor::OnExit(Instance& instance, int64_t exit_status, int term_signal) {
  std::string how = ExitText(exit_status, term_signal);
  int pid = instance.process != nullptr ? instance.process->pid() : 0;
  dispatcher_.DeferredDelete(std::move(instance.process));
  dispatcher_.DeferredDelete(std::move(instance.probe));
  instance.timer.reset();
  bool had_host = instance.host != nullptr;
  instance.host.reset();
  if (had_host) PublishHosts();
  if (instance.state == State::kStopping || instance.state == State::kDraining || stopping_) {
    PHX_LOG(kInfo, "app ", config_.name, ": instance ", instance.id, " (pid ", pid,
            ") stopped: ", how);
    Remove(instance);
    return;
  }
  // A crash: it was not asked to stop.
  stats_.crashes.Inc();
  MonotonicTime now = dispatcher_.time_source().MonotonicNow();
  auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(now - instance.started);
  // The app's crashes decide a crash loop; the instance's own, its back-off (so instances that
  // crash now and then, each once, do not lengthen each other's).
  RestartPolicy::Decision decision = restart_policy_.OnCrash(now);
  if (instance.back_off == nullptr) {
    config::RestartConfig own = config_.restart;
    own.crash_loop_crashes = std::numeric_limits<uint32_t>::max();
    instance.back_off = std::make_unique<RestartPolicy>(own);
  }
  RestartPolicy::Decision own = instance.back_off->OnCrash(now);
  if (!decision.crash_loop) decision.delay = own.delay;
  stats_.in_crash_loop.Set(decision.crash_loop ? 1 : 0);
  if (decision.crash_loop_began) {
    stats_.crash_loops.Inc();
    PHX_LOG(kError, "app ", config_.name, ": crash loop: ", restart_policy_.RecentCrashes(now),
            " crashes within ", config_.restart.crash_loop_interval.count(),
            " ms; restarts now wait ", config_.restart.max.count(), " ms");
  }
  PHX_LOG(kWarn, "app ", config_.name, ": instance ", instance.id, " (pid ", pid, ", port ",
          instance.port, ") ", how, instance.startup_timed_out ? " (startup timeout)" : "",
          " after ", uptime.count(), " ms; restarting it in ", decision.delay.count(), " ms");
  SetState(instance, State::kWaitingRestart);
  Instance* raw = &instance;
  instance.timer = dispatcher_.CreateTimer([this, raw] {
    raw->restarts++;
    stats_.restarts.Inc();
    PHX_LOG(kInfo, "app ", config_.name, ": restarting instance ", raw->id, " (restart ",
            raw->restarts, ")");
    SpawnInstance(*raw);
  });
  instance.timer->Enable(decision.delay);
}

void AppSupervisor::Drain(Instance& instance) {
  SetState(instance, State::kDraining);
  PublishHosts();  // Out of the cluster: no new requests.
  Instance* raw = &instance;
  instance.timer = dispatcher_.CreateTimer([this, raw] {
    Instance& i = *raw;
    bool idle = i.host == nullptr || i.host->rq_active.load(std::memory_order_relaxed) == 0;
    if (idle ||
        dispatcher_.time_source().MonotonicNow() - i.state_since >= config_.stop_grace_period) {
      Stop(i);
      return;
    }
    i.timer->Enable(kDrainPoll);
  });
  instance.timer->Enable(kDrainPoll);
}

void AppSupervisor::Stop(Instance& instance) {
  if (instance.state == State::kWaitingRestart || instance.process == nullptr) {
    Remove(instance);
    return;
  }
  if (instance.state == State::kStopping) return;
  bool was_endpoint = instance.state == State::kReady;
  dispatcher_.DeferredDelete(std::move(instance.probe));
  SetState(instance, State::kStopping);
  if (was_endpoint) PublishHosts();
  PHX_LOG(kInfo, "app ", config_.name, ": stopping instance ", instance.id, " (pid ",
          instance.process->pid(), "): SIGTERM, SIGKILL after ", config_.stop_grace_period.count(),
          " ms");
  instance.process->Signal(SIGTERM);
  Instance* raw = &instance;
  instance.timer = dispatcher_.CreateTimer([this, raw] {
    if (raw->process == nullptr) return;
    PHX_LOG(kWarn, "app ", config_.name, ": instance ", raw->id, " (pid ", raw->process->pid(),
            ") still running after ", config_.stop_grace_period.count(), " ms: SIGKILL");
    raw->process->Signal(SIGKILL);
  });
  instance.timer->Enable(config_.stop_grace_period);
}

void AppSupervisor::Remove(Instance& instance) {
  auto it = std::find_if(instances_.begin(), instances_.end(),
                         [&](const auto& i) { return i.get() == &instance; });
  if (it == instances_.end()) return;
  std::unique_ptr<Instance> gone = std::move(*it);
  instances_.erase(it);
  gone->timer.reset();
  dispatcher_.DeferredDelete(std::move(gone->probe));
  dispatcher_.DeferredDelete(std::move(gone->process));
  RefreshGauges();
  // Destroyed after this event: a callback of its own may be running.
  dispatcher_.DeferredDelete(std::move(gone));
  MaybeDone();
}

void AppSupervisor::PublishHosts() {
  if (cluster_ == nullptr) return;
  upstream::HostVector hosts;
  for (const auto& instance : instances_) {
    if (instance->state == State::kReady && instance->host != nullptr) {
      hosts.push_back(instance->host);
    }
  }
  cluster_->UpdateHosts(std::move(hosts));
}

void AppSupervisor::Sample() {
  if (stopping_ || cluster_ == nullptr) return;
  uint32_t ready = Count(State::kReady);
  uint32_t running = ready + Count(State::kStarting) + Count(State::kWaitingRestart);
  const auto& stats = cluster_->stats();
  Autoscaler::Decision decision =
      autoscaler_.Sample(dispatcher_.time_source().MonotonicNow(), stats.upstream_rq_total.Value(),
                         stats.upstream_rq_active.Value(), ready, running, config_.min_instances,
                         config_.max_instances);
  if (decision.action == Autoscaler::Action::kScaleUp) {
    stats_.scale_up.Inc();
    PHX_LOG(kInfo, "app ", config_.name, ": scale up to ", running + 1,
            " instances: ", decision.reason);
    auto instance = std::make_unique<Instance>();
    instance->id = next_id_++;
    instance->port = FreePort();
    instances_.push_back(std::move(instance));
    SpawnInstance(*instances_.back());
  } else if (decision.action == Autoscaler::Action::kScaleDown) {
    // The newest ready instance leaves.
    Instance* victim = nullptr;
    for (const auto& instance : instances_) {
      if (instance->state == State::kReady) victim = instance.get();
    }
    if (victim == nullptr) return;
    stats_.scale_down.Inc();
    PHX_LOG(kInfo, "app ", config_.name, ": scale down to ", running - 1,
            " instances: ", decision.reason, "; draining instance ", victim->id, " (pid ",
            victim->process->pid(), ")");
    Drain(*victim);
  }
}

void AppSupervisor::StopAll(std::function<void()> done) {
  stopping_ = true;
  on_stopped_ = std::move(done);
  sample_timer_.reset();
  std::vector<Instance*> all;
  for (const auto& instance : instances_) all.push_back(instance.get());
  for (Instance* instance : all) Stop(*instance);
  MaybeDone();
}

void AppSupervisor::MaybeDone() {
  if (!stopping_ || !instances_.empty() || !on_stopped_) return;
  PHX_LOG(kInfo, "app ", config_.name, ": every instance stopped");
  std::function<void()> done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

void AppSupervisor::KillAll() {
  for (const auto& instance : instances_) {
    if (instance->process != nullptr && !instance->process->exited()) {
      instance->process->Signal(SIGKILL);
    }
  }
}

void AppSupervisor::AddPids(std::vector<pid_t>& pids) const {
  for (const auto& instance : instances_) {
    if (instance->process != nullptr && !instance->process->exited()) {
      pids.push_back(instance->process->pid());
    }
  }
}

std::string AppSupervisor::Json() const {
  uint64_t now_ms = dispatcher_.time_source().MonotonicMs();
  std::string instances;
  for (const auto& instance : instances_) {
    uint64_t started_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(instance->started.time_since_epoch())
            .count());
    bool running = instance->process != nullptr;
    absl::StrAppend(&instances, instances.empty() ? "" : ",", "{\"id\":", instance->id,
                    ",\"pid\":", running ? instance->process->pid() : 0,
                    ",\"port\":", instance->port, ",\"state\":\"", StateName(instance->state),
                    "\",\"restarts\":", instance->restarts, ",\"uptime_seconds\":",
                    running ? static_cast<double>(now_ms - started_ms) / 1000 : 0.0, "}");
  }
  return absl::StrCat(
      "{\"name\":\"", JsonEscape(config_.name), "\",\"cluster\":\"", JsonEscape(config_.cluster),
      "\",\"min_instances\":", config_.min_instances, ",\"max_instances\":", config_.max_instances,
      ",\"ready\":", Count(State::kReady), ",\"rps\":", autoscaler_.last_rps(),
      ",\"in_crash_loop\":", stats_.in_crash_loop.Value() != 0 ? "true" : "false",
      ",\"restarts\":", stats_.restarts.Value(), ",\"crash_loops\":", stats_.crash_loops.Value(),
      ",\"scale_up\":", stats_.scale_up.Value(), ",\"scale_down\":", stats_.scale_down.Value(),
      ",\"instances\":[", instances, "]}");
}

}  // namespace phoenix::server
