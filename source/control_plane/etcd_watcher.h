#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace phoenix::control_plane {

// Keeps an etcd watch on one key range open, on its own thread, and calls `on_change` for
// every batch of events and each time the watch is (re)established (what happened while it
// was down is not known, so the caller reads again). A lost stream (etcd down, a member gone)
// is logged and opened again on the next endpoint, after a back-off from 100 ms doubling to
// 5 s, until the watcher is destroyed.
class EtcdWatcher {
 public:
  // `endpoints` as EtcdClient takes them (checked); each stream gets a new channel.
  EtcdWatcher(std::vector<std::string> endpoints, std::string key, std::string range_end,
              std::function<void()> on_change);
  ~EtcdWatcher();  // Cancels the stream and joins the thread.

 private:
  void Run();
  // One stream on channel `at`, until it fails or the watcher stops; whether it got as far
  // as a created watch.
  bool WatchOnce(size_t at);
  // Waits `delay` unless stopped first; false when stopped.
  bool Wait(std::chrono::milliseconds delay);

  const std::vector<std::string> endpoints_;
  const std::string key_;
  const std::string range_end_;
  const std::function<void()> on_change_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                   // Guarded by mu_.
  grpc::ClientContext* context_ = nullptr;  // The open stream's, to cancel it; mu_.
  std::thread thread_;
};

}  // namespace phoenix::control_plane
