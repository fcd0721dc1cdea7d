#include "source/server/worker.h"

#include <unistd.h>

#include "absl/container/flat_hash_set.h"
#include "source/common/access_log.h"
#include "source/common/logging.h"
#include "source/network/tcp_connection.h"
#include "source/server/chain_selecting_socket.h"

namespace phoenix::server {

ListenerSockets::~ListenerSockets() {
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!taken[i].load()) close(fds[i]);
  }
}

// Per filter chain (by name): its newest HTTP config, which its connections' next requests
// pick up.
using ChainStates = absl::flat_hash_map<std::string, std::shared_ptr<http::ListenerState>>;

// A listening socket on this worker and the listener config it serves.
struct Worker::ActiveListener {
  Worker* worker;
  std::string name;
  std::shared_ptr<ListenerSockets> sockets;
  std::shared_ptr<const config::FilterChainManager> filter_chains;
  // Replaced whole on a reload, so a connection still choosing its chain keeps the map it
  // started with for the price of one pointer.
  std::shared_ptr<const ChainStates> chain_states = std::make_shared<ChainStates>();
  uv_tcp_t* handle = nullptr;

  ~ActiveListener() {
    if (handle != nullptr) {
      handle->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
  }
};

Worker::Worker(int index, TimeSource& time_source, const std::atomic<bool>& shedding)
    : index_(index),
      dispatcher_(time_source),
      cluster_manager_(dispatcher_),
      shedding_(shedding),
      random_() {
  dispatcher_.AddPrepareCallback([] { AccessLogFile::FlushThreadBuffers(); });
}

Worker::~Worker() { Join(); }

void Worker::Start() {
  thread_ = std::thread([this] {
    upstream::ClusterManager::SetForThisThread(&cluster_manager_);
    dispatcher_.Run();
    AccessLogFile::FlushThreadBuffers();
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::PostSnapshot(std::shared_ptr<const config::ConfigSnapshot> snapshot,
                          ListenerSocketsList sockets) {
  dispatcher_.Post([this, snapshot = std::move(snapshot), sockets = std::move(sockets)] {
    ApplySnapshot(*snapshot, sockets);
  });
}

void Worker::PostDrain() {
  dispatcher_.Post([this] {
    draining_ = true;
    listeners_.clear();  // Stop accepting.
    std::vector<http::ConnectionManager*> all;
    for (auto& [ptr, owned] : connections_) all.push_back(ptr);
    for (auto* connection : all) connection->StartDrain();
  });
}

void Worker::PostStop() {
  dispatcher_.Post([this] {
    // Deferred, so work already queued for these connections runs first.
    dispatcher_.Defer([this] {
      listeners_.clear();
      pending_.clear();
      // Requests still in progress (the drain timeout passed) are answered and logged. Each
      // connection closes and defers its streams' deletion, then its own: they go first.
      std::vector<http::ConnectionManager*> all;
      for (auto& [ptr, owned] : connections_) all.push_back(ptr);
      for (auto* connection : all) connection->CutByDrainTimeout();
      dispatcher_.Defer([this] {
        connections_.clear();
        active_connections_.store(0);
        cluster_manager_.Clear();
        // The destructors above deferred some deletions; run them, then close what is left.
        dispatcher_.Defer([this] { dispatcher_.Exit(); });
      });
    });
  });
}

void Worker::ApplySnapshot(const config::ConfigSnapshot& snapshot,
                           const ListenerSocketsList& sockets) {
  cluster_manager_.Update(snapshot.clusters);
  if (draining_) return;
  std::vector<std::shared_ptr<http::ListenerState>> before;  // To retire those that go.
  for (const auto& [name, listener] : listeners_) {
    for (const auto& [chain, state] : *listener->chain_states) before.push_back(state);
  }
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveListener>> next;
  for (size_t i = 0; i < snapshot.listeners.size(); ++i) {
    const config::ListenerConfig& listener_config = snapshot.listeners[i];
    std::unique_ptr<ActiveListener> listener;
    auto it = listeners_.find(listener_config.name);
    if (it != listeners_.end() && it->second->sockets == sockets[i]) {
      listener = std::move(it->second);
    } else {
      listener = std::make_unique<ActiveListener>();
      listener->worker = this;
      listener->name = listener_config.name;
      listener->sockets = sockets[i];
      listener->handle = new uv_tcp_t;
      uv_tcp_init(dispatcher_.loop(), listener->handle);
      int fd = sockets[i]->fds[index_];
      int rc = uv_tcp_open(listener->handle, fd);
      if (rc == 0) {
        sockets[i]->taken[index_].store(true);
        listener->handle->data = listener.get();
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener->handle), 1024,
                       [](uv_stream_t* server, int status) {
                         auto* l = static_cast<ActiveListener*>(server->data);
                         if (l != nullptr && status == 0) l->worker->OnAccept(*l);
                       });
      }
      if (rc != 0) {
        PHX_LOG(kError, "worker ", index_, ": cannot listen on ", listener_config.address, ": ",
                uv_strerror(rc));
      }
    }
    // Existing connections pick up their chain's new config on their next request.
    auto chain_states = std::make_shared<ChainStates>();
    for (const config::FilterChain* chain : listener_config.filter_chains->chains()) {
      auto it = listener->chain_states->find(chain->name);
      auto state = it != listener->chain_states->end() ? it->second
                                                       : std::make_shared<http::ListenerState>();
      state->config = chain->connection_manager;
      (*chain_states)[chain->name] = std::move(state);
    }
    listener->chain_states = std::move(chain_states);
    listener->filter_chains = listener_config.filter_chains;
    next[listener_config.name] = std::move(listener);
  }
  listeners_.swap(next);  // Listeners left in `next` are closed here.
  absl::flat_hash_set<const http::ListenerState*> in_force;
  for (const auto& [name, listener] : listeners_) {
    for (const auto& [chain, state] : *listener->chain_states) in_force.insert(state.get());
  }
  for (const auto& state : before) {
    if (!in_force.contains(state.get())) state->retired = true;
  }
  DrainConnectionsOfRemovedChains(snapshot.drain_timeout);
}

std::vector<http::ConnectionManager*> Worker::OrphanedConnections() const {
  std::vector<http::ConnectionManager*> orphans;
  for (const auto& [ptr, owned] : connections_) {
    if (ptr->listener_state()->retired) orphans.push_back(ptr);
  }
  return orphans;
}

void Worker::DrainConnectionsOfRemovedChains(std::chrono::milliseconds drain_timeout) {
  std::vector<http::ConnectionManager*> orphans = OrphanedConnections();
  if (orphans.empty()) return;
  PHX_LOG(kInfo, "worker ", index_, ": draining ", orphans.size(),
          " connections of listeners or filter chains no longer configured");
  for (auto* connection : orphans) connection->DrainAfterNextResponse();
  if (orphan_drain_timer_ == nullptr) {
    orphan_drain_timer_ = dispatcher_.CreateTimer([this] {
      // Those still open (idle keep-alive ones, long streams) are cut now.
      for (auto* connection : OrphanedConnections()) connection->CutByDrainTimeout();
    });
  }
  // A later snapshot does not push the deadline of the connections already draining back.
  if (!orphan_drain_timer_->enabled()) orphan_drain_timer_->Enable(drain_timeout);
}

// A connection between accept and the choice of its filter chain: owns it, and drops it if
// it closes before its ClientHello has chosen.
class Worker::PendingConnection : public network::ConnectionCallbacks {
 public:
  PendingConnection(Worker& worker) : worker_(worker) {}
  void OnData(const char*, size_t) override {}
  void OnEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::kConnected) return;
    // Not at once: the connection is reporting from inside its own call.
    worker_.dispatcher_.Defer([worker = &worker_, self = this] {
      if (worker->pending_.erase(self) > 0) worker->active_connections_.fetch_sub(1);
    });
  }

