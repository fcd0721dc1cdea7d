#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "source/config/config_source.h"
#include "source/control_plane/resource_files.h"

namespace phoenix::control_plane {

using config::ResourceType;

// The resource types the control plane serves, in the order it pushes them: what others refer
// to first (secrets, clusters, their endpoints, routes, listeners), as xDS's make-before-break
// ordering asks.
const std::vector<ResourceType>& ServedTypes();

// Adds each of `provided` (secrets the proxies have from elsewhere) that `resources` does not
// define itself: what validation and explanations assume a proxy has.
void AddProvidedSecrets(const std::vector<config::v1::Secret>& provided,
                        config::v1::StaticResources* resources);

// Adds the resource `packed` (of `type`) to its list in `out`.
void UnpackInto(ResourceType type, const google::protobuf::Any& packed,
                config::v1::StaticResources* out);

// One resource as the directory holds it: packed as it goes on the wire, with the file it
// came from (for errors and the audit log).
struct Resource {
  google::protobuf::Any packed;  // Deterministically serialized, so equal content is equal bytes.
  std::string file;
};

// A resource name -> the resource, for each type.
using ResourcesByType = std::map<ResourceType, std::map<std::string, Resource>>;

// Who a proxy says it is (its DiscoveryRequest's node): what picks the scoped files it gets.
struct NodeIdentity {
  std::string id;
  std::string cluster;
  std::map<std::string, std::string> metadata;  // The node metadata's string fields.
};

// What one accepted directory state serves: the resources every node gets, and those of each
// node that has a nodes/<id>/ folder. Immutable once built; shared by every stream.
class ResourceSnapshot {
 public:
  ResourceSnapshot(uint64_t version, ResourcesByType common,
                   std::map<std::string, ResourcesByType> per_node,
                   std::vector<config::v1::Secret> provided = {})
      : version_(version),
        common_(std::move(common)),
        per_node_(std::move(per_node)),
        provided_(std::move(provided)) {}

  uint64_t version() const { return version_; }
  // The complete set of `type` for node `node_id`, by name (common ones and its own).
  std::map<std::string, const Resource*> For(const std::string& node_id, ResourceType type) const;
  // The complete set of `type` for `node`: the common resources, then those of its cluster's
  // scope, of each metadata scope it matches (in key order), and of its own id, a more specific
  // scope's resource replacing a less specific one of the same name.
  std::map<std::string, const Resource*> For(const NodeIdentity& node, ResourceType type) const;
  const ResourcesByType& common() const { return common_; }
  const std::map<std::string, ResourcesByType>& per_node() const { return per_node_; }
  // Secrets the proxies have from elsewhere (see BuildResourceSnapshot): for validation only.
  const std::vector<config::v1::Secret>& provided() const { return provided_; }

 private:
  uint64_t version_;
  ResourcesByType common_;
  std::map<std::string, ResourcesByType> per_node_;
  std::vector<config::v1::Secret> provided_;
};

// Validates the files as a whole and groups their resources. Errors: each file as
// `phoenix --mode validate` checks it (file:line:column: field: message), the same name
// twice in one type among the files a node gets (naming both files), and each node's whole
// set checked together. Routes may name clusters of other files (SourceKind::kDynamic).
// `provided` are secrets the proxies have from elsewhere (the workload certificate each is
// issued): TLS contexts may name them, though no file defines them and they are not served.
absl::StatusOr<std::shared_ptr<const ResourceSnapshot>> BuildResourceSnapshot(
    const std::vector<ResourceFile>& files, uint64_t version,
    const std::vector<config::v1::Secret>& provided = {});

// One line of an audit record: what happened to one resource between two snapshots.
struct ResourceChange {
  ResourceType type;
  std::string name;
  std::string action;  // "added", "changed", "removed"
  std::string node;    // "" for a resource every node gets, else the node id.
  bool operator==(const ResourceChange&) const = default;
};

// What changed from `before` (null: nothing before) to `after`, ordered by node, type, name.
// Empty when the content is the same.
std::vector<ResourceChange> DiffSnapshots(const ResourceSnapshot* before,
                                          const ResourceSnapshot& after);

}  // namespace phoenix::control_plane
