#include "source/server/supervisor.h"

#include "absl/strings/str_cat.h"
#include "source/common/logging.h"

namespace phoenix::server {

absl::StatusOr<std::unique_ptr<Supervisor>> Supervisor::Create(
    Dispatcher& dispatcher, StatsStore& stats, const std::vector<config::AppConfig>& apps) {
  auto supervisor = std::make_unique<Supervisor>();
  for (const config::AppConfig& app : apps) {
    std::unique_ptr<RotatingFile> log;
    if (!app.log_path.empty()) {
      auto file = RotatingFile::Open(app.log_path, app.log_rotation);
      if (!file.ok()) {
        return absl::Status(
            file.status().code(),
            absl::StrCat("app ", app.name, ": log_path: ", file.status().message()));
      }
      log = std::move(*file);
    }
    supervisor->apps_.push_back(
        std::make_unique<AppSupervisor>(dispatcher, stats, app, std::move(log)));
  }
  return supervisor;
}

void Supervisor::SetClusters(const upstream::ClusterMap& clusters) {
  for (auto& app : apps_) {
    auto it = clusters.find(app->config().cluster);
    app->SetCluster(it != clusters.end() ? it->second : nullptr);
  }
}

void Supervisor::Start() {
  for (auto& app : apps_) app->Start();
}

void Supervisor::StopAll(std::function<void()> done) {
  on_stopped_ = std::move(done);
  running_ = apps_.size();
  if (running_ == 0) {
    on_stopped_();
    return;
  }
  for (auto& app : apps_) {
    app->StopAll([this] {
      if (--running_ == 0 && on_stopped_) {
        std::function<void()> done = std::move(on_stopped_);
        on_stopped_ = nullptr;
        done();
      }
    });
  }
}

void Supervisor::KillAll() {
  for (auto& app : apps_) app->KillAll();
}

std::vector<pid_t> Supervisor::Pids() const {
  std::vector<pid_t> pids;
  for (const auto& app : apps_) app->AddPids(pids);
  return pids;
}

std::string Supervisor::Json() const {
  std::string out = "{\"apps\":[";
  for (size_t i = 0; i < apps_.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", apps_[i]->Json());
  }
  return out + "]}\n";
}

}  // namespace phoenix::server