  std::unique_ptr<network::TcpConnection> connection;

 private:
  Worker& worker_;
};

void Worker::OnAccept(ActiveListener& listener) {
  uv_tcp_t* handle = network::TcpConnection::NewHandle(dispatcher_.loop());
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener.handle),
                reinterpret_cast<uv_stream_t*>(handle)) != 0) {
    network::TcpConnection::CloseUnusedHandle(handle);
    return;
  }
  active_connections_.fetch_add(1);
  if (listener.filter_chains->needs_client_hello()) {
    AcceptByClientHello(listener, handle);
    return;
  }
  const config::FilterChain& chain = listener.filter_chains->Select();
  Serve(network::TcpConnection::FromAccepted(dispatcher_, handle,
                                             chain.connection_manager->buffer_limit,
                                             chain.transport_socket_factory->Create(),
                                             chain.transport_socket_factory->HandshakeTimeout()),
        listener.chain_states->at(chain.name));
}

void Worker::AcceptByClientHello(ActiveListener& listener, uv_tcp_t* handle) {
  auto pending = std::make_unique<PendingConnection>(*this);
  PendingConnection* raw = pending.get();
  // What the choice needs, as of now: a reload may replace the listener meanwhile.
  auto selector = [this, raw, chains = listener.filter_chains, states = listener.chain_states](
                      const tls::ClientHello* hello) -> network::TransportSocketPtr {
    const config::FilterChain* chain = hello != nullptr
                                           ? chains->Select(hello->server_name, hello->alpn)
                                           : chains->default_chain();
    if (chain == nullptr) {
      PHX_LOG(kDebug, "worker ", index_, ": no filter chain for ", raw->connection->peer_address(),
              hello != nullptr ? " (SNI '" : " (not TLS",
              hello != nullptr ? hello->server_name : "", hello != nullptr ? "')" : ")");
      return nullptr;  // The connection closes; the pending entry goes with it.
    }
    auto node = pending_.extract(raw);
    Serve(std::move(node.mapped()->connection), states->at(chain->name));
    return chain->transport_socket_factory->Create();
  };
  const config::FilterChain& first = listener.filter_chains->Select();
  pending->connection = network::TcpConnection::FromAccepted(
      dispatcher_, handle, first.connection_manager->buffer_limit,
      std::make_unique<ChainSelectingSocket>(std::move(selector)),
      listener.filter_chains->handshake_timeout());
  pending->connection->SetCallbacks(raw);
  pending_[raw] = std::move(pending);
}

void Worker::Serve(std::unique_ptr<network::TcpConnection> connection,
                   std::shared_ptr<http::ListenerState> state) {
  bool retired = state->retired;  // Its chain went while its TLS handshake was under way.
  auto manager =
      std::make_unique<http::ConnectionManager>(*this, std::move(state), std::move(connection));
  http::ConnectionManager* raw = manager.get();
  connections_[raw] = std::move(manager);
  if (retired) raw->DrainAfterNextResponse();
}

void Worker::OnConnectionClosed(http::ConnectionManager* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  std::unique_ptr<http::ConnectionManager> owned = std::move(it->second);
  connections_.erase(it);
  active_connections_.fetch_sub(1);
  owned.reset();
}

}  // namespace phoenix::server
