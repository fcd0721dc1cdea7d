#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "source/common/time_source.h"

namespace phoenix {

// A clock for tests that moves only when the test calls Advance(), and timers that fire as it
// moves: a test of a 60 s timeout runs in microseconds, the same way every time. Dispatchers
// built on it run their timers (Dispatcher::CreateTimer, TimeoutQueue) on this clock.
// Single-threaded: the clock, its timers and Advance() belong to the test's thread. It must
// outlive the dispatchers and timers it serves.
class SimulatedTimeSource : public TimeSource {
 public:
  // The monotonic clock starts at its epoch; the wall clock at 2024-01-01T00:00:00Z.
  SimulatedTimeSource();

  MonotonicTime MonotonicNow() override { return now_; }
  SystemTime SystemNow() override { return system_start_ + (now_ - MonotonicTime()); }
  std::unique_ptr<Scheduler> CreateScheduler(uv_loop_t* loop) override;

  // Moves both clocks forward by `duration`. Every timer due by then fires, in deadline order
  // (equal deadlines: in the order they were enabled), with the clocks at its deadline; timers
  // enabled by those callbacks fire too if they come due within `duration`.
  void Advance(std::chrono::nanoseconds duration);

 private:
  class SimulatedTimer;
  class SimulatedScheduler;
  // Deadline, then a sequence number that orders equal deadlines.
  using Key = std::pair<MonotonicTime, uint64_t>;

  MonotonicTime now_;
  const SystemTime system_start_;
  std::map<Key, SimulatedTimer*> pending_;
  uint64_t next_sequence_ = 0;
};

}  // namespace phoenix
