#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "google/protobuf/any.pb.h"
#include "phoenix/config/v1/tls.pb.h"
#include "phoenix/config/v1/transport_socket.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/network/transport_socket.h"

namespace phoenix::network {

// Which end of its connections a transport socket factory serves: accepted by a listener
// (TLS: the server side) or opened to a cluster's hosts (TLS: the client side).
enum class TransportSocketSide { kDownstream, kUpstream };

// Named secrets (static_resources.secrets, or Secret resources), by name.
using SecretMap = std::map<std::string, config::v1::Secret>;

// What a transport socket factory is built with, besides its typed_config.
struct TransportSocketContext {
  TransportSocketSide side = TransportSocketSide::kDownstream;
  // Where its certificates and CA bundles may be named; null: none are.
  const SecretMap* secrets = nullptr;
  // Where its stats go (TLS: "tls.<listener or cluster>."); null: nowhere.
  StatsStore* stats = nullptr;
  // Names its stats: the listener's or the cluster's name.
  std::string stat_name;
  // Upstream: the application protocols the connection's user speaks, most preferred first
  // ("h2", "http/1.1"); a TLS config that lists no alpn_protocols offers these.
  std::vector<std::string> default_alpn;
};

// Transport sockets register by name; a listener filter chain's or a cluster's
// transport_socket names one. A new transport (TLS) is its own folder plus one Register() call
// in source/server/transport_socket_registrations.cc.
class TransportSocketRegistry {
 public:
  // Validates `typed_config` (errors under `path`) and returns the factory, or null.
  using Builder = std::function<TransportSocketFactoryPtr(
      const google::protobuf::Any& typed_config, const TransportSocketContext& context,
      const std::string& path, config::ConfigErrors& errors)>;

  static void Register(const std::string& name, Builder builder);
  // The factory `config` (at `path`) asks for; raw TCP when it is empty. Null, with errors
  // added, when the name is unknown or the typed_config is wrong.
  static TransportSocketFactoryPtr Build(const config::v1::TransportSocket& config,
                                         const TransportSocketContext& context,
                                         const std::string& path, config::ConfigErrors& errors);
};

}  // namespace phoenix::network
