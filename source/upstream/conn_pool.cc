#include "source/upstream/conn_pool.h"

#include <algorithm>

#include "source/common/logging.h"

namespace phoenix::upstream {

Http1ActiveClient::Http1ActiveClient(Http1ConnPool& pool, Dispatcher& dispatcher)
    : pool_(pool),
      cluster_(pool.cluster_ptr()),
      host_(pool.host_),
      connection_(network::TcpConnection::Connect(
          dispatcher, pool.host().address().get(), pool.cluster().connect_timeout(), 1024 * 1024,
          this, pool.cluster().transport_socket_factory().Create())),
      codec_(*connection_, *this) {
  CountOpened();
}

Http1ActiveClient::Http1ActiveClient(Http1ConnPool& pool,
                                     std::unique_ptr<network::TcpConnection> connected)
    : pool_(pool),
      cluster_(pool.cluster_ptr()),
      host_(pool.host_),
      connection_(std::move(connected)),
      codec_(*connection_, *this),
      connected_(true) {
  connection_->SetCallbacks(this);
  CountOpened();
}

void Http1ActiveClient::CountOpened() {
  host_->cx_total.fetch_add(1, std::memory_order_relaxed);
  host_->cx_active.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_total.Inc();
  cluster_->stats().upstream_cx_active.Inc();
}

Http1ActiveClient::~Http1ActiveClient() {
  host_->cx_active.fetch_sub(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_active.Dec();
  cluster_->stats().upstream_cx_destroy.Inc();
}

void Http1ActiveClient::StartStream(http::ResponseDecoder& decoder) {
  decoder_ = &decoder;
  stream_callbacks_ = nullptr;
  response_complete_ = false;
  started_ = true;
  codec_.NewStream(*this);
}

void Http1ActiveClient::OnTimeout() { pool_.OnIdleClientClosed(*this); }

void Http1ActiveClient::Detach() {
  Disarm();
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
}

void Http1ActiveClient::OnData(const char* data, size_t length) {
  if (decoder_ == nullptr) {
    // Bytes on an idle connection: the upstream is confused or closing. Drop it.
    pool_.OnIdleClientClosed(*this);
    return;
  }
  codec_.Dispatch(data, length);
}

void Http1ActiveClient::OnEvent(network::ConnectionEvent event) {
  switch (event) {
    case network::ConnectionEvent::kConnected:
      connected_ = true;
      pool_.OnConnected(*this);
      return;
    case network::ConnectionEvent::kConnectFailed:
      pool_.OnConnectFailed(*this, /*timeout=*/false);
      return;
    case network::ConnectionEvent::kConnectTimeout:
      pool_.OnConnectFailed(*this, /*timeout=*/true);
      return;
    case network::ConnectionEvent::kRemoteClose:
      if (!connected_) {
        pool_.OnConnectFailed(*this, false);
        return;
      }
      if (decoder_ == nullptr) {
        pool_.OnIdleClientClosed(*this);
        return;
      }
      // May complete a read-to-close response (which ends the exchange).
      if (!codec_.OnConnectionClosed() && decoder_ != nullptr) {
        ResetWith(http::StreamResetReason::kConnectionTermination);
      }
      return;
  }
}

void Http1ActiveClient::OnAboveWriteBufferHighWatermark() {
  if (stream_callbacks_ != nullptr) stream_callbacks_->OnAboveWriteBufferHighWatermark();
}

void Http1ActiveClient::OnBelowWriteBufferLowWatermark() {
  if (stream_callbacks_ != nullptr) stream_callbacks_->OnBelowWriteBufferLowWatermark();
}

void Http1ActiveClient::OnProtocolError(std::string_view details) {
  PHX_LOG(kDebug, "upstream ", pool_.host().address_string(),
          " protocol error: ", AbslView(details));
  if (decoder_ != nullptr) ResetWith(http::StreamResetReason::kProtocolError);
}

void Http1ActiveClient::DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) {
  http::ResponseDecoder* decoder = decoder_;
  if (decoder == nullptr) return;
  decoder->DecodeHeaders(std::move(headers), end_stream);
  // The user may have reset the stream meanwhile (a status it retries on).
  if (end_stream && decoder_ == decoder) OnResponseComplete();
}

void Http1ActiveClient::DecodeData(std::string_view data, bool end_stream) {
  http::ResponseDecoder* decoder = decoder_;
  if (decoder == nullptr) return;
  decoder->DecodeData(data, end_stream);
  if (end_stream && decoder_ == decoder) OnResponseComplete();
}

void Http1ActiveClient::DecodeTrailers(http::HeaderMap trailers) {
  http::ResponseDecoder* decoder = decoder_;
  if (decoder == nullptr) return;
  decoder->DecodeTrailers(std::move(trailers));
  if (decoder_ == decoder) OnResponseComplete();
}

void Http1ActiveClient::OnResponseComplete() {
  response_complete_ = true;
  Detach();
  // A request not sent in full by now leaves the connection unusable; Release closes it.
  pool_.Release(*this);
}

void Http1ActiveClient::EncodeHeaders(const http::RequestHeaders& headers, bool end_stream) {
  if (decoder_ != nullptr) codec_.EncodeHeaders(headers, end_stream);
}

void Http1ActiveClient::EncodeData(std::string_view data, bool end_stream) {
  if (decoder_ != nullptr) codec_.EncodeData(data, end_stream);
}

void Http1ActiveClient::EncodeTrailers(const http::HeaderMap& trailers) {
  if (decoder_ != nullptr) codec_.EncodeTrailers(trailers);
}

void Http1ActiveClient::ResetStream() {
  if (decoder_ == nullptr) return;
  Detach();
  connection_->Close();
  pool_.Release(*this);
}

void Http1ActiveClient::ResetWith(http::StreamResetReason reason) {
  http::StreamCallbacks* callbacks = stream_callbacks_;
  Detach();
  connection_->Close();
  pool_.Release(*this);  // Deletes this client, deferred: still safe to use below.
  if (callbacks != nullptr) callbacks->OnResetStream(reason);
}

void Http1ActiveClient::ReadDisable(bool disable) { connection_->ReadDisable(disable); }

Http1ConnPool::Http1ConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                             HostSharedPtr host)
    : dispatcher_(dispatcher), cluster_(cluster), host_(std::move(host)) {}

