#pragma once

#include <chrono>
#include <deque>

#include "source/common/time_source.h"
#include "source/config/supervisor_config.h"

namespace phoenix::server {

// When a supervised app's crashed instance starts again: exponential back-off over the crashes
// of the last crash-loop interval, and crash-loop detection (that many crashes within it: wait
// the maximum). AppSupervisor keeps one per app, for crash loops, and one per instance, for
// its back-off. Pure, so tests drive it with any clock.
class RestartPolicy {
 public:
  explicit RestartPolicy(const config::RestartConfig& config) : config_(config) {}

  struct Decision {
    std::chrono::milliseconds delay;  // Before the instance starts again.
    bool crash_loop;                  // The app is in a crash loop now.
    bool crash_loop_began;            // ... and was not before this crash (report it once).
  };
  // An instance crashed at `now`: initial x 2^(crashes in the interval - 1), capped at max;
  // the maximum in a crash loop.
  Decision OnCrash(MonotonicTime now);
  // Crashes within the crash-loop interval before `now`.
  size_t RecentCrashes(MonotonicTime now);

 private:
  void Forget(MonotonicTime now);

  const config::RestartConfig config_;
  std::deque<MonotonicTime> crashes_;  // Within the interval, oldest first.
  bool in_crash_loop_ = false;
};

}  // namespace phoenix::server
