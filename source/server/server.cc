#include "source/server/server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "source/common/rotating_file.h"
#include "source/common/strings.h"
#include "source/config/ads_config_source.h"
#include "source/config/file_config_source.h"
#include "source/config/redact.h"
#include "source/network/tcp_connection.h"
#include "source/server/certificates.h"
#include "source/server/filter_registrations.h"
#include "source/server/grpc_certificate_issuer.h"
#include "source/server/policy_check.h"
#include "source/server/stats_page.h"
#include "source/server/systemd_notify.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::server {
namespace {

// One listening socket with SO_REUSEPORT, so each worker can have its own.
absl::StatusOr<int> OpenListenSocket(const sockaddr_storage& address) {
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  socklen_t length = address.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 || listen(fd, 1024) != 0) {
    std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(error);
  }
  return fd;
}

// Fails when another socket (another process) already listens on `address`. Our own
// listening sockets share the port through SO_REUSEPORT, which would just as silently share
// it with a second phoenix; a probe bound without SO_REUSEPORT is refused while anyone
// listens there (SO_REUSEADDR still lets it past connections in TIME_WAIT).
absl::Status CheckAddressFree(const sockaddr_storage& address) {
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t length = address.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  absl::Status status = absl::OkStatus();
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    status =
        absl::UnavailableError(errno == EADDRINUSE ? "address already in use" : strerror(errno));
  }
  close(fd);
  return status;
}

}  // namespace

Server::Server(Options options)
    : options_(std::move(options)),
      source_(std::make_unique<config::FileConfigSource>(options_.config_path)),
      dispatcher_(time_source_),
      snapshot_builder_(*source_, stats_,
                        [this](std::shared_ptr<const config::ConfigSnapshot> snapshot) {
                          return Publish(std::move(snapshot));
                        }),
      admin_(dispatcher_),
      overload_notifier_(dispatcher_, stats_),
      certificate_watcher_(dispatcher_, [this] { (void)RotateCertificates("a file changed"); }),
      dns_resolver_(std::make_unique<network::UvDnsResolver>(dispatcher_)) {
  if (options_.concurrency <= 0) {
    options_.concurrency = std::max(1u, std::thread::hardware_concurrency());
  }
}

Server::~Server() { Shutdown(); }

absl::StatusOr<ListenerSocketsList> Server::BindListeners(const config::ConfigSnapshot& snapshot) {
  ListenerSocketsList bound;
  std::map<std::string, std::shared_ptr<ListenerSockets>> next;
  for (const auto& listener : snapshot.listeners) {
    std::shared_ptr<ListenerSockets> sockets;
    if (auto it = sockets_.find(listener.address); it != sockets_.end()) {
      sockets = it->second;
    } else if (auto n = next.find(listener.address); n != next.end()) {
      sockets = n->second;
    } else {
      sockets = std::make_shared<ListenerSockets>();
      sockets->address = listener.address;
      absl::Status free = CheckAddressFree(listener.sockaddr);
      for (int i = 0; i < options_.concurrency; ++i) {
        absl::StatusOr<int> fd = free.ok() ? OpenListenSocket(listener.sockaddr) : free;
        if (!fd.ok()) {
          // The sockets opened so far close as `sockets` and `next` go.
          return absl::UnavailableError(absl::StrCat("listener '", listener.name,
                                                     "': cannot listen on ", listener.address, ": ",
                                                     fd.status().message()));
        }
        sockets->Add(*fd);
      }
    }
    next[listener.address] = sockets;
    bound.push_back(std::move(sockets));
  }
  sockets_.swap(next);
  return bound;
}

void Server::LogListenerChanges(const config::ConfigSnapshot& before,
                                const config::ConfigSnapshot& after) {
  std::map<std::string, std::string> was;  // name -> address
  for (const auto& listener : before.listeners) was[listener.name] = listener.address;
  for (const auto& listener : after.listeners) {
    auto it = was.find(listener.name);
    if (it == was.end()) {
      PHX_LOG(kInfo, "listener '", listener.name, "' added on ", listener.address);
      continue;
    }
    if (it->second != listener.address) {
      PHX_LOG(kInfo, "listener '", listener.name, "' moved from ", it->second, " to ",
              listener.address);
    }
    was.erase(it);
  }
  for (const auto& [name, address] : was) {
    PHX_LOG(kInfo, "listener '", name, "' on ", address, " removed");
  }
}

