#include "source/upstream/http2_conn_pool.h"

#include <algorithm>

#include "source/common/logging.h"

namespace phoenix::upstream {

Http2ConnPool::ActiveClient::ActiveClient(Http2ConnPool& pool,
                                          std::unique_ptr<network::TcpConnection> connected)
    : pool_(pool),
      cluster_(pool.cluster_),
      host_(pool.host_),
      connection_(connected != nullptr ? std::move(connected)
                                       : network::TcpConnection::Connect(
                                             pool.dispatcher_, pool.host_->address().get(),
                                             pool.cluster_->connect_timeout(), 1024 * 1024, this,
                                             pool.cluster_->transport_socket_factory().Create())) {
  connection_->SetCallbacks(this);
  host_->cx_total.fetch_add(1, std::memory_order_relaxed);
  host_->cx_active.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_total.Inc();
  cluster_->stats().upstream_cx_active.Inc();
}

Http2ConnPool::ActiveClient::~ActiveClient() {
  codec_.reset();
  host_->cx_active.fetch_sub(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_active.Dec();
  cluster_->stats().upstream_cx_destroy.Inc();
}

bool Http2ConnPool::ActiveClient::HasRoom() const {
  return codec_ != nullptr && !draining_ && codec_->reusable() &&
         codec_->active_streams() < codec_->max_concurrent_streams();
}

void Http2ConnPool::ActiveClient::OnData(const char* data, size_t length) {
  if (codec_ != nullptr) codec_->Dispatch(data, length);
}

void Http2ConnPool::ActiveClient::OnEvent(network::ConnectionEvent event) {
  switch (event) {
    case network::ConnectionEvent::kConnected: {
      std::string_view scheme =
          cluster_->transport_socket_factory().ImplementsSecureTransport() ? "https" : "http";
      codec_ = std::make_unique<http::Http2ClientCodec>(*connection_, *this,
                                                        cluster_->http2_options(), scheme);
      pool_.OnConnected(*this);
      return;
    }
    case network::ConnectionEvent::kConnectFailed:
      pool_.OnConnectFailed(*this, /*timeout=*/false);
      return;
    case network::ConnectionEvent::kConnectTimeout:
      pool_.OnConnectFailed(*this, /*timeout=*/true);
      return;
    case network::ConnectionEvent::kRemoteClose:
      if (codec_ == nullptr) {
        pool_.OnConnectFailed(*this, /*timeout=*/false);
        return;
      }
      pool_.OnClientClosed(*this);
      return;
  }
}

void Http2ConnPool::ActiveClient::OnAboveWriteBufferHighWatermark() {
  if (codec_ != nullptr) codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
}

void Http2ConnPool::ActiveClient::OnBelowWriteBufferLowWatermark() {
  if (codec_ != nullptr) codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
}

void Http2ConnPool::ActiveClient::OnTimeout() {
  connection_->Close();
  pool_.Destroy(*this);
}

void Http2ConnPool::ActiveClient::OnProtocolError(std::string_view details) {
  PHX_LOG(kDebug, "upstream ", host_->address_string(), " http2 error: ", AbslView(details));
  pool_.OnClientClosed(*this);
}

void Http2ConnPool::ActiveClient::OnStreamEnded() { pool_.OnStreamEnded(*this); }

void Http2ConnPool::ActiveClient::OnGoAway() {
  draining_ = true;
  if (codec_->active_streams() == 0) {
    connection_->CloseAfterFlush();
    pool_.Destroy(*this);
  }
  // Requests waiting for room here need another connection.
  pool_.ServePendingLater();
}

Http2ConnPool::Http2ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                             HostSharedPtr host)
    : dispatcher_(dispatcher), cluster_(std::move(cluster)), host_(std::move(host)) {}

Http2ConnPool::~Http2ConnPool() {
  // Streams hold the cluster (and so this pool) alive; only idle connections remain here.
  for (auto& client : clients_) {
    client->Disarm();
    client->connection_->Close();
    dispatcher_.DeferredDelete(std::move(client));
    cluster_->breakers().connections.Release();
  }
  for (size_t i = 0; i < pending_.size(); ++i) cluster_->breakers().pending.Release();
}

Http2ConnPool::ActiveClient* Http2ConnPool::ClientWithRoom() {
  for (auto& client : clients_) {
    if (client->HasRoom()) return client.get();
  }
  return nullptr;
}

size_t Http2ConnPool::ConnectingCapacity() const {
  size_t capacity = 0;
  for (const auto& client : clients_) {
    if (client->codec_ == nullptr) capacity += cluster_->http2_options().max_concurrent_streams;
  }
  return capacity;
}

void Http2ConnPool::Attach(ActiveClient& client, Waiter waiter) {
  client.Disarm();
  if (client.codec_->active_streams() > 0) cluster_->stats().upstream_cx_reuse.Inc();
  http::RequestEncoder& encoder = client.codec_->NewStream(*waiter.decoder);
  waiter.callbacks->OnPoolReady(encoder);
}

void Http2ConnPool::NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) {
  if (pending_.empty()) {
    if (ActiveClient* client = ClientWithRoom()) {
      Attach(*client, {&decoder, &callbacks});
      return;
    }
  }
  CircuitBreakers& breakers = cluster_->breakers();
  if (!breakers.pending.TryAcquire()) {
    callbacks.OnPoolFailure(PoolCallbacks::Failure::kOverflow);
    return;
  }
  pending_.push_back({&decoder, &callbacks});
  if (ConnectingCapacity() < pending_.size() && !Connect() && clients_.empty()) {
    // No connection may be opened and none exists: nothing will ever serve this request.
    pending_.pop_back();
    breakers.pending.Release();
    callbacks.OnPoolFailure(PoolCallbacks::Failure::kOverflow);
  }
}