Http1ConnPool::~Http1ConnPool() {
  // Streams hold the cluster (and so this pool) alive; only idle connections remain here.
  for (auto& client : clients_) {
    client->Disarm();
    client->connection_->Close();
    dispatcher_.DeferredDelete(std::move(client));
    cluster_->breakers().connections.Release();
  }
  for (size_t i = 0; i < pending_.size(); ++i) cluster_->breakers().pending.Release();
}

Http1ActiveClient* Http1ConnPool::TakeIdle() {
  while (!idle_.empty()) {
    Http1ActiveClient* client = idle_.back();
    idle_.pop_back();
    client->Disarm();
    if (!client->connection_->closed()) return client;
    Destroy(*client);
  }
  return nullptr;
}

void Http1ConnPool::Attach(Http1ActiveClient& client, Waiter waiter) {
  client.StartStream(*waiter.decoder);
  waiter.callbacks->OnPoolReady(client);
}

void Http1ConnPool::NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) {
  if (Http1ActiveClient* client = TakeIdle()) {
    cluster_->stats().upstream_cx_reuse.Inc();
    Attach(*client, {&decoder, &callbacks});
    return;
  }
  CircuitBreakers& breakers = cluster_->breakers();
  if (breakers.connections.TryAcquire()) {
    Connect({&decoder, &callbacks});
    return;
  }
  if (breakers.pending.TryAcquire()) {
    pending_.push_back({&decoder, &callbacks});
    return;
  }
  callbacks.OnPoolFailure(PoolCallbacks::Failure::kOverflow);
}

void Http1ConnPool::Connect(Waiter waiter) {
  clients_.push_front(std::make_unique<Http1ActiveClient>(*this, dispatcher_));
  Http1ActiveClient* client = clients_.front().get();
  client->self_ = clients_.begin();
  connecting_.emplace_back(client, waiter);
}