absl::Status Server::Publish(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  if (current_ != nullptr && std::memcmp(&snapshot->admin_address, &current_->admin_address,
                                         sizeof(sockaddr_storage)) != 0) {
    PHX_LOG(kWarn, "admin address changes take effect on restart");
  }
  auto sockets = BindListeners(*snapshot);
  if (!sockets.ok()) return sockets.status();
  if (current_ != nullptr) LogListenerChanges(*current_, *snapshot);
  for (const std::string& warning : snapshot->warnings) PHX_LOG(kWarn, warning);
  std::shared_ptr<const config::ConfigSnapshot> previous = std::move(current_);
  current_ = std::move(snapshot);
  UpdateDnsClusters(previous.get());
  if (previous != nullptr &&
      !google::protobuf::util::MessageDifferencer::Equals(previous->bootstrap.supervisor(),
                                                          current_->bootstrap.supervisor())) {
    PHX_LOG(kWarn, "supervisor changes take effect on restart; the apps run as they were");
  }
  if (supervisor_ != nullptr) supervisor_->SetClusters(current_->clusters);
  ApplyOverloadConfig(current_->overload);
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::HealthChecker>> checkers;
  for (const auto& [name, cluster] : current_->clusters) {
    if (cluster->proto().health_checks().empty()) continue;
    auto it = health_checkers_.find(cluster.get());
    checkers[cluster.get()] = it != health_checkers_.end()
                                  ? std::move(it->second)
                                  : std::make_unique<upstream::HealthChecker>(dispatcher_, cluster);
  }
  health_checkers_.swap(checkers);
  ApplyEndpointAssignments(previous.get());
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::SuccessRateEjector>> ejectors;
  for (const auto& [name, cluster] : current_->clusters) {
    if (!cluster->proto().has_outlier_detection()) continue;
    auto it = success_rate_ejectors_.find(cluster.get());
    ejectors[cluster.get()] =
        it != success_rate_ejectors_.end()
            ? std::move(it->second)
            : std::make_unique<upstream::SuccessRateEjector>(dispatcher_, cluster);
  }
  success_rate_ejectors_.swap(ejectors);
  server_stats_.config_version.Set(static_cast<int64_t>(current_->version));
  cluster_warmer_.Hold(
      current_, current_->bootstrap.has_dynamic_resources(),
      [this](const upstream::ClusterInfo& cluster) -> upstream::HealthChecker* {
        auto it = health_checkers_.find(&cluster);
        return it != health_checkers_.end() ? it->second.get() : nullptr;
      },
      [this, snapshot = current_, bound = *std::move(sockets)] {
        for (auto& worker : workers_) worker->PostSnapshot(snapshot, bound);
      });
  certificate_watcher_.Watch(CertificateFilesOf(*current_));
  return absl::OkStatus();
}

void Server::ApplyOverloadConfig(const config::OverloadConfig& config) {
  int cores = std::max(1u, std::thread::hardware_concurrency());
  auto watch = [&](const std::string& name, const config::OverloadThresholds& thresholds,
                   const OverloadManager::MonitorFactory& make) {
    if (thresholds.enabled()) {
      overload_manager_.Watch(name, make, thresholds);
    } else {
      overload_manager_.Unwatch(name);
    }
  };
  watch("cpu", config.cpu,
        [&] { return std::make_unique<ProcessCpuMonitor>(time_source_, cores); });
  uint64_t max_rss = config.max_rss_bytes;
  watch("memory", config.memory,
        [max_rss] { return std::make_unique<ResidentMemoryMonitor>(max_rss); });
  watch("app_cpu", config.app_cpu, [&] {
    return std::make_unique<ProcessesCpuMonitor>(time_source_, cores,
                                                 [this] { return AppInstancePids(); });
  });
  overload_notifier_.SetTarget(
      config.has_webhook ? std::optional<config::WebhookTarget>(config.webhook) : std::nullopt,
      config.webhook_timeout, current_->bootstrap.node().id());
  if (!config.enabled()) {
    overload_timer_.reset();
    return;
  }
  overload_interval_ = config.refresh_interval;
  if (overload_timer_ == nullptr) {
    overload_timer_ = dispatcher_.CreateTimer([this] {
      overload_manager_.Evaluate();
      overload_timer_->Enable(overload_interval_);
    });
    overload_manager_.Evaluate();  // A CPU baseline now, a first reading after one interval.
    overload_timer_->Enable(overload_interval_);
  }
}

