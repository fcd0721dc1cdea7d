#pragma once

#include <uv.h>

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "source/common/time_source.h"

namespace phoenix {

class TimeoutQueue;

// The event loop of one thread (a worker or the main thread). Everything that touches a
// Dispatcher's objects runs on its thread; Post() is the only cross-thread entry.
class Dispatcher {
 public:
  // Reads the time and makes timers through `time_source`, which must outlive it.
  explicit Dispatcher(TimeSource& time_source);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  uv_loop_t* loop() { return &loop_; }
  TimeSource& time_source() { return time_source_; }
  std::unique_ptr<Timer> CreateTimer(std::function<void()> callback) {
    return scheduler_->CreateTimer(std::move(callback));
  }
  // The time source's monotonic time as of this loop iteration: free to read, and what
  // timers count from. time_source() has the precise time.
  MonotonicTime ApproximateMonotonicTime() { return scheduler_->ApproximateMonotonicTime(); }

  // Runs `callback` on this dispatcher's thread soon. Thread-safe.
  void Post(std::function<void()> callback);
  // Runs `callback` on this thread after the current event is handled (same thread only).
  // Used to resume work or delete objects outside the call stack that asked for it.
  // Deferred work runs in the order it was deferred, whichever form deferred it.
  void Defer(std::function<void()> callback) {
    DeferCall(&RunOwnedCallback, new std::function<void()>(std::move(callback)));
  }
  // Defer() of `function(argument)`: the form that allocates nothing, for work deferred on
  // every request (write flushes, stream cleanup).
  using DeferredFunction = void (*)(void* argument);
  void DeferCall(DeferredFunction function, void* argument) {
    if (deferred_.empty()) uv_idle_start(&idle_, [](uv_idle_t*) {});
    deferred_.push_back({function, argument});
  }
  // Deletes `object` after the current event; its destructor never runs inside a callback of
  // its own.
  template <typename T>
  void DeferredDelete(std::unique_ptr<T> object) {
    DeferCall([](void* raw) { delete static_cast<T*>(raw); }, object.release());
  }
  // Runs before the loop blocks for I/O, once per iteration (flushes buffered logs).
  void AddPrepareCallback(std::function<void()> callback);
  // Runs at Exit(), before the handles close, in the order added: for objects that outlive
  // the loop's run (per-thread clients) to close their handles themselves while they may.
  void AddExitCallback(std::function<void()> callback);

  // Runs the loop until Exit() is called and every handle is closed.
  void Run();
  // Closes every handle (including the ones owned by objects still alive: they must not be
  // used afterwards) and lets Run() return.
  void Exit();

  // The shared queue for timeouts of `duration` on this loop (created on first use). The
  // few durations a request arms (route, idle, pool) hit a small recently-used cache first.
  TimeoutQueue& TimeoutQueueFor(std::chrono::milliseconds duration) {
    for (const RecentQueue& recent : recent_queues_) {
      if (recent.queue != nullptr && recent.duration == duration.count()) return *recent.queue;
    }
    return FindTimeoutQueue(duration);
  }

 private:
  static void OnAsync(uv_async_t* handle);
  static void OnCheck(uv_check_t* handle);
  static void OnPrepare(uv_prepare_t* handle);
  void RunDeferred();
  static void RunOwnedCallback(void* callback);
  // Frees the callbacks of deferred work that will never run.
  void FreeDeferred();
  TimeoutQueue& FindTimeoutQueue(std::chrono::milliseconds duration);

  TimeSource& time_source_;
  uv_loop_t loop_;
  std::unique_ptr<Scheduler> scheduler_;
  uv_async_t async_;
  uv_check_t check_;
  uv_idle_t idle_;  // Keeps the loop from blocking while deferred work is queued.
  uv_prepare_t prepare_;
  absl::Mutex posted_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(posted_mu_);
  struct DeferredCall {
    DeferredFunction function;
    void* argument;
  };
  std::vector<DeferredCall> deferred_;
  // The batch RunDeferred() is running; kept between iterations for its capacity.
  std::vector<DeferredCall> running_;
  std::vector<std::function<void()>> prepare_callbacks_;
  std::vector<std::function<void()>> exit_callbacks_;
  std::map<int64_t, std::unique_ptr<TimeoutQueue>> timeout_queues_;
  struct RecentQueue {
    int64_t duration = 0;
    TimeoutQueue* queue = nullptr;
  };
  std::array<RecentQueue, 4> recent_queues_;  // Into timeout_queues_; the next slot replaced.
  size_t next_recent_ = 0;
};

}  // namespace phoenix