void Http1ConnPool::Adopt(std::unique_ptr<network::TcpConnection> connected) {
  clients_.push_front(std::make_unique<Http1ActiveClient>(*this, std::move(connected)));
  Http1ActiveClient* client = clients_.front().get();
  client->self_ = clients_.begin();
  Release(*client);
}

void Http1ConnPool::Cancel(PoolCallbacks& callbacks) {
  auto waiting = std::find_if(pending_.begin(), pending_.end(),
                              [&](const Waiter& w) { return w.callbacks == &callbacks; });
  if (waiting != pending_.end()) {
    pending_.erase(waiting);
    cluster_->breakers().pending.Release();
    return;
  }
  for (auto& [client, waiter] : connecting_) {
    if (waiter.callbacks == &callbacks) {
      // Keep the connection: once up, it becomes an idle one for the next request.
      waiter = {nullptr, nullptr};
      return;
    }
  }
}

void Http1ConnPool::OnConnected(Http1ActiveClient& client) {
  auto it = std::find_if(connecting_.begin(), connecting_.end(),
                         [&](const auto& entry) { return entry.first == &client; });
  if (it == connecting_.end()) return;
  Waiter waiter = it->second;
  connecting_.erase(it);
  if (waiter.callbacks == nullptr) {
    Release(client);
    return;
  }
  Attach(client, waiter);
}

void Http1ConnPool::OnConnectFailed(Http1ActiveClient& client, bool timeout) {
  host_->cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_connect_fail.Inc();
  auto it = std::find_if(connecting_.begin(), connecting_.end(),
                         [&](const auto& entry) { return entry.first == &client; });
  PoolCallbacks* callbacks = nullptr;
  if (it != connecting_.end()) {
    callbacks = it->second.callbacks;
    connecting_.erase(it);
  }
  Destroy(client);
  if (callbacks != nullptr) {
    callbacks->OnPoolFailure(timeout ? PoolCallbacks::Failure::kTimeout
                                     : PoolCallbacks::Failure::kConnectFailed);
  }
}

void Http1ConnPool::Release(Http1ActiveClient& client) {
  bool clean = !client.started_ || client.codec_.reusable();
  bool reusable = client.connected_ && !client.connection_->closed() && clean &&
                  idle_.size() < cluster_->max_idle_per_host() && !(draining_ && pending_.empty());
  if (!reusable) {
    client.connection_->Close();
    Destroy(client);
    return;
  }
  client.connection_->ReadDisable(false);
  dispatcher_.TimeoutQueueFor(cluster_->idle_timeout()).Arm(client);
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
    Http1ActiveClient* client = TakeIdle();
    if (client == nullptr) return;
    Waiter waiter = pending_.front();
    pending_.pop_front();
    cluster_->breakers().pending.Release();
    cluster_->stats().upstream_cx_reuse.Inc();
    Attach(*client, waiter);
  }
}

void Http1ConnPool::Drain() {
  draining_ = true;
  while (!idle_.empty()) {
    Http1ActiveClient* client = idle_.back();
    idle_.pop_back();
    client->Disarm();
    client->connection_->Close();
    Destroy(*client);
  }
}

void Http1ConnPool::OnIdleClientClosed(Http1ActiveClient& client) {
  client.connection_->Close();
  Destroy(client);
}

void Http1ConnPool::Destroy(Http1ActiveClient& client) {
  client.Detach();
  auto it = std::find(idle_.begin(), idle_.end(), &client);
  if (it != idle_.end()) idle_.erase(it);
  std::unique_ptr<Http1ActiveClient> owned = std::move(*client.self_);
  clients_.erase(client.self_);
  // We may be inside one of the client's own callbacks.
  dispatcher_.DeferredDelete(std::move(owned));
  CircuitBreakers& breakers = cluster_->breakers();
  breakers.connections.Release();
  // The freed connection slot goes to the oldest waiting request.
  if (!pending_.empty() && breakers.connections.TryAcquire()) {
    Waiter waiter = pending_.front();
    pending_.pop_front();
    breakers.pending.Release();
    Connect(waiter);
  }
}

}  // namespace phoenix::upstream
