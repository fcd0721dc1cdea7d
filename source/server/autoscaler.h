#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "source/common/time_source.h"
#include "source/config/supervisor_config.h"

namespace phoenix::server {

// Decides when a supervised app needs one instance more or one fewer, from samples of its
// cluster's request count and requests in flight. Pure (no clock of its own, no I/O), so tests
// drive it with a simulated clock. Scale up: requests per second per ready instance above the
// target, or in flight per ready instance above the limit, in every sample for scale_up_window.
// Scale down: one instance fewer would still be within both, in every sample for
// scale_down_window. Each decision starts both windows afresh.
class Autoscaler {
 public:
  explicit Autoscaler(const config::AutoscalingConfig& config) : config_(config) {}

  enum class Action { kNone, kScaleUp, kScaleDown };
  struct Decision {
    Action action = Action::kNone;
    std::string reason;  // For the log: the rate and in-flight figures that decided.
  };
  // `requests_total`: the cluster's request counter (monotonic); `in_flight`: its requests in
  // progress; `ready`: instances ready; `running`: instances running or starting (not
  // draining), which min/max bound.
  Decision Sample(MonotonicTime now, uint64_t requests_total, int64_t in_flight, uint32_t ready,
                  uint32_t running, uint32_t min_instances, uint32_t max_instances);
  // Requests per second over the last sample interval (0 before the second sample).
  double last_rps() const { return last_rps_; }
  // Forgets the windows (after a restart of an instance changed the picture, or a drain).
  void Reset();

 private:
  const config::AutoscalingConfig config_;
  std::optional<MonotonicTime> last_time_;
  uint64_t last_total_ = 0;
  double last_rps_ = 0;
  std::optional<MonotonicTime> above_since_;
  std::optional<MonotonicTime> below_since_;
};

}  // namespace phoenix::server
