#pragma once

#include <deque>
#include <list>
#include <memory>

#include "source/common/dispatcher.h"
#include "source/common/timeout_queue.h"
#include "source/http/http2_codec.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::upstream {

// The HTTP/2 pool of one host for one worker (Envoy's multiplexed pool): streams share few
// connections, each carrying up to the upstream's SETTINGS_MAX_CONCURRENT_STREAMS (capped by
// the cluster's http2_protocol_options); when every connection is full another is opened
// within max_connections, and requests wait (max_pending_requests) for room. A connection the
// upstream sent GOAWAY drains: no new streams, closed when its last stream ends. Idle
// connections close after the cluster's idle_timeout.
class Http2ConnPool : public ConnectionPool {
 public:
  Http2ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                HostSharedPtr host);
  ~Http2ConnPool() override;

  // ConnectionPool
  void NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) override;
  void Cancel(PoolCallbacks& callbacks) override;
  Host& host() override { return *host_; }
  void Drain() override;
  bool Idle() const override { return clients_.empty() && pending_.empty(); }

  // Takes a connection to the host that is already up (its TLS handshake agreed on h2), with
  // the connections breaker slot it holds: the first connection of an AutoConnPool.
  void Adopt(std::unique_ptr<network::TcpConnection> connected);

 private:
  // One connection with its codec (made once connected).
  class ActiveClient : public network::ConnectionCallbacks,
                       public TimeoutQueue::Entry,
                       public http::Http2ClientConnectionCallbacks {
   public:
    // Opens a connection to the pool's host, or takes over `connected`, which is up.
    ActiveClient(Http2ConnPool& pool, std::unique_ptr<network::TcpConnection> connected);
    ~ActiveClient() override;

    // Room for one more stream.
    bool HasRoom() const;

    // network::ConnectionCallbacks
    void OnData(const char* data, size_t length) override;
    void OnEvent(network::ConnectionEvent event) override;
    void OnAboveWriteBufferHighWatermark() override;
    void OnBelowWriteBufferLowWatermark() override;
    // TimeoutQueue::Entry: armed while the connection carries no stream.
    void OnTimeout() override;
    // http::Http2ClientConnectionCallbacks
    void OnProtocolError(std::string_view details) override;
    void OnStreamEnded() override;
    void OnGoAway() override;

    Http2ConnPool& pool_;
    std::shared_ptr<const ClusterInfo> cluster_;  // The destructor may run after the pool's.
    HostSharedPtr host_;
    std::unique_ptr<network::TcpConnection> connection_;
    std::unique_ptr<http::Http2ClientCodec> codec_;  // Once connected.
    bool draining_ = false;                          // GOAWAY, or closing.
    std::list<std::unique_ptr<ActiveClient>>::iterator self_;
  };

  struct Waiter {
    http::ResponseDecoder* decoder;
    PoolCallbacks* callbacks;
  };

  void OnConnected(ActiveClient& client);
  void OnConnectFailed(ActiveClient& client, bool timeout);
  // The connection closed or broke: its streams are reset, the client goes.
  void OnClientClosed(ActiveClient& client);
  void OnStreamEnded(ActiveClient& client);
  void Destroy(ActiveClient& client);
  // Opens a connection if the breaker allows; false if it does not.
  bool Connect();
  // A connected client with room, or null.
  ActiveClient* ClientWithRoom();
  // Streams that connecting clients will take once up (they are assumed to allow the
  // configured maximum until the upstream says otherwise).
  size_t ConnectingCapacity() const;
  void Attach(ActiveClient& client, Waiter waiter);
  // Gives waiting requests to clients with room, opening connections for the rest.
  void ServePending();
  void ServePendingLater();
  // Fails every waiting request (no connection can come for them).
  void FailPending(PoolCallbacks::Failure failure);

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::list<std::unique_ptr<ActiveClient>> clients_;
  // Requests waiting for room (each holds a max_pending_requests slot).
  std::deque<Waiter> pending_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // For deferred work.
};

}  // namespace phoenix::upstream
