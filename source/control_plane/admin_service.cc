#include "source/control_plane/admin_service.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/control_plane/caller_credentials.h"
#include "source/control_plane/policy_explainer.h"
#include "source/control_plane/resource_text.h"

namespace phoenix::control_plane {
namespace {

namespace admin = service::admin::v1;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::vector<IncomingFile> Files(
    const google::protobuf::RepeatedPtrField<admin::ResourceFile>& files) {
  std::vector<IncomingFile> out;
  for (const auto& file : files) out.push_back({file.path(), file.content()});
  return out;
}

// A refused plan: its errors (INVALID_ARGUMENT, one per line) go in `errors` and the call
// succeeds; any other failure is the call's.
grpc::Status AsErrors(const absl::Status& status,
                      google::protobuf::RepeatedPtrField<std::string>* errors) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return ToGrpc(status);
  for (absl::string_view line : absl::StrSplit(status.message(), '\n', absl::SkipEmpty())) {
    errors->Add(std::string(line));
  }
  return grpc::Status::OK;
}

void Fill(const ResourceDiffText& diff, admin::ResourceDiff* out) {
  out->set_type(std::string(config::TypeName(diff.change.type)));
  out->set_name(diff.change.name);
  out->set_action(diff.change.action);
  out->set_node(diff.change.node);
  out->set_diff(diff.diff);
}

void Fill(const AdminBackend::Applied& applied, admin::ApplyResponse* out) {
  out->set_version(applied.version);
  out->set_changed(!applied.diffs.empty());
  for (const ResourceDiffText& diff : applied.diffs) Fill(diff, out->add_diffs());
}

// The type name of a type URL ("type.googleapis.com/phoenix.config.v1.Cluster" -> "Cluster").
std::string TypeNameOf(const std::string& type_url) {
  size_t dot = type_url.rfind('.');
  return dot == std::string::npos ? type_url : type_url.substr(dot + 1);
}

std::string Relative(const std::string& path, const std::string& dir) {
  std::string prefix = dir;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
}

}  // namespace

std::optional<ResourceType> ParseResourceTypeWord(std::string_view word) {
  std::string w(word);
  std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
  if (w == "listeners" || w == "listener") return ResourceType::kListener;
  if (w == "routes" || w == "route" || w == "routeconfiguration" || w == "route_configurations") {
    return ResourceType::kRouteConfiguration;
  }
  if (w == "clusters" || w == "cluster") return ResourceType::kCluster;
  if (w == "secrets" || w == "secret") return ResourceType::kSecret;
  if (w == "endpoints" || w == "endpoint" || w == "clusterloadassignment" ||
      w == "cluster_load_assignments") {
    return ResourceType::kClusterLoadAssignment;
  }
  return std::nullopt;
}

