#include "source/control_plane/policy_explainer.h"

#include "absl/strings/str_cat.h"
#include "source/common/stats.h"
#include "source/config/snapshot.h"
#include "source/server/filter_registrations.h"
#include "source/server/policy_check.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::control_plane {
namespace {

// Node `node_id`'s resources, unpacked into a bootstrap's static_resources.
config::v1::Bootstrap NodeBootstrap(const ResourceSnapshot& snapshot, const std::string& node_id) {
  config::v1::Bootstrap bootstrap;
  bootstrap.mutable_node()->set_id(node_id);
  for (ResourceType type : ServedTypes()) {
    for (const auto& [name, resource] : snapshot.For(node_id, type)) {
      UnpackInto(type, resource->packed, bootstrap.mutable_static_resources());
    }
  }
  return bootstrap;
}

}  // namespace

absl::StatusOr<NodeExplanation> ExplainForNode(const ResourceSnapshot& snapshot,
                                               const std::string& node_id,
                                               const std::string& listener,
                                               const config::v1::PolicyCheckRequest& request) {
  server::RegisterBuiltinFilters();
  server::RegisterBuiltinTransportSockets();
  StatsStore stats;
  config::v1::Bootstrap bootstrap = NodeBootstrap(snapshot, node_id);
  AddProvidedSecrets(snapshot.provided(), bootstrap.mutable_static_resources());
  auto built = config::BuildSnapshot(bootstrap, nullptr, stats, nullptr, snapshot.version(),
                                     config::SourceKind::kDynamic);
  if (!built.ok()) return built.status();
  for (const config::ListenerConfig& candidate : (*built)->listeners) {
    if (!listener.empty() && candidate.name != listener) continue;
    const auto& manager = *candidate.filter_chains->Select().connection_manager;
    server::PolicyOutcome outcome =
        server::ExplainRequest(manager, manager.xff_num_trusted_hops, request);
    return NodeExplanation{candidate.name, std::move(outcome.lines), outcome.Summary()};
  }
  return absl::NotFoundError(
      listener.empty()
          ? absl::StrCat("node '", node_id, "' has no listeners")
          : absl::StrCat("node '", node_id, "' has no listener named '", listener, "'"));
}

}  // namespace phoenix::control_plane
