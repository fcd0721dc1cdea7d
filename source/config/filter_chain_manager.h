#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
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
  // filter_chain_match: SNI names (exact, or "*.example.com"), lowercased, and ALPN protocols.
  std::vector<std::string> server_names;
  std::vector<std::string> application_protocols;
};

// A listener's filter chains, and the choice of the one that serves a new connection, as
// Envoy makes it: the chains whose server_names hold the client's SNI exactly, else the
// longest wildcard that covers it, else those with no server_names; among them, the first
// that lists a protocol the client offers by ALPN, else the first with no
// application_protocols; else the default chain. Raw TCP tells nothing before serving a
// connection, so only TLS chains may have criteria (the config checks that).
class FilterChainManager {
 public:
  // `filter_chains` in order; `default_chain` may be null.
  FilterChainManager(std::vector<FilterChain> filter_chains,
                     std::unique_ptr<FilterChain> default_chain);

  // Whether choosing needs the ClientHello: some chain has SNI or ALPN criteria.
  bool needs_client_hello() const { return needs_client_hello_; }
  // The longest handshake timeout of its chains: the limit on choosing one and finishing its
  // handshake.
  std::chrono::milliseconds handshake_timeout() const { return handshake_timeout_; }
  // The chain for a connection that needs no ClientHello (the first, else the default).
  const FilterChain& Select() const;
  // The chain for a ClientHello offering `server_name` ("" if none) and `alpn`; null when
  // none matches and there is no default chain (the handshake then fails).
  const FilterChain* Select(std::string_view server_name,
                            const std::vector<std::string>& alpn) const;
  // The default chain, for connections that are not TLS at all; may be null.
  const FilterChain* default_chain() const { return default_chain_.get(); }
  // Every chain, the default last. Not empty.
  const std::vector<const FilterChain*>& chains() const { return all_; }

 private:
  std::vector<FilterChain> filter_chains_;
  std::unique_ptr<FilterChain> default_chain_;
  std::vector<const FilterChain*> all_;
  bool needs_client_hello_ = false;
  std::chrono::milliseconds handshake_timeout_{0};
};

}  // namespace phoenix::config
