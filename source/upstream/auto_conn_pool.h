#pragma once

#include <deque>
#include <memory>

#include "source/common/dispatcher.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::upstream {

// The pool of a cluster with `protocol: AUTO`, for one host and one worker (Envoy's
// auto_config): the first connection's TLS handshake settles, by ALPN, whether the host
// speaks HTTP/2 ("h2") or HTTP/1.1 (anything else, or nothing agreed). That connection, the
// requests that waited for it and every later one then go to an Http2ConnPool or an
// Http1ConnPool, kept for this pool's lifetime; a config reload makes new pools, which ask
// again. Until then requests wait (max_pending_requests); a failed first connection fails
// them, and the next request tries again.
class AutoConnPool : public ConnectionPool, private network::ConnectionCallbacks {
 public:
  AutoConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
               HostSharedPtr host);
  ~AutoConnPool() override;

  // ConnectionPool
  void NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) override;
  void Cancel(PoolCallbacks& callbacks) override;
  Host& host() override { return *host_; }
  void Drain() override {
    if (pool_ != nullptr) pool_->Drain();
  }
  bool Idle() const override {
    return pool_ != nullptr ? pool_->Idle() : first_ == nullptr && waiting_.empty();
  }

 private:
  struct Waiter {
    http::ResponseDecoder* decoder;
    PoolCallbacks* callbacks;
  };

  // network::ConnectionCallbacks of the first connection, until it is handed over. Nothing
  // arrives before the handshake is done (kConnected), and the hand-over happens right then.
  void OnData(const char*, size_t) override {}
  void OnEvent(network::ConnectionEvent event) override;

  // The handshake is done: pick the protocol, hand the connection and the waiting requests
  // to the pool for it.
  void OnFirstConnected();
  void OnFirstConnectFailed(PoolCallbacks::Failure failure);

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::unique_ptr<network::TcpConnection> first_;  // Holds a connections breaker slot.
  std::unique_ptr<ConnectionPool> pool_;           // Once the protocol is known.
  std::deque<Waiter> waiting_;                     // Each holds a pending breaker slot.
};

}  // namespace phoenix::upstream
