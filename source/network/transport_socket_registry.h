#pragma once

#include <functional>
#include <string>
#include <vector>

#include "google/protobuf/any.pb.h"
#include "phoenix/config/v1/transport_socket.pb.h"
#include "source/common/config_errors.h"
#include "source/network/transport_socket.h"

namespace phoenix::network {

// Which end of its connections a transport socket factory serves: accepted by a listener
// (TLS: the server side) or opened to a cluster's hosts (TLS: the client side).
enum class TransportSocketSide { kDownstream, kUpstream };

// Transport sockets register by name; a listener filter chain's or a cluster's
// transport_socket names one. A new transport (TLS) is its own folder plus one Register() call
// in source/server/transport_socket_registrations.cc.
class TransportSocketRegistry {
 public:
  // Validates `typed_config` (errors under `path`) and returns the factory, or null.
  using Builder = std::function<TransportSocketFactoryPtr(
      const google::protobuf::Any& typed_config, TransportSocketSide side, const std::string& path,
      config::ConfigErrors& errors)>;

  static void Register(const std::string& name, Builder builder);
  // The factory `config` (at `path`) asks for; raw TCP when it is empty. Null, with errors
  // added, when the name is unknown or the typed_config is wrong.
  static TransportSocketFactoryPtr Build(const config::v1::TransportSocket& config,
                                         TransportSocketSide side, const std::string& path,
                                         config::ConfigErrors& errors);
};

}  // namespace phoenix::network
