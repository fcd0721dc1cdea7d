#include "source/control_plane/resource_text.h"

#include <functional>

#include "google/protobuf/util/json_util.h"
#include "source/config/redact.h"
#include "yaml-cpp/yaml.h"

namespace phoenix::control_plane {
namespace {

// Unpacks `resource` into a bootstrap of its own (so the redaction /config_dump uses applies)
// and returns the message inside it.
const google::protobuf::Message* Unpack(const Resource& resource, ResourceType type,
                                        config::v1::Bootstrap& holder) {
  auto* out = holder.mutable_static_resources();
  const google::protobuf::Any& any = resource.packed;
  google::protobuf::Message* message = nullptr;
  switch (type) {
    case ResourceType::kListener:
      message = out->add_listeners();
      break;
    case ResourceType::kRouteConfiguration:
      message = out->add_route_configurations();
      break;
    case ResourceType::kCluster:
      message = out->add_clusters();
      break;
    case ResourceType::kSecret:
      message = out->add_secrets();
      break;
    case ResourceType::kClusterLoadAssignment:
      message = out->add_cluster_load_assignments();
      break;
  }
  if (!any.UnpackTo(message)) return nullptr;
  config::RedactPrivateKeys(&holder);
  return message;
}

// Block style throughout, except empty maps and lists ({} and [] on the key's line).
void MakeBlock(YAML::Node node) {
  bool empty = (node.IsMap() || node.IsSequence()) && node.size() == 0;
  node.SetStyle(empty ? YAML::EmitterStyle::Flow : YAML::EmitterStyle::Block);
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) MakeBlock(it->second);
  } else if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it) MakeBlock(*it);
  }
}

}  // namespace

std::string RenderResource(const Resource& resource, ResourceType type, TextFormat format) {
  config::v1::Bootstrap holder;
  const google::protobuf::Message* message = Unpack(resource, type, holder);
  return message == nullptr ? "" : RenderMessage(*message, format);
}

std::string RenderMessage(const google::protobuf::Message& message, TextFormat format) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "";
  if (format == TextFormat::kJson) return json;
  YAML::Node node = YAML::Load(json);
  MakeBlock(node);
  YAML::Emitter out;
  out << node;
  return std::string(out.c_str()) + "\n";
}

}  // namespace phoenix::control_plane
