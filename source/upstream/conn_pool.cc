#include "source/upstream/conn_pool.h"

#include <algorithm>

#include "source/common/logging.h"

namespace phoenix::upstream {

UpstreamClient::UpstreamClient(Http1ConnPool& pool, Dispatcher& dispatcher)
    : pool_(pool),
      cluster_(pool.cluster_ptr()),
      host_(pool.host_),
      connection_(network::TcpConnection::Connect(
          dispatcher, pool.host().address(), pool.cluster().connect_timeout(), 1024 * 1024, this,
          pool.cluster().transport_socket_factory().Create())),
      codec_(*connection_, *this) {
  pool.host().cx_total.fetch_add(1, std::memory_order_relaxed);
  pool.host().cx_active.fetch_add(1, std::memory_order_relaxed);
  pool.cluster().stats().upstream_cx_total.Inc();
  pool.cluster().stats().upstream_cx_active.Inc();
}

UpstreamClient::~UpstreamClient() {
  host_->cx_active.fetch_sub(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_active.Dec();
  cluster_->stats().upstream_cx_destroy.Inc();
}

Host& UpstreamClient::host() { return pool_.host(); }

void UpstreamClient::OnData(const char* data, size_t length) {
  if (stream_ == nullptr) {
    // Bytes on an idle connection: the upstream is confused or closing. Drop it.
    pool_.OnIdleClientClosed(*this);
    return;
  }
  codec_.Dispatch(data, length);
}

void UpstreamClient::OnEvent(network::ConnectionEvent event) {
  switch (event) {
    case network::ConnectionEvent::kConnected:
      connected_ = true;
      pool_.OnConnected(*this);
      return;
    case network::ConnectionEvent::kConnectFailed:
      pool_.OnConnectFailed(*this, false);
      return;
    case network::ConnectionEvent::kRemoteClose:
      if (!connected_) {
        pool_.OnConnectFailed(*this, false);
        return;
      }
      if (stream_ == nullptr) {
        pool_.OnIdleClientClosed(*this);
        return;
      }
      UpstreamStreamCallbacks* stream = stream_;
      // May complete a read-to-close response (which detaches the stream).
      if (!codec_.OnConnectionClosed() && stream_ == stream) stream->OnUpstreamReset();
      return;
  }
}

void UpstreamClient::OnAboveWriteBufferHighWatermark() {
  if (stream_ != nullptr) stream_->OnUpstreamAboveWriteBufferHighWatermark();
}

void UpstreamClient::OnBelowWriteBufferLowWatermark() {
  if (stream_ != nullptr) stream_->OnUpstreamBelowWriteBufferLowWatermark();
}

void UpstreamClient::OnResponseHeaders(http::ResponseHeadersPtr headers, bool end_stream) {
  if (stream_ != nullptr) stream_->OnResponseHeaders(std::move(headers), end_stream);
}

void UpstreamClient::OnResponseData(std::string_view data, bool end_stream) {
  if (stream_ != nullptr) stream_->OnResponseData(data, end_stream);
}

void UpstreamClient::OnResponseTrailers(http::HeaderMap trailers) {
  if (stream_ != nullptr) stream_->OnResponseTrailers(std::move(trailers));
}

void UpstreamClient::OnResponseProtocolError(std::string_view details) {
  PHX_LOG(kDebug, "upstream ", pool_.host().address_string(),
          " protocol error: ", AbslView(details));
  if (stream_ != nullptr) stream_->OnResponseProtocolError(details);
}

Http1ConnPool::Http1ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                             HostSharedPtr host)
    : dispatcher_(dispatcher), cluster_(cluster), host_(std::move(host)) {}

Http1ConnPool::~Http1ConnPool() {
  // Streams hold the cluster (and so this pool) alive; only idle connections remain here.
  for (auto& client : clients_) {
    client->idle_timer_.reset();
    client->connection_->Close();
    dispatcher_.DeferredDelete(std::move(client));
    cluster_->breakers().connections.Release();
  }
  for (size_t i = 0; i < pending_.size(); ++i) cluster_->breakers().pending.Release();
}

Http1ConnPool::Result Http1ConnPool::NewStream(PoolCallbacks& callbacks, UpstreamClient** ready) {
  while (!idle_.empty()) {
    UpstreamClient* client = idle_.back();
    idle_.pop_back();
    client->idle_timer_->Disable();
    if (client->connection_->closed()) {
      Destroy(*client);
      continue;
    }
    client->codec_.Reset();
    cluster_->stats().upstream_cx_reuse.Inc();
    *ready = client;
    return Result::kReady;
  }
  CircuitBreakers& breakers = cluster_->breakers();
  if (breakers.connections.TryAcquire()) {
    Connect(&callbacks);
    return Result::kWaiting;
  }
  if (breakers.pending.TryAcquire()) {
    pending_.push_back(&callbacks);
    return Result::kWaiting;
  }
  return Result::kOverflow;
}

void Http1ConnPool::Connect(PoolCallbacks* callbacks) {
  clients_.push_front(std::make_unique<UpstreamClient>(*this, dispatcher_));
  UpstreamClient* client = clients_.front().get();
  client->self_ = clients_.begin();
  connecting_.emplace_back(client, callbacks);
}

void Http1ConnPool::Cancel(PoolCallbacks& callbacks) {
  if (auto it = std::find(pending_.begin(), pending_.end(), &callbacks); it != pending_.end()) {
    pending_.erase(it);
    cluster_->breakers().pending.Release();
    return;
  }
  for (auto it = connecting_.begin(); it != connecting_.end(); ++it) {
    if (it->second == &callbacks) {
      // Keep the connection: once up, it becomes an idle one for the next request.
      it->second = nullptr;
      return;
    }
  }
}

void Http1ConnPool::OnConnected(UpstreamClient& client) {
  auto it = std::find_if(connecting_.begin(), connecting_.end(),
                         [&](const auto& entry) { return entry.first == &client; });
  if (it == connecting_.end()) return;
  PoolCallbacks* callbacks = it->second;
  connecting_.erase(it);
  if (callbacks == nullptr) {
    Release(client);
    return;
  }
  callbacks->OnPoolReady(client);
}

void Http1ConnPool::OnConnectFailed(UpstreamClient& client, bool timeout) {
  host_->cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_connect_fail.Inc();
  auto it = std::find_if(connecting_.begin(), connecting_.end(),
                         [&](const auto& entry) { return entry.first == &client; });
  PoolCallbacks* callbacks = nullptr;
  if (it != connecting_.end()) {
    callbacks = it->second;
    connecting_.erase(it);
  }
  Destroy(client);
  if (callbacks != nullptr) {
    callbacks->OnPoolFailure(timeout ? PoolCallbacks::Failure::kTimeout
                                     : PoolCallbacks::Failure::kConnectFailed);
  }
}

void Http1ConnPool::Release(UpstreamClient& client) {
  client.stream_ = nullptr;
  bool reusable = client.connected_ && !client.connection_->closed() && client.codec_.reusable() &&
                  idle_.size() < cluster_->max_idle_per_host();
  if (!reusable) {
    client.connection_->Close();
    Destroy(client);
    return;
  }
  client.connection_->ReadDisable(false);
  if (client.idle_timer_ == nullptr) {
    client.idle_timer_ = dispatcher_.CreateTimer([this, &client] { OnIdleClientClosed(client); });
  }
  client.idle_timer_->Enable(cluster_->idle_timeout());
  idle_.push_back(&client);
  if (!pending_.empty()) {
    // A request is waiting for a connection. Hand this one over outside the current call
    // stack, which may be this connection's own parser.
    dispatcher_.Defer([this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) ServePending();
    });
  }
}

