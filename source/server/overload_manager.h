#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "source/common/stats.h"
#include "source/config/overload_config.h"
#include "source/server/resource_monitor.h"

namespace phoenix::server {

// A change of one watched resource's state, for the log and the notice webhook.
struct OverloadEvent {
  enum class Kind { kNotice, kNoticeEnd, kShedStart, kShedEnd };
  Kind kind;
  std::string resource;  // "cpu", "memory", "app_cpu"
  double value = 0;      // The reading that changed the state.
  double threshold = 0;  // The threshold it crossed.
};
std::string_view OverloadEventName(OverloadEvent::Kind kind);

// Where overload events go besides the log (the notice webhook).
class OverloadNotifier {
 public:
  virtual ~OverloadNotifier() = default;
  virtual void Notify(const OverloadEvent& event) = 0;
};

// overload.<stat>{resource=...}: one set per watched resource.
#define PHX_OVERLOAD_RESOURCE_STATS(COUNTER, GAUGE, HISTOGRAM)                    \
  GAUGE(pressure_percent, "The resource's last reading, in percent of its limit") \
  COUNTER(notice, "Times the resource reached its notice threshold (a CPU peak)") \
  COUNTER(shed, "Times the resource reached its shed threshold and load was shed")
struct OverloadResourceStats {
  PHX_STATS(OverloadResourceStats, PHX_OVERLOAD_RESOURCE_STATS);
};

#define PHX_OVERLOAD_STATS(COUNTER, GAUGE, HISTOGRAM) \
  GAUGE(shedding, "1 while load is shed: new requests are answered 503 (flag OL)")
struct OverloadStats {
  PHX_STATS(OverloadStats, PHX_OVERLOAD_STATS);
};

// Envoy's overload manager in small: reads each watched resource once per Evaluate() (the
// server calls it every refresh interval on the main thread), and moves it between normal,
// notice and shed by its thresholds. A resource entering notice is a "CPU peak": logged,
// counted and sent to the notifier. While any resource is at its shed threshold, shedding()
// is true, and the workers answer new requests 503 OL and close their connections.
class OverloadManager {
 public:
  using MonitorFactory = std::function<std::unique_ptr<ResourceMonitor>()>;

  OverloadManager(StatsStore& stats, OverloadNotifier* notifier);

  // Watches `resource` with `thresholds`; a resource watched already keeps its monitor (and
  // its CPU baseline) and takes the new thresholds.
  void Watch(const std::string& resource, const MonitorFactory& make,
             const config::OverloadThresholds& thresholds);
  void Unwatch(const std::string& resource);
  // Reads every resource and acts on what it reads.
  void Evaluate();

  // Read by the workers on every new request.
  const std::atomic<bool>& shedding() const { return shedding_; }

 private:
  enum class Level { kNormal, kNotice, kShed };
  struct Resource {
    std::unique_ptr<ResourceMonitor> monitor;
    config::OverloadThresholds thresholds;
    Level level = Level::kNormal;
    OverloadResourceStats stats;
  };

  void Change(const std::string& name, Resource& resource, Level to, double value);
  void UpdateShedding();
  void Emit(OverloadEvent::Kind kind, const std::string& name, double value, double threshold);

  StatsStore& store_;
  OverloadNotifier* notifier_;
  OverloadStats stats_;
  std::map<std::string, Resource> resources_;
  std::atomic<bool> shedding_{false};
};

}  // namespace phoenix::server
