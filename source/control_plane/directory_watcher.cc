#include "source/control_plane/directory_watcher.h"

namespace phoenix::control_plane {

DirectoryWatcher::DirectoryWatcher(std::string dir, DirectoryFingerprint initial,
                                   std::chrono::milliseconds interval,
                                   std::function<void()> on_change)
    : dir_(std::move(dir)),
      last_(std::move(initial)),
      interval_(interval),
      on_change_(std::move(on_change)),
      thread_([this] { Run(); }) {}

DirectoryWatcher::~DirectoryWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void DirectoryWatcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    DirectoryFingerprint now = FingerprintResourceFiles(dir_);
    if (now != last_) {
      last_ = std::move(now);
      on_change_();
    }
    lock.lock();
  }
}

}  // namespace phoenix::control_plane
