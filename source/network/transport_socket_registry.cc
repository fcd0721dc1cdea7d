#include "source/network/transport_socket_registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "source/network/raw_buffer_socket.h"

namespace phoenix::network {
namespace {

std::map<std::string, TransportSocketRegistry::Builder>& Registry() {
  static auto* registry = new std::map<std::string, TransportSocketRegistry::Builder>();
  return *registry;
}

}  // namespace

void TransportSocketRegistry::Register(const std::string& name, Builder builder) {
  Registry()[name] = std::move(builder);
}

TransportSocketFactoryPtr TransportSocketRegistry::Build(const config::v1::TransportSocket& config,
                                                         const TransportSocketContext& context,
                                                         const std::string& path,
                                                         config::ConfigErrors& errors) {
  // None configured: raw TCP, as in Envoy.
  if (config.name().empty() && !config.has_typed_config()) {
    return std::make_shared<RawBufferSocketFactory>();
  }
  auto it = Registry().find(config.name());
  if (it == Registry().end()) {
    std::string message = config.name().empty()
                              ? std::string("a transport socket needs a name")
                              : absl::StrCat("unknown transport socket '", config.name(), "'");
    std::vector<std::string> names;
    for (const auto& [name, builder] : Registry()) names.push_back(name);
    std::string suggestion = config::NearestName(config.name(), names);
    if (!suggestion.empty()) absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
    errors.Add(path + ".name", message);
    return nullptr;
  }
  return it->second(config.typed_config(), context, path + ".typed_config", errors);
}

}  // namespace phoenix::network
