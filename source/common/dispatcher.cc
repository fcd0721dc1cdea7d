#include "source/common/dispatcher.h"

#include "source/common/timeout_queue.h"

namespace phoenix {

Dispatcher::Dispatcher(TimeSource& time_source) : time_source_(time_source) {
  uv_loop_init(&loop_);
  loop_.data = this;
  scheduler_ = time_source_.CreateScheduler(&loop_);
  uv_async_init(&loop_, &async_, &Dispatcher::OnAsync);
  async_.data = this;
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, &Dispatcher::OnCheck);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_idle_init(&loop_, &idle_);
  uv_prepare_init(&loop_, &prepare_);
  prepare_.data = this;
  uv_prepare_start(&prepare_, &Dispatcher::OnPrepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
}

TimeoutQueue& Dispatcher::FindTimeoutQueue(std::chrono::milliseconds duration) {
  auto& queue = timeout_queues_[duration.count()];
  if (queue == nullptr) queue = std::make_unique<TimeoutQueue>(*this, duration);
  recent_queues_[next_recent_] = RecentQueue{duration.count(), queue.get()};
  next_recent_ = (next_recent_ + 1) % recent_queues_.size();
  return *queue;
}

Dispatcher::~Dispatcher() {
  FreeDeferred();
  recent_queues_ = {};
  timeout_queues_.clear();
  // Exit() has closed every handle, unless the loop never ran (a server that failed to start
  // before its workers did): close what is left. Then let the loop process the closes.
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);
  FreeDeferred();  // What the closes deferred; the loop is still open for their destructors.
  uv_loop_close(&loop_);
}

void Dispatcher::FreeDeferred() {
  // Work deferred after Exit() never runs; its callbacks are freed, also any their
  // destructors defer (objects handed to DeferredDelete are left, as their destructors may
  // reach into what is gone).
  while (!deferred_.empty()) {
    std::vector<DeferredCall> left;
    left.swap(deferred_);
    for (const DeferredCall& call : left) {
      if (call.function == &RunOwnedCallback) {
        delete static_cast<std::function<void()>*>(call.argument);
      }
    }
  }
}

void Dispatcher::Post(std::function<void()> callback) {
  {
    absl::MutexLock lock(&posted_mu_);
    posted_.push_back(std::move(callback));
  }
  uv_async_send(&async_);
}

void Dispatcher::RunOwnedCallback(void* callback) {
  std::unique_ptr<std::function<void()>> owned(static_cast<std::function<void()>*>(callback));
  (*owned)();
}

void Dispatcher::AddPrepareCallback(std::function<void()> callback) {
  prepare_callbacks_.push_back(std::move(callback));
}

void Dispatcher::AddExitCallback(std::function<void()> callback) {
  exit_callbacks_.push_back(std::move(callback));
}

void Dispatcher::OnAsync(uv_async_t* handle) {
  auto* self = static_cast<Dispatcher*>(handle->data);
  std::vector<std::function<void()>> posted;
  {
    absl::MutexLock lock(&self->posted_mu_);
    posted.swap(self->posted_);
  }
  for (auto& callback : posted) callback();
  self->RunDeferred();
}

void Dispatcher::OnCheck(uv_check_t* handle) {
  static_cast<Dispatcher*>(handle->data)->RunDeferred();
}

void Dispatcher::OnPrepare(uv_prepare_t* handle) {
  auto* self = static_cast<Dispatcher*>(handle->data);
  self->RunDeferred();
  for (auto& callback : self->prepare_callbacks_) callback();
}

void Dispatcher::RunDeferred() {
  // Deferred work may defer more; run until the queue is empty.
  // Both vectors keep their capacity, so a busy loop defers without allocating. A nested
  // call (a deferred callback that runs the loop's deferred work itself) gets its own batch.
  while (!deferred_.empty()) {
    std::vector<DeferredCall> batch;
    batch.swap(running_);
    batch.swap(deferred_);
    for (const DeferredCall& call : batch) call.function(call.argument);
    batch.clear();
    if (running_.capacity() < batch.capacity()) batch.swap(running_);
  }
  uv_idle_stop(&idle_);
}

void Dispatcher::Run() { uv_run(&loop_, UV_RUN_DEFAULT); }

void Dispatcher::Exit() {
  std::vector<std::function<void()>> exit_callbacks;
  exit_callbacks.swap(exit_callbacks_);
  for (auto& callback : exit_callbacks) callback();
  RunDeferred();
  recent_queues_ = {};
  timeout_queues_.clear();
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
}

}  // namespace phoenix
