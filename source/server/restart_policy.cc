#include "source/server/restart_policy.h"

#include <algorithm>

namespace phoenix::server {

void RestartPolicy::Forget(MonotonicTime now) {
  while (!crashes_.empty() && now - crashes_.front() >= config_.crash_loop_interval) {
    crashes_.pop_front();
  }
}

size_t RestartPolicy::RecentCrashes(MonotonicTime now) {
  Forget(now);
  if (crashes_.empty()) in_crash_loop_ = false;
  return crashes_.size();
}

RestartPolicy::Decision RestartPolicy::OnCrash(MonotonicTime now) {
  Forget(now);
  crashes_.push_back(now);
  bool was = in_crash_loop_;
  in_crash_loop_ = crashes_.size() >= config_.crash_loop_crashes;
  if (in_crash_loop_) return {config_.max, true, !was};
  std::chrono::milliseconds delay = config_.initial;
  for (size_t i = 1; i < crashes_.size() && delay < config_.max; ++i) delay *= 2;
  return {std::min(delay, config_.max), false, false};
}

}  // namespace phoenix::server
