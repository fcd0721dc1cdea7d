#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace phoenix {

// A reading of the monotonic clock (never goes back; for durations and deadlines) and one of
// the wall clock (for timestamps people read). Both count from their clock's epoch.
using MonotonicTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

// A one-shot timer on one Dispatcher's loop: its callback runs once, on that loop's thread,
// when the time it was enabled for has passed. Made by Dispatcher::CreateTimer. Safe to
// destroy at any time, from its own callback too: it never calls back after destruction.
class Timer {
 public:
  virtual ~Timer() = default;
  // Arms the timer `timeout` from now, replacing any earlier deadline.
  virtual void Enable(std::chrono::milliseconds timeout) = 0;
  virtual void Disable() = 0;
  virtual bool enabled() const = 0;
};

// The timers of one event loop, on the clock of the TimeSource that made it. This is how a
// test clock takes over a Dispatcher's timers: the Dispatcher makes every timer here.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) = 0;
  // The monotonic time timers count from, cached per loop iteration where the clock is real:
  // free to read, and consistent with when timers fire.
  virtual MonotonicTime ApproximateMonotonicTime() = 0;
};

// The one place Phoenix gets the time from. Every Dispatcher has one (Dispatcher::
// time_source()): production code reads the clock and makes timers only through it, so tests
// can run it on a simulated clock that moves only when they say.
class TimeSource {
 public:
  virtual ~TimeSource() = default;

  virtual MonotonicTime MonotonicNow() = 0;
  virtual SystemTime SystemNow() = 0;
  // The scheduler for the timers of `loop`; one per Dispatcher.
  virtual std::unique_ptr<Scheduler> CreateScheduler(uv_loop_t* loop) = 0;

  // MonotonicNow() as whole milliseconds / microseconds since the clock's epoch.
  uint64_t MonotonicMs() {
    return static_cast<uint64_t>(SinceEpoch<std::chrono::milliseconds>(MonotonicNow()));
  }
  uint64_t MonotonicUs() {
    return static_cast<uint64_t>(SinceEpoch<std::chrono::microseconds>(MonotonicNow()));
  }
  // SystemNow() as microseconds since the Unix epoch.
  int64_t SystemUs() { return SinceEpoch<std::chrono::microseconds>(SystemNow()); }

 private:
  template <typename Unit, typename TimePoint>
  static int64_t SinceEpoch(TimePoint time) {
    return std::chrono::duration_cast<Unit>(time.time_since_epoch()).count();
  }
};

// The operating system's clocks (CLOCK_MONOTONIC, CLOCK_REALTIME) and libuv timers: what the
// proxy runs on. Stateless and thread-safe: one instance serves the main thread and every
// worker, so a monotonic reading kept in shared state means the same on every thread.
class RealTimeSource : public TimeSource {
 public:
  MonotonicTime MonotonicNow() override { return std::chrono::steady_clock::now(); }
  SystemTime SystemNow() override { return std::chrono::system_clock::now(); }
  std::unique_ptr<Scheduler> CreateScheduler(uv_loop_t* loop) override;
};

}  // namespace phoenix
