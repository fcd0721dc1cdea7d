#pragma once

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "source/common/dispatcher.h"
#include "source/http/connection_manager.h"
#include "source/server/configuration.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::server {

// One worker thread: its own libuv loop, listening sockets (SO_REUSEPORT), downstream
// connections and upstream pools. Shares nothing mutable with other workers; the main
// thread talks to it only by posting closures to its dispatcher.
class Worker : public http::WorkerContext {
 public:
  Worker(int index, TimeSource& time_source);
  ~Worker() override;

  void Start();
  // Thread-safe: applies `snapshot` on the worker thread.
  void PostSnapshot(std::shared_ptr<const ConfigSnapshot> snapshot);
  // Thread-safe: stop accepting, finish in-flight requests, close connections as they idle.
  void PostDrain();
  // Thread-safe: close everything and end the thread; then Join().
  void PostStop();
  void Join();
  // Downstream connections still open (read from any thread).
  int64_t active_connections() const { return active_connections_.load(); }

  // http::WorkerContext
  Dispatcher& dispatcher() override { return dispatcher_; }
  bool draining() const override { return draining_; }
  uint64_t Random() override { return random_(); }
  void OnConnectionClosed(http::ConnectionManager* connection) override;

 private:
  struct ActiveListener;

  void ApplySnapshot(const std::shared_ptr<const ConfigSnapshot>& snapshot);
  void OnAccept(ActiveListener& listener);

  int index_;
  Dispatcher dispatcher_;
  upstream::ClusterManager cluster_manager_;
  std::thread thread_;
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveListener>> listeners_;
  absl::flat_hash_map<http::ConnectionManager*, std::unique_ptr<http::ConnectionManager>>
      connections_;
  std::atomic<int64_t> active_connections_{0};
  bool draining_ = false;
  std::mt19937_64 random_;
};

}  // namespace phoenix::server
