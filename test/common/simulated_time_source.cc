#include "test/common/simulated_time_source.h"

#include <algorithm>

namespace phoenix {

class SimulatedTimeSource::SimulatedTimer : public Timer {
 public:
  SimulatedTimer(SimulatedTimeSource& source, std::function<void()> callback)
      : source_(source), callback_(std::move(callback)) {}
  ~SimulatedTimer() override { Disable(); }

  void Enable(std::chrono::milliseconds timeout) override {
    Disable();
    key_ = Key(source_.now_ + timeout, source_.next_sequence_++);
    source_.pending_.emplace(key_, this);
    enabled_ = true;
  }
  void Disable() override {
    if (!enabled_) return;
    source_.pending_.erase(key_);
    enabled_ = false;
  }
  bool enabled() const override { return enabled_; }

 private:
  friend class SimulatedTimeSource;

  SimulatedTimeSource& source_;
  std::function<void()> callback_;
  Key key_;
  bool enabled_ = false;
};

class SimulatedTimeSource::SimulatedScheduler : public Scheduler {
 public:
  explicit SimulatedScheduler(SimulatedTimeSource& source) : source_(source) {}

  std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) override {
    return std::make_unique<SimulatedTimer>(source_, std::move(callback));
  }
  MonotonicTime ApproximateMonotonicTime() override { return source_.now_; }

 private:
  SimulatedTimeSource& source_;
};

SimulatedTimeSource::SimulatedTimeSource()
    : system_start_(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) {}

std::unique_ptr<Scheduler> SimulatedTimeSource::CreateScheduler(uv_loop_t*) {
  return std::make_unique<SimulatedScheduler>(*this);
}

void SimulatedTimeSource::Advance(std::chrono::nanoseconds duration) {
  const MonotonicTime end = now_ + duration;
  while (!pending_.empty() && pending_.begin()->first.first <= end) {
    auto first = pending_.begin();
    SimulatedTimer* timer = first->second;
    now_ = std::max(now_, first->first.first);
    pending_.erase(first);
    timer->enabled_ = false;
    timer->callback_();  // May enable, disable or destroy timers, this one included.
  }
  now_ = end;
}

}  // namespace phoenix
