#include "source/config/filter_chain_manager.h"

#include <algorithm>

namespace phoenix::config {
namespace {

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The chains among `candidates` that the SNI `server_name` selects: exact name, else the
// longest wildcard suffix ("*.b.example.com" before "*.example.com"), else no server_names.
std::vector<const FilterChain*> BySni(const std::vector<const FilterChain*>& candidates,
                                      std::string_view server_name) {
  std::vector<const FilterChain*> selected;
  auto collect = [&](std::string_view name) {
    for (const FilterChain* chain : candidates) {
      if (Contains(chain->server_names, name)) selected.push_back(chain);
    }
    return !selected.empty();
  };
  if (!server_name.empty()) {
    if (collect(server_name)) return selected;
    for (size_t dot = server_name.find('.'); dot != std::string_view::npos;
         dot = server_name.find('.', dot + 1)) {
      std::string wildcard = "*";
      wildcard.append(server_name.substr(dot));
      if (collect(wildcard)) return selected;
    }
  }
  for (const FilterChain* chain : candidates) {
    if (chain->server_names.empty()) selected.push_back(chain);
  }
  return selected;
}

}  // namespace

FilterChainManager::FilterChainManager(std::vector<FilterChain> filter_chains,
                                       std::unique_ptr<FilterChain> default_chain)
    : filter_chains_(std::move(filter_chains)), default_chain_(std::move(default_chain)) {
  for (FilterChain& chain : filter_chains_) {
    for (std::string& name : chain.server_names) {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
    }
    needs_client_hello_ |= !chain.server_names.empty() || !chain.application_protocols.empty();
    all_.push_back(&chain);
  }
  if (default_chain_ != nullptr) all_.push_back(default_chain_.get());
  for (const FilterChain* chain : all_) {
    if (chain->transport_socket_factory != nullptr) {
      handshake_timeout_ =
          std::max(handshake_timeout_, chain->transport_socket_factory->HandshakeTimeout());
    }
  }
}

const FilterChain& FilterChainManager::Select() const { return *all_.front(); }

const FilterChain* FilterChainManager::Select(std::string_view server_name,
                                              const std::vector<std::string>& alpn) const {
  std::vector<const FilterChain*> candidates(all_.begin(), all_.begin() + filter_chains_.size());
  candidates = BySni(candidates, server_name);
  for (const std::string& protocol : alpn) {
    for (const FilterChain* chain : candidates) {
      if (Contains(chain->application_protocols, protocol)) return chain;
    }
  }
  for (const FilterChain* chain : candidates) {
    if (chain->application_protocols.empty()) return chain;
  }
  return default_chain_.get();
}

}  // namespace phoenix::config