template <typename Handler>
grpc::ServerUnaryReactor* AdminService::Answer(grpc::CallbackServerContext* context,
                                               Handler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto principal = auth_.ForAdmin(CredentialsOf(*context));
  if (!principal.ok()) {
    PHX_LOG(kWarn, "phoenix-cp: admin call from ", context->peer(),
            " refused: ", principal.status().message());
    reactor->Finish(ToGrpc(principal.status()));
    return reactor;
  }
  reactor->Finish(handler(*principal));
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Validate(grpc::CallbackServerContext* context,
                                                 const admin::ValidateRequest* request,
                                                 admin::ValidateResponse* response) {
  return Answer(context, [&](const Principal&) {
    auto plan = backend_.Plan(Files(request->files()));
    return plan.ok() ? grpc::Status::OK : AsErrors(plan.status(), response->mutable_errors());
  });
}

grpc::ServerUnaryReactor* AdminService::Diff(grpc::CallbackServerContext* context,
                                             const admin::DiffRequest* request,
                                             admin::DiffResponse* response) {
  return Answer(context, [&](const Principal&) {
    auto plan = backend_.Plan(Files(request->files()));
    auto snapshot = backend_.Snapshot();
    response->set_version(snapshot ? snapshot->version() : 0);
    if (!plan.ok()) return AsErrors(plan.status(), response->mutable_errors());
    for (const ResourceDiffText& diff : *plan) Fill(diff, response->add_diffs());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Apply(grpc::CallbackServerContext* context,
                                              const admin::ApplyRequest* request,
                                              admin::ApplyResponse* response) {
  return Answer(context, [&](const Principal& principal) {
    auto applied = backend_.Apply(Files(request->files()), principal.name);
    if (!applied.ok()) return ToGrpc(applied.status());
    Fill(*applied, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Delete(grpc::CallbackServerContext* context,
                                               const admin::DeleteRequest* request,
                                               admin::ApplyResponse* response) {
  return Answer(context, [&](const Principal& principal) {
    std::vector<std::string> paths(request->paths().begin(), request->paths().end());
    auto applied = backend_.Delete(paths, principal.name);
    if (!applied.ok()) return ToGrpc(applied.status());
    Fill(*applied, response);
    return grpc::Status::OK;
  });
}

namespace {

void FillCa(const AdminBackend::CaState& state, admin::CaStatusResponse* out) {
  out->set_trust_domain(state.trust_domain);
  out->set_phase(state.phase);
  for (const auto& serial : state.bundle_root_serials) out->add_bundle_root_serials(serial);
  out->set_issuing_root_serial(state.issuing_root_serial);
  out->set_bundle_version(state.bundle_version);
  for (const auto& node : state.proxies_acked) out->add_proxies_acked(node);
  for (const auto& node : state.proxies_waiting) out->add_proxies_waiting(node);
  for (const auto& replica : state.replicas) out->add_replicas(replica);
  if (state.old_certificates_expire != 0) {
    out->mutable_old_certificates_expire()->set_seconds(state.old_certificates_expire);
  }
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::CaStatus(grpc::CallbackServerContext* context,
                                                 const admin::CaStatusRequest*,
                                                 admin::CaStatusResponse* response) {
  return Answer(context, [&](const Principal&) {
    auto state = backend_.CaStatus();
    if (!state.ok()) return ToGrpc(state.status());
    FillCa(*state, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::CaRotate(grpc::CallbackServerContext* context,
                                                 const admin::CaRotateRequest* request,
                                                 admin::CaStatusResponse* response) {
  return Answer(context, [&](const Principal& principal) {
    auto state = request->abort() ? backend_.AbortCaRotation(principal.name)
                                  : backend_.StartCaRotation(principal.name);
    if (!state.ok()) return ToGrpc(state.status());
    FillCa(*state, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Rollback(grpc::CallbackServerContext* context,
                                                 const admin::RollbackRequest* request,
                                                 admin::ApplyResponse* response) {
  return Answer(context, [&](const Principal& principal) {
    auto applied = backend_.Rollback(request->version(), principal.name);
    if (!applied.ok()) return ToGrpc(applied.status());
    Fill(*applied, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::RotateCertificate(
    grpc::CallbackServerContext* context, const admin::RotateCertificateRequest* request,
    admin::ApplyResponse* response) {
  return Answer(context, [&](const Principal& principal) {
    auto applied =
        backend_.RotateCertificate(request->name(), request->node(), request->certificate_chain(),
                                   request->private_key(), principal.name);
    if (!applied.ok()) return ToGrpc(applied.status());
    Fill(*applied, response);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Get(grpc::CallbackServerContext* context,
                                            const admin::GetRequest* request,
                                            admin::GetResponse* response) {
  return Answer(context, [&](const Principal&) {
    std::optional<ResourceType> type = ParseResourceTypeWord(request->type());
    if (!type) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("unknown resource type '", request->type(),
                                       "' (listeners, routes, clusters or secrets)"));
    }
    auto snapshot = backend_.Snapshot();
    if (snapshot == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no snapshot yet");
    response->set_version(snapshot->version());
    TextFormat format =
        request->format() == admin::GetRequest::JSON ? TextFormat::kJson : TextFormat::kYaml;
    auto add = [&](const ResourcesByType& set, const std::string& node) {
      if (!request->node().empty() && node != request->node()) return;
      auto of_type = set.find(*type);
      if (of_type == set.end()) return;
      for (const auto& [name, resource] : of_type->second) {
        if (!request->name().empty() && name != request->name()) continue;
        auto* out = response->add_resources();
        out->set_type(std::string(config::TypeName(*type)));
        out->set_name(name);
        out->set_node(node);
        out->set_file(Relative(resource.file, backend_.resources_dir()));
        out->set_text(RenderResource(resource, *type, format));
      }
    };
    add(snapshot->common(), "");
    for (const auto& [node, set] : snapshot->per_node()) add(set, node);
    if (!request->name().empty() && response->resources_size() == 0) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("no ", AbslView(config::TypeName(*type)), " named '", request->name(), "'"));
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Status(grpc::CallbackServerContext* context,
                                               const admin::StatusRequest* request,
                                               admin::StatusResponse* response) {
  return Answer(context, [&](const Principal&) {
    auto snapshot = backend_.Snapshot();
    response->set_version(snapshot ? snapshot->version() : 0);
    for (const ProxyStatus& proxy : backend_.Proxies()) {
      auto* out = response->add_proxies();
      out->set_node_id(proxy.node_id);
      out->set_peer(proxy.peer);
      out->set_principal(proxy.principal);
      *out->mutable_connected_since() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(proxy.connected_since));
      for (ResourceType type : ServedTypes()) {
        auto it = proxy.types.find(std::string(config::TypeUrl(type)));
        if (it == proxy.types.end()) continue;
        const StreamSubscriptions::TypeState& state = it->second;
        auto* t = out->add_types();
        t->set_type(TypeNameOf(it->first));
        t->set_acked_version(state.acked_version);
        if (!state.sent_version.empty() && state.sent_version != state.acked_version &&
            state.sent_version != state.nacked_version) {
          t->set_pending_version(state.sent_version);
        }
        t->set_last_nack_version(state.last_nack_version);
        t->set_last_nack_error(state.last_nack_error);
      }
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Audit(grpc::CallbackServerContext* context,
                                              const admin::AuditRequest* request,
                                              admin::AuditResponse* response) {
  return Answer(context, [&](const Principal&) {
    auto lines = backend_.AuditLines();
    if (!lines.ok()) return ToGrpc(lines.status());
    absl::Time since = absl::InfinitePast();
    if (request->has_since()) {
      since = absl::FromUnixNanos(
          google::protobuf::util::TimeUtil::TimestampToNanoseconds(request->since()));
    }
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    for (const std::string& line : *lines) {
      admin::AuditEntry entry;
      if (!google::protobuf::util::JsonStringToMessage(line, &entry, options).ok()) continue;
      absl::Time time;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, entry.time(), &time, &error)) continue;
      if (time < since) continue;
      *response->add_entries() = std::move(entry);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminService::Explain(grpc::CallbackServerContext* context,
                                                const admin::ExplainRequest* request,
                                                admin::ExplainResponse* response) {
  return Answer(context, [&](const Principal&) {
    if (request->node().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name the node (--node ID)");
    }
    auto snapshot = backend_.Snapshot();
    if (snapshot == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no snapshot yet");
    auto explained =
        ExplainForNode(*snapshot, request->node(), request->listener(), request->request());
    if (!explained.ok()) {
      return grpc::Status(explained.status().code() == absl::StatusCode::kNotFound
                              ? grpc::StatusCode::NOT_FOUND
                              : grpc::StatusCode::FAILED_PRECONDITION,
                          std::string(explained.status().message()));
    }
    response->set_listener(explained->listener);
    for (auto& line : explained->lines) response->add_lines(std::move(line));
    response->set_outcome(explained->outcome);
    response->set_version(snapshot->version());
    return grpc::Status::OK;
  });
}

}  // namespace phoenix::control_plane
