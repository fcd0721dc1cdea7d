#include "source/control_plane/resource_snapshot.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "source/common/stats.h"
#include "source/common/strings.h"
#include "source/config/snapshot.h"
#include "source/server/filter_registrations.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::control_plane {
namespace {

google::protobuf::Any PackDeterministic(const google::protobuf::Message& message,
                                        ResourceType type) {
  google::protobuf::Any any;
  any.set_type_url(std::string(config::TypeUrl(type)));
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  any.set_value(std::move(bytes));
  return any;
}

// The name a resource goes by: its name, or for an assignment the cluster it is for.
template <typename Message>
const std::string& ResourceName(const Message& message) {
  return message.name();
}
const std::string& ResourceName(const config::v1::ClusterLoadAssignment& assignment) {
  return assignment.cluster_name();
}

// Adds one file's resources of one type to `into`, recording a duplicate name as an error
// naming both files.
template <typename Message>
void AddResources(const google::protobuf::RepeatedPtrField<Message>& messages, ResourceType type,
                  const std::string& file, ResourcesByType& into,
                  std::vector<std::string>& errors) {
  auto& by_name = into[type];
  for (const Message& message : messages) {
    auto [it, inserted] = by_name.try_emplace(ResourceName(message));
    if (!inserted) {
      errors.push_back(absl::StrCat(file, ": ", AbslView(config::TypeName(type)), " '",
                                    ResourceName(message), "' is also defined in ",
                                    it->second.file));
      continue;
    }
    it->second.packed = PackDeterministic(message, type);
    it->second.file = file;
  }
}

void AddFile(const ResourceFile& file, ResourcesByType& into, std::vector<std::string>& errors) {
  AddResources(file.resources.listeners(), ResourceType::kListener, file.path, into, errors);
  AddResources(file.resources.route_configurations(), ResourceType::kRouteConfiguration, file.path,
               into, errors);
  AddResources(file.resources.clusters(), ResourceType::kCluster, file.path, into, errors);
  AddResources(file.resources.secrets(), ResourceType::kSecret, file.path, into, errors);
  AddResources(file.resources.cluster_load_assignments(), ResourceType::kClusterLoadAssignment,
               file.path, into, errors);
}

// Runs the proxy's own validation on `bootstrap`, with the `provided` secrets no file
// defines; "" when it passes.
std::string Validate(config::v1::Bootstrap bootstrap, const config::SourceMap* map,
                     const std::vector<config::v1::Secret>& provided) {
  AddProvidedSecrets(provided, bootstrap.mutable_static_resources());
  server::RegisterBuiltinFilters();
  server::RegisterBuiltinTransportSockets();
  StatsStore stats;
  auto snapshot =
      config::BuildSnapshot(bootstrap, map, stats, nullptr, 1, config::SourceKind::kDynamic);
  return snapshot.ok() ? "" : std::string(snapshot.status().message());
}

// Reports each EDS cluster of `set` (a node's whole set) with no ClusterLoadAssignment: the
// proxy would hold its config back for the warming timeout, then have no hosts.
void CheckEndpointAssignments(const ResourcesByType& set, const std::string& node,
                              std::vector<std::string>& errors) {
  auto clusters = set.find(ResourceType::kCluster);
  if (clusters == set.end()) return;
  auto assignments = set.find(ResourceType::kClusterLoadAssignment);
  for (const auto& [name, resource] : clusters->second) {
    config::v1::Cluster cluster;
    if (!resource.packed.UnpackTo(&cluster) || cluster.type() != config::v1::Cluster::EDS) {
      continue;
    }
    const std::string& wanted = cluster.eds_cluster_config().service_name().empty()
                                    ? cluster.name()
                                    : cluster.eds_cluster_config().service_name();
    if (assignments != set.end() && assignments->second.contains(wanted)) continue;
    errors.push_back(absl::StrCat(resource.file, ": cluster '", name, "' is of type EDS",
                                  node.empty() ? "" : absl::StrCat(" (node ", node, ")"),
                                  ": add a ClusterLoadAssignment with cluster_name '", wanted,
                                  "' (cluster_load_assignments)"));
  }
}

// Unpacks every resource of `resources` into the static_resources of a bootstrap.
config::v1::Bootstrap ToBootstrap(const ResourcesByType& resources) {
  config::v1::Bootstrap bootstrap;
  for (const auto& [type, by_name] : resources) {
    for (const auto& [name, resource] : by_name) {
      UnpackInto(type, resource.packed, bootstrap.mutable_static_resources());
    }
  }
  return bootstrap;
}

}  // namespace

