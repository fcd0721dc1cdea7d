#include "source/config/file_config_source.h"

#include <cstdio>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "source/config/yaml_loader.h"

namespace phoenix::config {
namespace {

// A digest of a type's resources: the same content always has the same version.
std::string Digest(const ConfigUpdate::Resources& resources) {
  size_t hash = 0;
  for (const auto& any : resources.resources) {
    hash = absl::HashOf(hash, any.type_url(), any.value());
  }
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016zx", hash);
  return buffer;
}

template <typename Message>
ConfigUpdate::Resources Pack(const google::protobuf::RepeatedPtrField<Message>& messages) {
  ConfigUpdate::Resources out;
  for (const auto& message : messages) out.resources.emplace_back().PackFrom(message);
  out.version = Digest(out);
  return out;
}

}  // namespace

absl::Status FileConfigSource::Start(ConfigUpdateCallbacks& callbacks) {
  callbacks_ = &callbacks;
  return Refresh();
}

absl::Status FileConfigSource::Refresh() {
  SourceMap source_map(path_);
  v1::Bootstrap bootstrap;
  absl::Status loaded = LoadYamlFile(path_, &bootstrap, &source_map);
  if (loaded.ok() && bootstrap.has_dynamic_resources() && bootstrap.has_static_resources()) {
    ConfigErrors errors(&source_map);
    errors.Add("static_resources",
               "with dynamic_resources, resources come from the control plane: leave "
               "static_resources out");
    loaded = errors.ToStatus();
  }
  ConfigUpdate update;
  if (loaded.ok() && bootstrap.has_dynamic_resources()) {
    // The control plane's source delivers the resources; this file only the rest.
    update.bootstrap = &bootstrap;
    update.source_map = &source_map;
  } else if (loaded.ok()) {
    update.types[ResourceType::kListener] = Pack(bootstrap.static_resources().listeners());
    update.types[ResourceType::kRouteConfiguration] =
        Pack(bootstrap.static_resources().route_configurations());
    update.types[ResourceType::kCluster] = Pack(bootstrap.static_resources().clusters());
    update.types[ResourceType::kSecret] = Pack(bootstrap.static_resources().secrets());
    update.bootstrap = &bootstrap;
    update.source_map = &source_map;
  }
  absl::Status answer = loaded.ok() ? callbacks_->OnConfigUpdate(update) : loaded;
  if (loaded.ok() && bootstrap.has_dynamic_resources()) {
    status_.clear();
    return answer;
  }
  for (ResourceType type : {ResourceType::kListener, ResourceType::kRouteConfiguration,
                            ResourceType::kCluster, ResourceType::kSecret}) {
    TypeStatus& status = status_[type];
    std::string version = loaded.ok() ? update.types[type].version : "";
    if (answer.ok()) {
      status = {version, "", "", ""};
    } else {
      status.rejected_version = version;
      status.last_error = std::string(answer.message());
    }
  }
  return answer;
}

}  // namespace phoenix::config
