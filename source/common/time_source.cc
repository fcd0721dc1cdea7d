#include "source/common/time_source.h"

namespace phoenix {
namespace {

// A libuv timer. The handle is closed asynchronously and never calls back after destruction.
class UvTimer : public Timer {
 public:
  UvTimer(uv_loop_t* loop, std::function<void()> callback)
      : handle_(new uv_timer_t), callback_(std::move(callback)) {
    uv_timer_init(loop, handle_);
    handle_->data = this;
  }

  ~UvTimer() override {
    uv_timer_stop(handle_);
    handle_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(handle_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    } else {
      // Dispatcher::Exit() already closed it; its close callback frees nothing, so we do.
      handle_->close_cb = [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); };
    }
  }

  void Enable(std::chrono::milliseconds timeout) override {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(handle_))) return;
    uv_timer_start(
        handle_,
        [](uv_timer_t* h) {
          if (h->data != nullptr) static_cast<UvTimer*>(h->data)->callback_();
        },
        timeout.count(), 0);
  }

  void Disable() override { uv_timer_stop(handle_); }

  bool enabled() const override {
    return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
  }

 private:
  uv_timer_t* handle_;
  std::function<void()> callback_;
};

// libuv timers on one loop. libuv's loop time is CLOCK_MONOTONIC in milliseconds (possibly
// its coarse variant), the clock steady_clock reads: the same epoch as MonotonicNow().
class UvScheduler : public Scheduler {
 public:
  explicit UvScheduler(uv_loop_t* loop) : loop_(loop) {}

  std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) override {
    return std::make_unique<UvTimer>(loop_, std::move(callback));
  }
  MonotonicTime ApproximateMonotonicTime() override {
    return MonotonicTime(std::chrono::milliseconds(uv_now(loop_)));
  }

 private:
  uv_loop_t* loop_;
};

}  // namespace

std::unique_ptr<Scheduler> RealTimeSource::CreateScheduler(uv_loop_t* loop) {
  return std::make_unique<UvScheduler>(loop);
}

}  // namespace phoenix