std::vector<pid_t> Server::AppInstancePids() {
  return supervisor_ != nullptr ? supervisor_->Pids() : std::vector<pid_t>();
}

void Server::ApplyEndpointAssignments(const config::ConfigSnapshot* previous) {
  for (const auto& [name, cluster] : current_->clusters) {
    if (cluster->type() != config::v1::Cluster::EDS) continue;
    auto assignment = current_->endpoint_assignments.find(cluster->eds_service_name());
    if (assignment == current_->endpoint_assignments.end()) continue;  // Not arrived yet.
    upstream::HostVectorConstSharedPtr current = cluster->hosts();
    if (current->empty() && previous != nullptr) {
      // A changed cluster takes over the hosts of the one it replaces (their counters).
      if (auto old = previous->clusters.find(name);
          old != previous->clusters.end() && old->second != cluster) {
        current = old->second->hosts();
      }
    }
    bool changed = false;
    upstream::HostVector hosts = upstream::MergeHosts(*current, assignment->second, &changed);
    if (!changed && current == cluster->hosts()) continue;
    PHX_LOG(kInfo, "cluster '", name, "': ", hosts.size(), " hosts from ClusterLoadAssignment '",
            cluster->eds_service_name(), "'");
    cluster->UpdateHosts(std::move(hosts));
    if (auto checker = health_checkers_.find(cluster.get()); checker != health_checkers_.end()) {
      checker->second->OnHostsChanged();
    }
  }
}

void Server::UpdateDnsClusters(const config::ConfigSnapshot* previous) {
  std::map<const upstream::ClusterInfo*, std::unique_ptr<upstream::DnsCluster>> next;
  for (const auto& [name, cluster] : current_->clusters) {
    if (cluster->type() != config::v1::Cluster::STRICT_DNS &&
        cluster->type() != config::v1::Cluster::LOGICAL_DNS) {
      continue;
    }
    if (auto it = dns_clusters_.find(cluster.get()); it != dns_clusters_.end()) {
      next[cluster.get()] = std::move(it->second);
      continue;
    }
    // The first resolution starts now, as the config is applied: a changed cluster starts
    // with the addresses of the one it replaces, a new one with none (503 until resolved).
    const upstream::ClusterInfo* replaced = nullptr;
    if (previous != nullptr) {
      if (auto old = previous->clusters.find(name); old != previous->clusters.end()) {
        replaced = old->second.get();
      }
    }
    const upstream::ClusterInfo* key = cluster.get();
    next[key] = std::make_unique<upstream::DnsCluster>(
        dispatcher_, *dns_resolver_, cluster,
        [this, key] {
          if (auto checker = health_checkers_.find(key); checker != health_checkers_.end()) {
            checker->second->OnHostsChanged();
          }
        },
        replaced);
  }
  dns_clusters_.swap(next);
}

absl::Status Server::RotateCertificates(std::string_view trigger) {
  uint64_t before = current_->version;
  absl::Status status = snapshot_builder_.Rebuild();
  if (!status.ok()) {
    server_stats_.certificate_rotation_failure.Inc();
    PHX_LOG(kError, "certificates: ", AbslView(trigger),
            ", but the new ones are rejected; version ", before, " stays in force:\n",
            status.message());
    return status;
  }
  server_stats_.certificate_rotation_success.Inc();
  PHX_LOG(kInfo, "certificates: ", AbslView(trigger), "; reloaded as config version ",
          current_->version);
  return absl::OkStatus();
}