void Http1ConnPool::ServePending() {
  while (!pending_.empty()) {
    PoolCallbacks* waiter = pending_.front();
    UpstreamClient* client = nullptr;
    while (!idle_.empty() && client == nullptr) {
      client = idle_.back();
      idle_.pop_back();
      client->idle_timer_->Disable();
      if (client->connection_->closed()) {
        Destroy(*client);
        client = nullptr;
      }
    }
    if (client == nullptr) return;
    pending_.pop_front();
    cluster_->breakers().pending.Release();
    client->codec_.Reset();
    cluster_->stats().upstream_cx_reuse.Inc();
    waiter->OnPoolReady(*client);
  }
}

void Http1ConnPool::OnIdleClientClosed(UpstreamClient& client) {
  auto it = std::find(idle_.begin(), idle_.end(), &client);
  if (it != idle_.end()) idle_.erase(it);
  client.connection_->Close();
  Destroy(client);
}

void Http1ConnPool::Destroy(UpstreamClient& client) {
  client.stream_ = nullptr;
  auto it = std::find(idle_.begin(), idle_.end(), &client);
  if (it != idle_.end()) idle_.erase(it);
  std::unique_ptr<UpstreamClient> owned = std::move(*client.self_);
  clients_.erase(client.self_);
  // We may be inside one of the client's own callbacks.
  dispatcher_.DeferredDelete(std::move(owned));
  CircuitBreakers& breakers = cluster_->breakers();
  breakers.connections.Release();
  // The freed connection slot goes to the oldest waiting request.
  if (!pending_.empty() && breakers.connections.TryAcquire()) {
    PoolCallbacks* waiter = pending_.front();
    pending_.pop_front();
    breakers.pending.Release();
    Connect(waiter);
  }
}

}  // namespace phoenix::upstream