void AddProvidedSecrets(const std::vector<config::v1::Secret>& provided,
                        config::v1::StaticResources* resources) {
  auto* secrets = resources->mutable_secrets();
  for (const auto& secret : provided) {
    bool defined = std::any_of(secrets->begin(), secrets->end(),
                               [&](const auto& s) { return s.name() == secret.name(); });
    if (!defined) *secrets->Add() = secret;
  }
}

void UnpackInto(ResourceType type, const google::protobuf::Any& packed,
                config::v1::StaticResources* out) {
  switch (type) {
    case ResourceType::kListener:
      packed.UnpackTo(out->add_listeners());
      break;
    case ResourceType::kRouteConfiguration:
      packed.UnpackTo(out->add_route_configurations());
      break;
    case ResourceType::kCluster:
      packed.UnpackTo(out->add_clusters());
      break;
    case ResourceType::kSecret:
      packed.UnpackTo(out->add_secrets());
      break;
    case ResourceType::kClusterLoadAssignment:
      packed.UnpackTo(out->add_cluster_load_assignments());
      break;
  }
}

const std::vector<ResourceType>& ServedTypes() {
  static const std::vector<ResourceType> types = {
      ResourceType::kSecret, ResourceType::kCluster, ResourceType::kClusterLoadAssignment,
      ResourceType::kRouteConfiguration, ResourceType::kListener};
  return types;
}

std::map<std::string, const Resource*> ResourceSnapshot::For(const std::string& node_id,
                                                             ResourceType type) const {
  std::map<std::string, const Resource*> out;
  auto add = [&](const ResourcesByType& resources) {
    auto it = resources.find(type);
    if (it == resources.end()) return;
    for (const auto& [name, resource] : it->second) out[name] = &resource;
  };
  add(common_);
  if (auto node = per_node_.find(node_id); node != per_node_.end()) add(node->second);
  return out;
}

std::map<std::string, const Resource*> ResourceSnapshot::For(const NodeIdentity& node,
                                                             ResourceType type) const {
  std::map<std::string, const Resource*> out;
  auto add = [&](const std::string& scope) {
    const ResourcesByType* set = &common_;
    if (!scope.empty()) {
      auto it = per_node_.find(scope);
      if (it == per_node_.end()) return;
      set = &it->second;
    }
    auto of_type = set->find(type);
    if (of_type == set->end()) return;
    for (const auto& [name, resource] : of_type->second) out[name] = &resource;
  };
  add("");
  if (!node.cluster.empty()) add(absl::StrCat("@cluster/", node.cluster));
  for (const auto& [key, value] : node.metadata) add(absl::StrCat("@metadata/", key, "=", value));
  if (!node.id.empty() && node.id[0] != '@') add(node.id);
  return out;
}