int Server::Run() {
  start_ms_ = time_source_.MonotonicMs();
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < options_.concurrency; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, time_source_, overload_manager_.shedding()));
  }
  RegisterBuiltinFilters();
  RegisterBuiltinTransportSockets();
  if (absl::Status status = source_->Start(snapshot_builder_); !status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    workers_.clear();
    return 1;
  }
  if (current_->bootstrap.has_workload_identity()) {
    // Its TLS contexts name the workload certificate: the resources are asked for once it
    // is in.
    const auto& bootstrap = current_->bootstrap;
    workload_identity_ = std::make_unique<WorkloadIdentity>(
        dispatcher_, stats_, bootstrap.node(), bootstrap.workload_identity(),
        std::make_unique<GrpcCertificateIssuer>(bootstrap.dynamic_resources().ads_config()),
        [this](const config::v1::Secret& secret) {
          return snapshot_builder_.SetLocalSecret(secret);
        },
        [this] { StartAdsSource(); });
    workload_identity_->Start();
  } else {
    StartAdsSource();
  }
  InstallAdminHandlers();
  std::string error = admin_.Listen(reinterpret_cast<const sockaddr*>(&current_->admin_address));
  if (!error.empty()) {
    std::fprintf(
        stderr, "admin: cannot listen on %s: %s\n",
        network::FormatAddress(reinterpret_cast<const sockaddr*>(&current_->admin_address)).c_str(),
        error.c_str());
    for (auto& worker : workers_) worker->PostStop();
    for (auto& worker : workers_) worker->Join();
    workers_.clear();
    return 1;
  }
  for (auto& worker : workers_) worker->Start();
  if (!current_->apps.empty()) {
    auto supervisor = Supervisor::Create(dispatcher_, stats_, current_->apps);
    if (!supervisor.ok()) {
      std::fprintf(stderr, "supervisor: %s\n", std::string(supervisor.status().message()).c_str());
      Shutdown();
      return 1;
    }
    supervisor_ = std::move(*supervisor);
    supervisor_->SetClusters(current_->clusters);
    supervisor_->Start();
  }
  InstallSignals();
  server_stats_.concurrency.Set(options_.concurrency);
  server_stats_.live.Set(1);
  for (const auto& listener : current_->listeners) {
    PHX_LOG(kInfo, "listener '", listener.name, "' on ", listener.address);
  }
  PHX_LOG(kInfo, "phoenix ", PHOENIX_VERSION, " started: ", options_.concurrency,
          options_.concurrency == 1 ? " worker" : " workers", ", config version ",
          current_->version, ", admin on ",
          network::FormatAddress(reinterpret_cast<const sockaddr*>(&current_->admin_address)));
  // Listeners are bound and the workers take connections: systemd may start what depends on
  // us.
  NotifyServiceManager(absl::StrCat("READY=1\nSTATUS=serving config version ", current_->version,
                                    "\nMAINPID=", getpid()));
  dispatcher_.Run();
  PHX_LOG(kInfo, "phoenix stopped");
  return 0;
}

void Server::InstallSignals() {
  auto add = [this](int signum, uv_signal_cb cb) {
    auto* handle = new uv_signal_t;
    uv_signal_init(dispatcher_.loop(), handle);
    handle->data = this;
    uv_signal_start(handle, cb, signum);
    signals_.push_back(handle);
  };
  add(SIGHUP, [](uv_signal_t* h, int) {
    auto* self = static_cast<Server*>(h->data);
    NotifyServiceManager("RELOADING=1");
    absl::Status status = self->source_->Refresh();
    NotifyServiceManager(
        absl::StrCat("READY=1\nSTATUS=serving config version ", self->current_->version));
    if (status.ok()) {
      self->server_stats_.config_reload_success.Inc();
      PHX_LOG(kInfo, "SIGHUP: config version ", self->current_->version, " applied");
    } else {
      self->server_stats_.config_reload_failure.Inc();
      PHX_LOG(kError, "SIGHUP: config rejected, keeping version ", self->current_->version, ":\n",
              status.message());
    }
  });
  // After an external logrotate renamed them: new lines go to new files at the old paths.
  add(SIGUSR1, [](uv_signal_t*, int) {
    RotatingFile::ReopenAll();
    PHX_LOG(kInfo, "SIGUSR1: log files reopened");
  });
  uv_signal_cb stop = [](uv_signal_t* h, int signum) {
    static_cast<Server*>(h->data)->StartDrain();
  };
  add(SIGTERM, stop);
  add(SIGINT, stop);
}

