#include "source/upstream/auto_conn_pool.h"

#include <algorithm>

#include "source/common/logging.h"
#include "source/upstream/http2_conn_pool.h"

namespace phoenix::upstream {

AutoConnPool::AutoConnPool(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster,
                           HostSharedPtr host)
    : dispatcher_(dispatcher), cluster_(std::move(cluster)), host_(std::move(host)) {}

AutoConnPool::~AutoConnPool() {
  if (first_ != nullptr) {
    first_->Close();
    dispatcher_.DeferredDelete(std::move(first_));
    cluster_->breakers().connections.Release();
  }
  for (size_t i = 0; i < waiting_.size(); ++i) cluster_->breakers().pending.Release();
}

void AutoConnPool::NewStream(http::ResponseDecoder& decoder, PoolCallbacks& callbacks) {
  if (pool_ != nullptr) {
    pool_->NewStream(decoder, callbacks);
    return;
  }
  CircuitBreakers& breakers = cluster_->breakers();
  if (!breakers.pending.TryAcquire()) {
    callbacks.OnPoolFailure(PoolCallbacks::Failure::kOverflow);
    return;
  }
  if (first_ == nullptr) {
    if (!breakers.connections.TryAcquire()) {
      breakers.pending.Release();
      callbacks.OnPoolFailure(PoolCallbacks::Failure::kOverflow);
      return;
    }
    first_ = network::TcpConnection::Connect(dispatcher_, host_->address().get(),
                                             cluster_->connect_timeout(), 1024 * 1024, this,
                                             cluster_->transport_socket_factory().Create());
  }
  waiting_.push_back({&decoder, &callbacks});
}

void AutoConnPool::Cancel(PoolCallbacks& callbacks) {
  auto waiting = std::find_if(waiting_.begin(), waiting_.end(),
                              [&](const Waiter& w) { return w.callbacks == &callbacks; });
  if (waiting != waiting_.end()) {
    // The first connection stays: once up, it serves the next request.
    waiting_.erase(waiting);
    cluster_->breakers().pending.Release();
    return;
  }
  if (pool_ != nullptr) pool_->Cancel(callbacks);
}

void AutoConnPool::OnEvent(network::ConnectionEvent event) {
  switch (event) {
    case network::ConnectionEvent::kConnected:
      OnFirstConnected();
      return;
    case network::ConnectionEvent::kConnectTimeout:
      OnFirstConnectFailed(PoolCallbacks::Failure::kTimeout);
      return;
    case network::ConnectionEvent::kConnectFailed:
    case network::ConnectionEvent::kRemoteClose:  // Before kConnected: the handshake failed.
      OnFirstConnectFailed(PoolCallbacks::Failure::kConnectFailed);
      return;
  }
}

void AutoConnPool::OnFirstConnected() {
  std::unique_ptr<network::TcpConnection> connection = std::move(first_);
  bool http2 = connection->application_protocol() == "h2";
  PHX_LOG(kDebug, "cluster ", cluster_->name(), ": ", host_->address_string(), " speaks ",
          http2 ? "HTTP/2" : "HTTP/1.1", " (ALPN '", AbslView(connection->application_protocol()),
          "')");
  if (http2) {
    auto pool = std::make_unique<Http2ConnPool>(dispatcher_, cluster_, host_);
    pool->Adopt(std::move(connection));
    pool_ = std::move(pool);
  } else {
    auto pool = std::make_unique<Http1ConnPool>(dispatcher_, cluster_, host_);
    pool->Adopt(std::move(connection));
    pool_ = std::move(pool);
  }
  // One at a time: a request made ready may cancel another that is still waiting here.
  while (!waiting_.empty()) {
    Waiter waiter = waiting_.front();
    waiting_.pop_front();
    cluster_->breakers().pending.Release();
    pool_->NewStream(*waiter.decoder, *waiter.callbacks);
  }
}

void AutoConnPool::OnFirstConnectFailed(PoolCallbacks::Failure failure) {
  host_->cx_total.fetch_add(1, std::memory_order_relaxed);
  host_->cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
  cluster_->stats().upstream_cx_total.Inc();
  cluster_->stats().upstream_cx_connect_fail.Inc();
  cluster_->stats().upstream_cx_destroy.Inc();
  first_->Close();
  // We are inside one of its callbacks.
  dispatcher_.DeferredDelete(std::move(first_));
  cluster_->breakers().connections.Release();
  // The requests waiting have no connection coming (the next attempt picks a host anew,
  // and a new request here opens a new first connection).
  std::deque<Waiter> failed;
  failed.swap(waiting_);
  for (const Waiter& waiter : failed) {
    cluster_->breakers().pending.Release();
    waiter.callbacks->OnPoolFailure(failure);
  }
}

}  // namespace phoenix::upstream
