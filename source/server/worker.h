#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/dispatcher.h"
#include "source/common/random.h"
#include "source/config/snapshot.h"
#include "source/http/connection_manager.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster_manager.h"

namespace phoenix::server {

// Listening sockets for one listener address: one SO_REUSEPORT socket per worker, bound on
// the main thread so a bad address rejects the config instead of failing in a worker.
struct ListenerSockets {
  ListenerSockets() = default;
  ListenerSockets(const ListenerSockets&) = delete;
  ListenerSockets& operator=(const ListenerSockets&) = delete;
  // Closes each socket no worker took (a snapshot replaced before the workers got it, a
  // config that failed to bind its other listeners).
  ~ListenerSockets();

  // Adds worker i's socket (i = fds.size()), before any worker sees this.
  void Add(int fd) {
    fds.push_back(fd);
    taken.emplace_back(false);
  }

  std::string address;
  std::vector<int> fds;  // fds[i] belongs to worker i, which takes ownership.
  // taken[i]: worker i's listener handle owns fds[i] (and closes it). Each worker writes
  // only its own.
  std::deque<std::atomic<bool>> taken;
};
using ListenerSocketsList = std::vector<std::shared_ptr<ListenerSockets>>;

// One worker thread: its own libuv loop, listening sockets (SO_REUSEPORT), downstream
// connections and upstream pools. Shares nothing mutable with other workers; the main
// thread talks to it only by posting closures to its dispatcher.
class Worker : public http::WorkerContext {
 public:
  // `shedding` (the overload manager's, outliving the worker) says when to shed load.
  Worker(int index, TimeSource& time_source, const std::atomic<bool>& shedding);
  ~Worker() override;

  void Start();
  // Thread-safe: applies `snapshot` on the worker thread; `sockets[i]` serves
  // snapshot->listeners[i].
  void PostSnapshot(std::shared_ptr<const config::ConfigSnapshot> snapshot,
                    ListenerSocketsList sockets);
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
  bool shedding_load() const override { return shedding_.load(std::memory_order_relaxed); }
  uint64_t Random() override { return random_(); }
  void OnConnectionClosed(http::ConnectionManager* connection) override;

 private:
  struct ActiveListener;
  class PendingConnection;

  // Connections whose listener or filter chain the snapshot in force no longer has (their
  // ListenerState is retired) drain, as a replaced listener's connections do in Envoy: each
  // closes after its next response (HTTP/1 connection: close; HTTP/2 GOAWAY at once), and
  // those still open when the drain timeout passes (counted from the first such snapshot)
  // are cut then.
  void DrainConnectionsOfRemovedChains(std::chrono::milliseconds drain_timeout);
  // The connections serving under a retired listener state.
  std::vector<http::ConnectionManager*> OrphanedConnections() const;
  void ApplySnapshot(const config::ConfigSnapshot& snapshot, const ListenerSocketsList& sockets);
  void OnAccept(ActiveListener& listener);
  // Serves `connection` with the connection manager of the chain whose state is `state`.
  void Serve(std::unique_ptr<network::TcpConnection> connection,
             std::shared_ptr<http::ListenerState> state);
  // Accepts a connection whose chain is chosen by its ClientHello.
  void AcceptByClientHello(ActiveListener& listener, uv_tcp_t* handle);

  int index_;
  Dispatcher dispatcher_;
  upstream::ClusterManager cluster_manager_;
  std::thread thread_;
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveListener>> listeners_;
  absl::flat_hash_map<http::ConnectionManager*, std::unique_ptr<http::ConnectionManager>>
      connections_;
  // Connections whose ClientHello has not chosen their filter chain yet.
  absl::flat_hash_map<PendingConnection*, std::unique_ptr<PendingConnection>> pending_;
  std::atomic<int64_t> active_connections_{0};
  bool draining_ = false;
  // Closes the orphaned connections still open when the drain timeout passes.
  std::unique_ptr<Timer> orphan_drain_timer_;
  const std::atomic<bool>& shedding_;
  FastRandom random_;
};

}  // namespace phoenix::server