void Server::StartDrain() {
  if (draining_) {
    PHX_LOG(kWarn, "second stop signal: exiting now");
    if (supervisor_ != nullptr) supervisor_->KillAll();
    Shutdown();
    return;
  }
  draining_ = true;
  server_stats_.live.Set(0);
  NotifyServiceManager("STOPPING=1\nSTATUS=draining");
  PHX_LOG(kInfo, "draining: up to ", current_->drain_timeout.count(), " ms for in-flight requests");
  for (auto& worker : workers_) worker->PostDrain();
  drain_deadline_ms_ = time_source_.MonotonicMs() + current_->drain_timeout.count();
  drain_poll_timer_ = dispatcher_.CreateTimer([this] {
    int64_t open = 0;
    for (const auto& worker : workers_) open += worker->active_connections();
    if (open == 0 || time_source_.MonotonicMs() >= drain_deadline_ms_) {
      if (open != 0) PHX_LOG(kWarn, "drain timeout: closing ", open, " connections");
      StopAppsThenShutdown();
      return;
    }
    drain_poll_timer_->Enable(std::chrono::milliseconds(20));
  });
  drain_poll_timer_->Enable(std::chrono::milliseconds(20));
}

void Server::StopAppsThenShutdown() {
  if (supervisor_ == nullptr) {
    Shutdown();
    return;
  }
  if (stopping_apps_) return;
  stopping_apps_ = true;
  PHX_LOG(kInfo, "drained: stopping the supervised apps");
  // Shutdown() destroys the supervisor, whose callback this is: after this event.
  supervisor_->StopAll([this] { dispatcher_.Defer([this] { Shutdown(); }); });
}

void Server::StartAdsSource() {
  if (!current_->bootstrap.has_dynamic_resources() || ads_source_ != nullptr) return;
  // The resources come from the control plane, as it pushes them.
  ads_source_ = std::make_unique<config::AdsConfigSource>(
      dispatcher_, current_->bootstrap.node(),
      current_->bootstrap.dynamic_resources().ads_config());
  (void)ads_source_->Start(snapshot_builder_);
}

void Server::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (supervisor_ != nullptr) {
    supervisor_->KillAll();  // Those StopAll did not stop (a second signal): now.
    supervisor_.reset();
  }
  workload_identity_.reset();
  ads_source_.reset();
  for (auto& worker : workers_) worker->PostStop();
  for (auto& worker : workers_) worker->Join();
  workers_.clear();
  drain_poll_timer_.reset();
  certificate_watcher_.Stop();
  health_checkers_.clear();
  success_rate_ejectors_.clear();
  dns_clusters_.clear();
  admin_.Close();
  for (auto* handle : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  signals_.clear();
  dispatcher_.Exit();
}

