#include "source/server/overload_manager.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/logging.h"

namespace phoenix::server {
namespace {

std::string Percent(double fraction) { return absl::StrFormat("%.0f%%", fraction * 100); }

std::string Describe(const std::string& resource) {
  if (resource == "cpu") return "phoenix CPU (of the host's cores)";
  if (resource == "memory") return "phoenix resident memory (of max_rss_mb)";
  if (resource == "app_cpu") return "app instances' CPU (of the host's cores)";
  return resource;
}

}  // namespace

std::string_view OverloadEventName(OverloadEvent::Kind kind) {
  switch (kind) {
    case OverloadEvent::Kind::kNotice:
      return "notice";
    case OverloadEvent::Kind::kNoticeEnd:
      return "notice_end";
    case OverloadEvent::Kind::kShedStart:
      return "shed_start";
    case OverloadEvent::Kind::kShedEnd:
      return "shed_end";
  }
  return "";
}

OverloadManager::OverloadManager(StatsStore& stats, OverloadNotifier* notifier)
    : store_(stats), notifier_(notifier), stats_(StatsScope(stats, "overload.")) {}

void OverloadManager::Watch(const std::string& resource, const MonitorFactory& make,
                            const config::OverloadThresholds& thresholds) {
  auto it = resources_.find(resource);
  if (it == resources_.end()) {
    it = resources_
             .emplace(resource,
                      Resource{make(), thresholds, Level::kNormal,
                               OverloadResourceStats(
                                   StatsScope(store_, "overload.").Labelled("resource", resource))})
             .first;
  }
  it->second.thresholds = thresholds;
}

void OverloadManager::Unwatch(const std::string& resource) {
  auto it = resources_.find(resource);
  if (it == resources_.end()) return;
  if (it->second.level != Level::kNormal) Change(resource, it->second, Level::kNormal, 0);
  resources_.erase(it);
  UpdateShedding();
}

void OverloadManager::Evaluate() {
  for (auto& [name, resource] : resources_) {
    std::optional<double> value = resource.monitor->Read();
    if (value) {
      resource.stats.pressure_percent.Set(static_cast<int64_t>(std::lround(*value * 100)));
      const auto& t = resource.thresholds;
      Level level = Level::kNormal;
      if (t.shed > 0 && *value >= t.shed) {
        level = Level::kShed;
      } else if (t.notice > 0 && *value >= t.notice) {
        level = Level::kNotice;
      }
      if (level != resource.level) Change(name, resource, level, *value);
    }
  }
  UpdateShedding();
}

void OverloadManager::UpdateShedding() {
  bool shedding = false;
  for (const auto& [name, resource] : resources_) shedding |= resource.level == Level::kShed;
  shedding_.store(shedding, std::memory_order_relaxed);
  stats_.shedding.Set(shedding ? 1 : 0);
}

// Moves `resource` to `to`, saying so. Shedding implies the notice: a jump from normal to
// shed raises both; a fall from shed to normal ends both.
void OverloadManager::Change(const std::string& name, Resource& resource, Level to, double value) {
  const auto& t = resource.thresholds;
  Level from = resource.level;
  resource.level = to;
  if (from == Level::kShed) Emit(OverloadEvent::Kind::kShedEnd, name, value, t.shed);
  if (from == Level::kNormal && to != Level::kNormal) {
    resource.stats.notice.Inc();
    Emit(OverloadEvent::Kind::kNotice, name, value, t.notice > 0 ? t.notice : t.shed);
  }
  if (to == Level::kShed) {
    resource.stats.shed.Inc();
    Emit(OverloadEvent::Kind::kShedStart, name, value, t.shed);
  }
  if (to == Level::kNormal && from != Level::kNormal) {
    Emit(OverloadEvent::Kind::kNoticeEnd, name, value, t.notice > 0 ? t.notice : t.shed);
  }
}

void OverloadManager::Emit(OverloadEvent::Kind kind, const std::string& name, double value,
                           double threshold) {
  std::string what = Describe(name);
  switch (kind) {
    case OverloadEvent::Kind::kNotice:
      PHX_LOG(kWarn, name == "memory" ? "memory peak: " : "CPU peak: ", what, " at ",
              Percent(value), ", notice threshold ", Percent(threshold));
      break;
    case OverloadEvent::Kind::kNoticeEnd:
      PHX_LOG(kInfo, "overload: ", what, " back to ", Percent(value), ", under ",
              Percent(threshold));
      break;
    case OverloadEvent::Kind::kShedStart:
      PHX_LOG(kError, "overload: shedding load, ", what, " at ", Percent(value), " (shed at ",
              Percent(threshold), "): new requests get 503 (OL)");
      break;
    case OverloadEvent::Kind::kShedEnd:
      PHX_LOG(kWarn, "overload: shedding stopped, ", what, " at ", Percent(value), " (under ",
              Percent(threshold), ")");
      break;
  }
  if (notifier_ != nullptr) notifier_->Notify({kind, name, value, threshold});
}

}  // namespace phoenix::server
