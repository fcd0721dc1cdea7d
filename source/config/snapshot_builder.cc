#include "source/config/snapshot_builder.h"

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::config {
namespace {

// Replaces `out` with the messages packed in `resources`; false if one does not unpack.
template <typename Message>
bool Unpack(const std::vector<google::protobuf::Any>& resources,
            google::protobuf::RepeatedPtrField<Message>* out) {
  out->Clear();
  for (const auto& any : resources) {
    if (!any.UnpackTo(out->Add())) return false;
  }
  return true;
}

// The resources of `update` laid over those of `previous` (may be null), type by type.
absl::StatusOr<v1::Bootstrap> Merge(const ConfigUpdate& update, const ConfigSnapshot* previous,
                                    const std::map<std::string, v1::Secret>& local_secrets) {
  v1::Bootstrap bootstrap;
  if (previous != nullptr) bootstrap = previous->bootstrap;
  if (update.bootstrap != nullptr) {
    // The file's fields, with the resources in force (a type the update carries replaces
    // them below).
    v1::StaticResources in_force = std::move(*bootstrap.mutable_static_resources());
    bootstrap = *update.bootstrap;
    *bootstrap.mutable_static_resources() = std::move(in_force);
  }
  auto* resources = bootstrap.mutable_static_resources();
  for (const auto& [type, delivered] : update.types) {
    bool unpacked = true;
    switch (type) {
      case ResourceType::kListener:
        unpacked = Unpack(delivered.resources, resources->mutable_listeners());
        break;
      case ResourceType::kRouteConfiguration:
        unpacked = Unpack(delivered.resources, resources->mutable_route_configurations());
        break;
      case ResourceType::kCluster:
        unpacked = Unpack(delivered.resources, resources->mutable_clusters());
        break;
      case ResourceType::kSecret:
        unpacked = Unpack(delivered.resources, resources->mutable_secrets());
        break;
      case ResourceType::kClusterLoadAssignment:
        unpacked = Unpack(delivered.resources, resources->mutable_cluster_load_assignments());
        break;
    }
    if (!unpacked) {
      return absl::InvalidArgumentError(
          absl::StrCat("a ", AbslView(TypeName(type)), " resource does not unpack"));
    }
  }
  // Local secrets win over delivered ones of the same name.
  auto* secrets = resources->mutable_secrets();
  for (int i = secrets->size() - 1; i >= 0; --i) {
    if (local_secrets.contains(secrets->Get(i).name())) secrets->DeleteSubrange(i, 1);
  }
  for (const auto& [name, secret] : local_secrets) *secrets->Add() = secret;
  return bootstrap;
}

}  // namespace

absl::Status SnapshotBuilder::OnConfigUpdate(const ConfigUpdate& update) {
  auto bootstrap = Merge(update, current_.get(), local_secrets_);
  if (!bootstrap.ok()) return bootstrap.status();
  // Resources from a control plane arrive one type at a time: references are not typos.
  SourceKind kind = bootstrap->has_dynamic_resources() ? SourceKind::kDynamic : kind_;
  auto snapshot =
      BuildSnapshot(*bootstrap, update.source_map, stats_, current_.get(), next_version_, kind);
  if (!snapshot.ok()) return snapshot.status();
  std::shared_ptr<const ConfigSnapshot> built = *std::move(snapshot);
  if (absl::Status published = publisher_(built); !published.ok()) return published;
  ++next_version_;
  current_ = std::move(built);
  return absl::OkStatus();
}

absl::Status SnapshotBuilder::SetLocalSecret(const v1::Secret& secret) {
  local_secrets_[secret.name()] = secret;
  if (current_ == nullptr) return absl::OkStatus();  // Goes in with the first update.
  return OnConfigUpdate(ConfigUpdate());
}

absl::Status SnapshotBuilder::Rebuild() {
  if (current_ == nullptr) return absl::FailedPreconditionError("no config in force yet");
  return OnConfigUpdate(ConfigUpdate());  // No resources: the ones in force, as they are.
}

}  // namespace phoenix::config
