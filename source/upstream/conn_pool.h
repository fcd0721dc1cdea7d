#pragma once

#include <deque>
#include <list>
#include <memory>

#include "source/common/dispatcher.h"
#include "source/http/http1_codec.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster.h"

namespace phoenix::upstream {

class Http1ConnPool;

// What the router implements to receive one upstream exchange.
class UpstreamStreamCallbacks : public http::ClientCodecCallbacks {
 public:
  // The connection closed before the response completed (reset) — not called after
  // OnResponseProtocolError.
  virtual void OnUpstreamReset() = 0;
  virtual void OnUpstreamAboveWriteBufferHighWatermark() = 0;
  virtual void OnUpstreamBelowWriteBufferLowWatermark() = 0;
};

// One keep-alive HTTP/1.1 connection to a host. Carries one exchange at a time.
class UpstreamClient : public network::ConnectionCallbacks, public http::ClientCodecCallbacks {
 public:
  UpstreamClient(Http1ConnPool& pool, Dispatcher& dispatcher);
  ~UpstreamClient() override;

  // Routes the next response to `stream` (null: detached).
  void Attach(UpstreamStreamCallbacks* stream) { stream_ = stream; }
  http::Http1ClientCodec& codec() { return codec_; }
  network::Connection& connection() { return *connection_; }
  Host& host();

  // network::ConnectionCallbacks
  void OnData(const char* data, size_t length) override;
  void OnEvent(network::ConnectionEvent event) override;
  void OnAboveWriteBufferHighWatermark() override;
  void OnBelowWriteBufferLowWatermark() override;
  // http::ClientCodecCallbacks: forwarded to the attached stream.
  void OnResponseHeaders(http::ResponseHeadersPtr headers, bool end_stream) override;
  void OnResponseData(std::string_view data, bool end_stream) override;
  void OnResponseTrailers(http::HeaderMap trailers) override;
  void OnResponseProtocolError(std::string_view details) override;

 private:
  friend class Http1ConnPool;

  Http1ConnPool& pool_;
  // Kept so the destructor (deferred, possibly after the pool is gone) can account.
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::unique_ptr<network::TcpConnection> connection_;
  http::Http1ClientCodec codec_;
  UpstreamStreamCallbacks* stream_ = nullptr;
  std::unique_ptr<Timer> idle_timer_;
  bool connected_ = false;
  std::list<std::unique_ptr<UpstreamClient>>::iterator self_;
};

// What the pool tells a waiting request.
class PoolCallbacks {
 public:
  enum class Failure { kConnectFailed, kTimeout };
  virtual ~PoolCallbacks() = default;
  virtual void OnPoolReady(UpstreamClient& client) = 0;
  virtual void OnPoolFailure(Failure failure) = 0;
};

// Per-worker connections to one host: reuses idle keep-alive connections, opens new ones
// on demand, keeps at most max_idle_per_host idle ones.
class Http1ConnPool {
 public:
  Http1ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                HostSharedPtr host);
  ~Http1ConnPool();

  enum class Result {
    kReady,     // *ready is an idle connection to use now.
    kWaiting,   // `callbacks` hears OnPoolReady or OnPoolFailure later (unless Cancel()ed).
    kOverflow,  // The cluster's max_connections and max_pending_requests are both reached.
  };
  // Reuses an idle connection, opens one, or queues the request for a connection being
  // released (while the cluster is at max_connections).
  Result NewStream(PoolCallbacks& callbacks, UpstreamClient** ready);
  void Cancel(PoolCallbacks& callbacks);
  // The stream is done with `client`: reuse it if the exchange left it clean, else close.
  void Release(UpstreamClient& client);

  const ClusterInfo& cluster() const { return *cluster_; }
  const std::shared_ptr<const ClusterInfo>& cluster_ptr() const { return cluster_; }
  Host& host() { return *host_; }
  Dispatcher& dispatcher() { return dispatcher_; }

 private:
  friend class UpstreamClient;
  void OnConnected(UpstreamClient& client);
  void OnConnectFailed(UpstreamClient& client, bool timeout);
  void OnIdleClientClosed(UpstreamClient& client);
  void Destroy(UpstreamClient& client);
  // Opens a connection for `callbacks`; the caller holds a connection breaker slot.
  void Connect(PoolCallbacks* callbacks);
  // Gives idle connections to waiting requests.
  void ServePending();

  Dispatcher& dispatcher_;
  std::shared_ptr<const ClusterInfo> cluster_;
  HostSharedPtr host_;
  std::list<std::unique_ptr<UpstreamClient>> clients_;
  std::vector<UpstreamClient*> idle_;
  // Connections being opened, each for one waiting request.
  std::vector<std::pair<UpstreamClient*, PoolCallbacks*>> connecting_;
  // Requests waiting for a connection to be released (each holds a pending breaker slot).
  std::deque<PoolCallbacks*> pending_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // For deferred work.
};

}  // namespace phoenix::upstream
