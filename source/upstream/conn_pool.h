#pragma once

#include <deque>
#include <list>
#include <memory>
#include <vector>

#include "source/common/dispatcher.h"
#include "source/common/timeout_queue.h"
#include "source/http/codec.h"
#include "source/http/http1_codec.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster.h"

namespace phoenix::upstream {

// What a pool tells the request waiting for a stream.
class PoolCallbacks {
 public:
  enum class Failure {
    kConnectFailed,
    kTimeout,
    kOverflow,  // The cluster's max_connections and max_pending_requests are both reached.
  };
  virtual ~PoolCallbacks() = default;
  // A stream is ready: send the request through `encoder`. Its response goes to the decoder
  // given to NewStream, its resets and watermarks to the callbacks set on encoder.stream().
  virtual void OnPoolReady(http::RequestEncoder& encoder) = 0;
  virtual void OnPoolFailure(Failure failure) = 0;
};

// Streams to one host for one worker (Envoy's ConnectionPool::Instance). One implementation
// per protocol behind this interface: HTTP/1 (one exchange per connection at a time) now,
// a multiplexed HTTP/2 pool next. A stream is handed back by completing it (both directions
// ended) or by resetting it through encoder.stream().
class ConnectionPool {
 public:
  virtual ~ConnectionPool() = default;
  // Asks for a stream whose response `decoder` hears. `callbacks` hears OnPoolReady or
  // OnPoolFailure, possibly before this returns, unless Cancel()ed first.
  virtual void NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) = 0;
  // Withdraws a request still waiting for its stream.
  virtual void Cancel(PoolCallbacks& callbacks) = 0;
  virtual Host& host() = 0;
  // Its host left the cluster (DNS): idle connections close now, the others once the
  // streams they carry end; requests already waiting are still served.
  virtual void Drain() = 0;
  // No connection open or being opened, no request waiting: it may be destroyed.
  virtual bool Idle() const = 0;
};

class Http1ConnPool;

// One keep-alive HTTP/1.1 connection to a host: carries one exchange at a time, and is the
// encoder and stream its user sees, so it knows when the exchange ends and the connection
// can go back to the pool.
class Http1ActiveClient : public network::ConnectionCallbacks,
                          public TimeoutQueue::Entry,
                          public http::ClientConnectionCallbacks,
                          public http::ResponseDecoder,
                          public http::RequestEncoder,
                          public http::Stream {
 public:
  // Opens a connection to the pool's host.
  Http1ActiveClient(Http1ConnPool& pool, Dispatcher& dispatcher);
  // Takes over a connection already up (see Http1ConnPool::Adopt).
  Http1ActiveClient(Http1ConnPool& pool, std::unique_ptr<network::TcpConnection> connected);
  ~Http1ActiveClient() override;

  // Starts an exchange whose response goes to `decoder`.
  void StartStream(http::ResponseDecoder& decoder);

  // network::ConnectionCallbacks
  void OnData(const char* data, size_t length) override;
  void OnEvent(network::ConnectionEvent event) override;
  void OnAboveWriteBufferHighWatermark() override;
  void OnBelowWriteBufferLowWatermark() override;
  // TimeoutQueue::Entry: armed while the connection sits idle in the pool.
  void OnTimeout() override;
  // http::ClientConnectionCallbacks
  void OnProtocolError(std::string_view details) override;
  // http::ResponseDecoder: forwarded to the stream's decoder; the end of the response ends
  // the exchange.
  void DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) override;
  void DecodeData(std::string_view data, bool end_stream) override;
  void DecodeTrailers(http::HeaderMap trailers) override;
  // http::RequestEncoder
  void EncodeHeaders(const http::RequestHeaders& headers, bool end_stream) override;
  void EncodeData(std::string_view data, bool end_stream) override;
  void EncodeTrailers(const http::HeaderMap& trailers) override;
  http::Stream& stream() override { return *this; }
  // http::Stream
  void SetCallbacks(http::StreamCallbacks* callbacks) override { stream_callbacks_ = callbacks; }
  void ResetStream() override;
  void ReadDisable(bool disable) override;

 private:
  friend class Http1ConnPool;

  void CountOpened();
  // The response ended: hand the connection back once the request is sent too.
  void OnResponseComplete();
  // Ends the exchange with a reset: tells the stream's user, then drops the connection.
  void ResetWith(http::StreamResetReason reason);
  void Detach();

  Http1ConnPool& pool_;
  // Kept so the destructor (deferred, possibly after the pool is gone) can account.
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::unique_ptr<network::TcpConnection> connection_;
  http::Http1ClientCodec codec_;
  http::ResponseDecoder* decoder_ = nullptr;  // The exchange in progress, if any.
  http::StreamCallbacks* stream_callbacks_ = nullptr;
  bool connected_ = false;
  bool response_complete_ = false;
  bool started_ = false;  // Has carried an exchange (a fresh connection is clean).
  std::list<std::unique_ptr<Http1ActiveClient>>::iterator self_;
};

// The HTTP/1 pool: reuses idle keep-alive connections, opens new ones on demand within the
// cluster's max_connections, queues requests (max_pending_requests) for a released one,
// and keeps at most max_idle_per_host idle.
class Http1ConnPool : public ConnectionPool {
 public:
  Http1ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                HostSharedPtr host);
  ~Http1ConnPool() override;

  // ConnectionPool
  void NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) override;
  void Cancel(PoolCallbacks& callbacks) override;
  Host& host() override { return *host_; }
  void Drain() override;
  bool Idle() const override { return clients_.empty() && pending_.empty(); }

  // Takes a connection to the host that is already up (its TLS handshake done) and idle,
  // with the connections breaker slot it holds: the first connection of an AutoConnPool.
  void Adopt(std::unique_ptr<network::TcpConnection> connected);

  const ClusterInfo& cluster() const { return *cluster_; }
  const std::shared_ptr<const ClusterInfo>& cluster_ptr() const { return cluster_; }

 private:
  friend class Http1ActiveClient;
  struct Waiter {
    http::ResponseDecoder* decoder;
    PoolCallbacks* callbacks;
  };

  void OnConnected(Http1ActiveClient& client);
  void OnConnectFailed(Http1ActiveClient& client, bool timeout);
  // The exchange on `client` ended; reuse the connection if it is clean, else close it.
  void Release(Http1ActiveClient& client);
  void OnIdleClientClosed(Http1ActiveClient& client);
  void Destroy(Http1ActiveClient& client);
  // Opens a connection for `waiter`; the caller holds a connection breaker slot.
  void Connect(Waiter waiter);
  // An idle connection that is still open, or null.
  Http1ActiveClient* TakeIdle();
  void Attach(Http1ActiveClient& client, Waiter waiter);
  // Gives idle connections to waiting requests.
  void ServePending();

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::list<std::unique_ptr<Http1ActiveClient>> clients_;
  std::vector<Http1ActiveClient*> idle_;
  // Connections being opened, each for one waiting request (callbacks null: cancelled).
  std::vector<std::pair<Http1ActiveClient*, Waiter>> connecting_;
  // Requests waiting for a connection to be released (each holds a pending breaker slot).
  std::deque<Waiter> pending_;
  bool draining_ = false;  // Drain(): no connection is kept idle.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // For deferred work.
};

}  // namespace phoenix::upstream