void Server::InstallAdminHandlers() {
  admin_.AddHandler("/ready", "GET", [this](const http::RequestHeaders&) -> AdminResponse {
    if (draining_) return {503, "text/plain", "DRAINING\n"};
    if (health_failed_) return {503, "text/plain", "FAILED\n"};
    return {200, "text/plain", "LIVE\n"};
  });
  admin_.AddHandler("/stats", "GET", [this](const http::RequestHeaders& request) {
    RefreshCertificateGauges(*current_);
    if (workload_identity_ != nullptr) workload_identity_->RefreshGauges();
    return StatsPage(stats_, request.Query(), /*prometheus=*/false);
  });
  admin_.AddHandler("/stats/prometheus", "GET", [this](const http::RequestHeaders& request) {
    RefreshCertificateGauges(*current_);
    if (workload_identity_ != nullptr) workload_identity_->RefreshGauges();
    return StatsPage(stats_, request.Query(), /*prometheus=*/true);
  });
  admin_.AddHandler("/certs", "GET", [this](const http::RequestHeaders&) -> AdminResponse {
    return {200, "application/json",
            CertificatesJson(*current_, workload_identity_ != nullptr ? workload_identity_->Json()
                                                                      : std::string())};
  });
  admin_.AddHandler("/certs/reload", "POST", [this](const http::RequestHeaders&) -> AdminResponse {
    absl::Status status = RotateCertificates("POST /certs/reload");
    if (!status.ok()) {
      return {400, "text/plain",
              absl::StrCat("rejected; version ", current_->version, " stays in force\n",
                           status.message(), "\n")};
    }
    return {200, "text/plain", absl::StrCat("applied version ", current_->version, "\n")};
  });
  admin_.AddHandler("/apps", "GET", [this](const http::RequestHeaders&) -> AdminResponse {
    return {200, "application/json",
            supervisor_ != nullptr ? supervisor_->Json() : std::string("{\"apps\":[]}\n")};
  });
  admin_.AddHandler("/clusters", "GET", [this](const http::RequestHeaders&) -> AdminResponse {
    return {200, "text/plain", ClustersText()};
  });
  admin_.AddHandler("/config_dump", "GET",
                    [this](const http::RequestHeaders& request) -> AdminResponse {
                      return {200, "application/json", ConfigDumpJson(request.Query())};
                    });
  admin_.AddHandler("/server_info", "GET", [this](const http::RequestHeaders&) -> AdminResponse {
    return {200, "application/json", ServerInfoJson()};
  });
  admin_.AddHandler("/reload", "POST", [this](const http::RequestHeaders&) -> AdminResponse {
    absl::Status status = source_->Refresh();
    if (!status.ok()) {
      server_stats_.config_reload_failure.Inc();
      PHX_LOG(kError, "reload: config rejected, keeping version ", current_->version, ":\n",
              status.message());
      return {400, "text/plain",
              absl::StrCat("rejected; version ", current_->version, " stays in force\n",
                           status.message(), "\n")};
    }
    server_stats_.config_reload_success.Inc();
    PHX_LOG(kInfo, "reload: config version ", current_->version, " applied");
    return {200, "text/plain", absl::StrCat("applied version ", current_->version, "\n")};
  });
  admin_.AddHandler("/policy/explain", "GET",
                    [this](const http::RequestHeaders& request) -> AdminResponse {
                      return ExplainPolicy(request.Query());
                    });
  admin_.AddHandler("/healthcheck/fail", "POST", [this](const http::RequestHeaders&) {
    health_failed_ = true;
    PHX_LOG(kInfo, "admin: /healthcheck/fail: /ready now answers 503 FAILED");
    return AdminResponse{200, "text/plain", "OK\n"};
  });
  admin_.AddHandler("/healthcheck/ok", "POST", [this](const http::RequestHeaders&) {
    health_failed_ = false;
    PHX_LOG(kInfo, "admin: /healthcheck/ok: /ready answers 200 again");
    return AdminResponse{200, "text/plain", "OK\n"};
  });
}

AdminResponse Server::ExplainPolicy(std::string_view query) {
  config::v1::PolicyCheckRequest request;
  std::string listener_name;
  for (const auto& [key, value] : ParseAdminQuery(query)) {
    if (key == "method") {
      request.set_method(value);
    } else if (key == "path") {
      request.set_path(value);
    } else if (key == "host") {
      request.set_host(value);
    } else if (key == "source") {
      request.set_source_address(value);
    } else if (key == "principal") {
      request.set_principal(value);
    } else if (key == "listener") {
      listener_name = value;
    } else if (key.starts_with("header.")) {
      (*request.mutable_headers())[key.substr(7)] = value;
    } else {
      return {400, "text/plain",
              "parameters: method, path, host, source, principal, listener, header.<name>\n"};
    }
  }
  for (const config::ListenerConfig& listener : current_->listeners) {
    if (!listener_name.empty() && listener.name != listener_name) continue;
    // The chain a new connection would get.
    const auto& hcm = *listener.filter_chains->Select().connection_manager;
    PolicyOutcome outcome = ExplainRequest(hcm, hcm.xff_num_trusted_hops, request);
    std::string body = absl::StrCat("listener: ", listener.name, "\n");
    for (const auto& line : outcome.lines) absl::StrAppend(&body, line, "\n");
    absl::StrAppend(&body, "outcome: ", outcome.Summary(), "\n");
    return {200, "text/plain", body};
  }
  return {404, "text/plain", absl::StrCat("no listener named '", listener_name, "'\n")};
}

