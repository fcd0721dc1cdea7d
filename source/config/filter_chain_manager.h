#pragma once

#include <memory>
#include <string>
#include <vector>

#include "source/http/connection_manager.h"
#include "source/network/transport_socket.h"

namespace phoenix::config {

// How a listener serves the connections given to one of its chains. Immutable; part of a
// config snapshot.
struct FilterChain {
  // Its configured name, else where it is configured ("filter_chains[0]",
  // "default_filter_chain"). Workers key per-chain state on it across reloads.
  std::string name;
  network::TransportSocketFactoryPtr transport_socket_factory;
  std::shared_ptr<const http::ConnectionManagerConfig> connection_manager;
};

// A listener's filter chains, and the choice of the one that serves a new connection. Raw
// TCP knows nothing of a connection before serving it, so the config admits no SNI/ALPN
// criteria without TLS: every chain matches every connection, and the first of filter_chains
// wins, else the default chain. TLS will pass Select() what the ClientHello offers (server
// name, ALPN) and pick the most specific match, as Envoy does.
class FilterChainManager {
 public:
  // `chains`: the listener's filter_chains in order, then its default chain if any. Not empty.
  explicit FilterChainManager(std::vector<FilterChain> chains) : chains_(std::move(chains)) {}

  const FilterChain& Select() const { return chains_.front(); }
  const std::vector<FilterChain>& chains() const { return chains_; }

 private:
  std::vector<FilterChain> chains_;
};

}  // namespace phoenix::config