absl::StatusOr<std::shared_ptr<const ResourceSnapshot>> BuildResourceSnapshot(
    const std::vector<ResourceFile>& files, uint64_t version,
    const std::vector<config::v1::Secret>& provided) {
  std::vector<std::string> errors;
  // Each file alone, so errors carry its file:line:column.
  // A node's cluster and metadata are its own claims (as in Envoy): secrets go only where a
  // node's identity decides, its own folder or the common files.
  for (const ResourceFile& file : files) {
    if (file.node.starts_with("@") && file.resources.secrets_size() > 0) {
      errors.push_back(absl::StrCat(file.path,
                                    ": secrets go in nodes/<node id>/ or the common files, not "
                                    "in clusters/ or metadata/ (a node's cluster and metadata "
                                    "are what it claims)"));
    }
  }
  // A TLS context names its secret, which another file may define (secrets.yaml): each file
  // sees the other files' secrets after its own. A broken one is then reported where it is
  // used, and again by the whole-set checks below.
  for (const ResourceFile& file : files) {
    config::v1::Bootstrap bootstrap;
    auto* resources = bootstrap.mutable_static_resources();
    *resources = file.resources;
    std::set<std::string> seen;
    for (const auto& secret : file.resources.secrets()) seen.insert(secret.name());
    for (const ResourceFile& other : files) {
      // The secrets a node that gets `file` also gets: the common files', its own node's.
      if (&other == &file || (!other.node.empty() && other.node != file.node)) continue;
      for (const auto& secret : other.resources.secrets()) {
        if (!secret.name().empty() && seen.insert(secret.name()).second) {
          *resources->add_secrets() = secret;
        }
      }
    }
    config::SourceMap map = file.source_map.WithPrefix("static_resources.");
    if (std::string error = Validate(bootstrap, &map, provided); !error.empty())
      errors.push_back(error);
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));

  ResourcesByType common;
  for (const ResourceFile& file : files) {
    if (file.node.empty()) AddFile(file, common, errors);
  }
  std::map<std::string, ResourcesByType> per_node;
  for (const ResourceFile& file : files) {
    if (file.node.empty()) continue;
    ResourcesByType& own = per_node[file.node];
    // A name the common files define is a duplicate too.
    ResourcesByType with_common = common;
    for (const auto& [type, by_name] : own) {
      for (const auto& [name, resource] : by_name) with_common[type][name] = resource;
    }
    size_t before = errors.size();
    AddFile(file, with_common, errors);
    if (errors.size() == before) AddFile(file, own, errors);
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));

  // Each node's whole set together (and the common set, for nodes without a folder).
  if (std::string error = Validate(ToBootstrap(common), nullptr, provided); !error.empty()) {
    errors.push_back(absl::StrCat("the resources every node gets: ", error));
  }
  // With node folders, an assignment may be a node's own, so only whole sets are checked.
  if (per_node.empty()) CheckEndpointAssignments(common, "", errors);
  for (const auto& [node, own] : per_node) {
    ResourcesByType all = common;
    for (const auto& [type, by_name] : own) {
      for (const auto& [name, resource] : by_name) all[type][name] = resource;
    }
    if (std::string error = Validate(ToBootstrap(all), nullptr, provided); !error.empty()) {
      errors.push_back(absl::StrCat("the resources of node ", node, ": ", error));
    }
    CheckEndpointAssignments(all, node, errors);
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return std::make_shared<const ResourceSnapshot>(version, std::move(common), std::move(per_node),
                                                  provided);
}

std::vector<ResourceChange> DiffSnapshots(const ResourceSnapshot* before,
                                          const ResourceSnapshot& after) {
  static const ResourcesByType kNone;
  std::vector<ResourceChange> changes;
  auto diff = [&](const ResourcesByType& old_set, const ResourcesByType& new_set,
                  const std::string& node) {
    for (ResourceType type : ServedTypes()) {
      static const std::map<std::string, Resource> kEmpty;
      auto old_it = old_set.find(type);
      auto new_it = new_set.find(type);
      const auto& old_names = old_it == old_set.end() ? kEmpty : old_it->second;
      const auto& new_names = new_it == new_set.end() ? kEmpty : new_it->second;
      std::set<std::string> names;
      for (const auto& [name, r] : old_names) names.insert(name);
      for (const auto& [name, r] : new_names) names.insert(name);
      for (const std::string& name : names) {
        auto o = old_names.find(name);
        auto n = new_names.find(name);
        if (o == old_names.end()) {
          changes.push_back({type, name, "added", node});
        } else if (n == new_names.end()) {
          changes.push_back({type, name, "removed", node});
        } else if (o->second.packed.value() != n->second.packed.value()) {
          changes.push_back({type, name, "changed", node});
        }
      }
    }
  };
  diff(before ? before->common() : kNone, after.common(), "");
  std::set<std::string> nodes;
  if (before) {
    for (const auto& [node, r] : before->per_node()) nodes.insert(node);
  }
  for (const auto& [node, r] : after.per_node()) nodes.insert(node);
  for (const std::string& node : nodes) {
    auto find = [&](const ResourceSnapshot* s) -> const ResourcesByType& {
      if (s == nullptr) return kNone;
      auto it = s->per_node().find(node);
      return it == s->per_node().end() ? kNone : it->second;
    };
    diff(find(before), find(&after), node);
  }
  return changes;
}

}  // namespace phoenix::control_plane