std::string Server::ServerInfoJson() {
  const auto& node = current_->bootstrap.node();
  return absl::StrCat(
      "{\"version\":\"", PHOENIX_VERSION, "\",\"state\":\"",
      draining_ ? "DRAINING" : (health_failed_ ? "FAILED" : "LIVE"),
      "\",\"uptime_seconds\":", (time_source_.MonotonicMs() - start_ms_) / 1000,
      ",\"concurrency\":", options_.concurrency, ",\"config_version\":", current_->version,
      ",\"config_path\":\"", JsonEscape(options_.config_path), "\",\"node\":{\"id\":\"",
      JsonEscape(node.id()), "\",\"cluster\":\"", JsonEscape(node.cluster()), "\"}}\n");
}

std::string Server::ConfigDumpJson(std::string_view query) {
  bool include_defaults = false;
  bool pretty = false;
  for (const auto& [key, value] : ParseAdminQuery(query)) {
    include_defaults |= key == "include_defaults";
    pretty |= key == "pretty";
  }
  std::string bootstrap;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // With include_defaults, every field shows, set or not (action: DENY, lb_policy, ...).
  options.always_print_primitive_fields = include_defaults;
  config::v1::Bootstrap redacted = current_->bootstrap;
  config::RedactPrivateKeys(&redacted);
  (void)google::protobuf::util::MessageToJsonString(redacted, &bootstrap, options);
  // Per resource type: the version in force, and the last rejected one with its error.
  std::string sources;
  const config::ConfigSource& source = ads_source_ != nullptr ? *ads_source_ : *source_;
  for (const auto& [type, status] : source.status()) {
    absl::StrAppend(&sources, sources.empty() ? "" : ",", "{\"type_url\":\"",
                    AbslView(config::TypeUrl(type)), "\",\"version_info\":\"",
                    JsonEscape(status.accepted_version), "\"");
    if (!status.last_updated.empty()) {
      absl::StrAppend(&sources, ",\"last_updated\":\"", status.last_updated, "\"");
    }
    if (!status.last_error.empty()) {
      absl::StrAppend(&sources, ",\"rejected_version\":\"", JsonEscape(status.rejected_version),
                      "\",\"error_detail\":\"", JsonEscape(status.last_error), "\"");
    }
    absl::StrAppend(&sources, "}");
  }
  std::string dump = absl::StrCat("{\"version\":", current_->version, ",\"source\":\"",
                                  JsonEscape(source.description()), "\",\"resources\":[", sources,
                                  "],\"bootstrap\":", bootstrap, "}");
  if (pretty) {
    // Read back as a google.protobuf.Value and written indented.
    google::protobuf::Value value;
    google::protobuf::util::JsonPrintOptions indented;
    indented.add_whitespace = true;
    std::string out;
    if (google::protobuf::util::JsonStringToMessage(dump, &value).ok() &&
        google::protobuf::util::MessageToJsonString(value, &out, indented).ok()) {
      dump = std::move(out);
    }
  }
  return dump + "\n";
}

std::string Server::ClustersText() {
  std::string out;
  for (const auto& [name, cluster] : current_->clusters) {
    upstream::HostVectorConstSharedPtr hosts = cluster->hosts();
    for (const auto& host : *hosts) {
      std::string prefix = absl::StrCat(name, "::", host->address_string(), "::");
      absl::StrAppend(&out, prefix, "priority::", host->priority(), "\n");
      uint64_t now = time_source_.MonotonicMs();
      std::string flags;
      if (host->failed_active_hc.load()) flags = "/failed_active_hc";
      if (host->Ejected(now)) absl::StrAppend(&flags, "/failed_outlier_check");
      absl::StrAppend(&out, prefix, "health_flags::", flags.empty() ? "healthy" : flags.substr(1),
                      "\n");
      absl::StrAppend(&out, prefix, "cx_active::", host->cx_active.load(), "\n");
      absl::StrAppend(&out, prefix, "cx_total::", host->cx_total.load(), "\n");
      absl::StrAppend(&out, prefix, "cx_connect_fail::", host->cx_connect_fail.load(), "\n");
      absl::StrAppend(&out, prefix, "rq_active::", host->rq_active.load(), "\n");
      absl::StrAppend(&out, prefix, "rq_total::", host->rq_total.load(), "\n");
      absl::StrAppend(&out, prefix, "rq_error::", host->rq_error.load(), "\n");
    }
  }
  return out;
}

}  // namespace phoenix::server