bool Http2ConnPool::Connect() {
  if (!cluster_->breakers().connections.TryAcquire()) return false;
  clients_.push_back(std::make_unique<ActiveClient>(*this, nullptr));
  clients_.back()->self_ = std::prev(clients_.end());
  return true;
}

void Http2ConnPool::Adopt(std::unique_ptr<network::TcpConnection> connected) {
  clients_.push_back(std::make_unique<ActiveClient>(*this, std::move(connected)));
  ActiveClient& client = *clients_.back();
  client.self_ = std::prev(clients_.end());
  client.OnEvent(network::ConnectionEvent::kConnected);
}

void Http2ConnPool::Cancel(PoolCallbacks& callbacks) {
  auto waiting = std::find_if(pending_.begin(), pending_.end(),
                              [&](const Waiter& w) { return w.callbacks == &callbacks; });
  if (waiting == pending_.end()) return;
  pending_.erase(waiting);
  cluster_->breakers().pending.Release();
}

void Http2ConnPool::OnConnected(ActiveClient& client) {
  if (!pending_.empty()) {
    ServePending();
    return;
  }
  // Opened for requests that went elsewhere or were cancelled: idle until used.
  dispatcher_.TimeoutQueueFor(cluster_->idle_timeout()).Arm(client);
}

void Http2ConnPool::ServePending() {
  while (!pending_.empty()) {
    ActiveClient* client = ClientWithRoom();
    if (client == nullptr) break;
    Waiter waiter = pending_.front();
    pending_.pop_front();
    cluster_->breakers().pending.Release();
    Attach(*client, waiter);
  }
  // More waiting than the connections being opened will take: open another if allowed.
  if (!pending_.empty() && ConnectingCapacity() < pending_.size()) Connect();
}

void Http2ConnPool::ServePendingLater() {
  if (pending_.empty()) return;
  // Outside the current call stack, which may be a codec's own callback.
  dispatcher_.Defer([this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) ServePending();
  });
}

void Http2ConnPool::FailPending(PoolCallbacks::Failure failure) {
  std::deque<Waiter> failed;
  failed.swap(pending_);
  for (const Waiter& waiter : failed) {
    cluster_->breakers().pending.Release();
    waiter.callbacks->OnPoolFailure(failure);
  }
}

void Http2ConnPool::OnConnectFailed(ActiveClient& client, bool timeout) {
  host_->cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_connect_fail.Inc();
  Destroy(client);
  // The requests waiting have no connection coming (the next attempt picks a host anew).
  if (ConnectingCapacity() == 0 && ClientWithRoom() == nullptr) {
    FailPending(timeout ? PoolCallbacks::Failure::kTimeout
                        : PoolCallbacks::Failure::kConnectFailed);
  }
}

void Http2ConnPool::Drain() {
  for (auto it = clients_.begin(); it != clients_.end();) {
    ActiveClient& client = **it++;           // Destroy() erases it.
    if (client.codec_ == nullptr) continue;  // Connecting: serves what waits, then idles out.
    client.draining_ = true;
    if (client.codec_->active_streams() == 0) {
      client.connection_->CloseAfterFlush();
      Destroy(client);
    }
  }
}

void Http2ConnPool::OnClientClosed(ActiveClient& client) {
  client.draining_ = true;
  client.connection_->Close();
  // Resets the streams it carried (their users retry or answer); then it goes.
  if (client.codec_ != nullptr) client.codec_->OnConnectionClosed();
  Destroy(client);
  ServePendingLater();
}

void Http2ConnPool::OnStreamEnded(ActiveClient& client) {
  if (client.codec_ == nullptr || client.codec_->active_streams() > 0) {
    ServePendingLater();
    return;
  }
  // A connection the server sent GOAWAY on, or whose stream ids are used up, goes once idle.
  if (client.draining_ || !client.codec_->reusable()) {
    client.connection_->CloseAfterFlush();
    Destroy(client);
    // Its connection slot is free: requests waiting at max_connections can have one now.
    ServePendingLater();
    return;
  }
  if (pending_.empty()) {
    dispatcher_.TimeoutQueueFor(cluster_->idle_timeout()).Arm(client);
  } else {
    ServePendingLater();
  }
}

void Http2ConnPool::Destroy(ActiveClient& client) {
  if (client.self_ == clients_.end()) return;  // Already destroyed.
  client.Disarm();
  std::unique_ptr<ActiveClient> owned = std::move(*client.self_);
  clients_.erase(client.self_);
  client.self_ = clients_.end();
  // We may be inside one of the client's own callbacks.
  dispatcher_.DeferredDelete(std::move(owned));
  cluster_->breakers().connections.Release();
}

}  // namespace phoenix::upstream
