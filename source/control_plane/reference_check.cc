#include "source/control_plane/reference_check.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "source/common/strings.h"

namespace phoenix::control_plane {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

struct Reference {
  ResourceType type;
  std::string name;
};

// The names a message refers to by the fields Phoenix resolves by name.
void CollectReferences(const Message& message, std::vector<Reference>& out) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  const std::string& type = descriptor->full_name();
  auto name_in = [&](const char* field, ResourceType kind) {
    const FieldDescriptor* f = descriptor->FindFieldByName(field);
    if (f == nullptr || f->type() != FieldDescriptor::TYPE_STRING || f->is_repeated()) return;
    std::string value = reflection->GetString(message, f);
    if (!value.empty()) out.push_back({kind, std::move(value)});
  };
  if (type == "phoenix.config.v1.Rds")
    name_in("route_config_name", ResourceType::kRouteConfiguration);
  if (type == "phoenix.config.v1.RouteAction") name_in("cluster", ResourceType::kCluster);
  if (type == "phoenix.config.v1.WeightedCluster.ClusterWeight") {
    name_in("name", ResourceType::kCluster);
  }
  if (type == "phoenix.config.v1.SdsSecretConfig") name_in("name", ResourceType::kSecret);
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        CollectReferences(reflection->GetRepeatedMessage(message, field, i), out);
      }
    } else {
      CollectReferences(reflection->GetMessage(message, field), out);
    }
  }
}

// The resource unpacked into its own message type (null when the type is unknown).
std::unique_ptr<Message> Unpack(const Resource& resource) {
  const std::string& url = resource.packed.type_url();
  std::string type_name = url.substr(url.rfind('/') + 1);
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
  if (descriptor == nullptr) return nullptr;
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype == nullptr) return nullptr;
  std::unique_ptr<Message> message(prototype->New());
  if (!resource.packed.UnpackTo(message.get())) return nullptr;
  return message;
}

// Every dangling reference among what node `node` ("" for one with no folder) gets.
std::set<std::string> Dangling(const ResourceSnapshot& snapshot, const std::string& node) {
  std::map<ResourceType, std::map<std::string, const Resource*>> by_type;
  for (ResourceType type : ServedTypes()) by_type[type] = snapshot.For(node, type);
  std::set<std::string> dangling;
  for (const auto& [type, resources] : by_type) {
    for (const auto& [name, resource] : resources) {
      auto message = Unpack(*resource);
      if (message == nullptr) continue;
      std::vector<Reference> references;
      CollectReferences(*message, references);
      for (const Reference& ref : references) {
        const auto& known = by_type[ref.type];
        if (known.find(ref.name) != known.end()) continue;
        dangling.insert(absl::StrCat(
            node.empty() ? "every node" : absl::StrCat("node ", node), ": ",
            AbslView(config::TypeName(type)), " '", name, "' (", resource->file, ") refers to ",
            AbslView(config::TypeName(ref.type)), " '", ref.name, "', which would not exist"));
      }
    }
  }
  return dangling;
}

std::set<std::string> AllDangling(const ResourceSnapshot& snapshot) {
  std::set<std::string> all = Dangling(snapshot, "");
  for (const auto& [node, set] : snapshot.per_node()) {
    std::set<std::string> more = Dangling(snapshot, node);
    all.insert(more.begin(), more.end());
  }
  return all;
}

}  // namespace

std::vector<std::string> NewDanglingReferences(const ResourceSnapshot* before,
                                               const ResourceSnapshot& after) {
  std::set<std::string> already;
  if (before != nullptr) already = AllDangling(*before);
  std::vector<std::string> added;
  for (const std::string& line : AllDangling(after)) {
    if (already.find(line) == already.end()) added.push_back(line);
  }
  return added;
}

}  // namespace phoenix::control_plane
