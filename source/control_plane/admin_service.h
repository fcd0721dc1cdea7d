#pragma once

#include "phoenix/service/admin/v1/admin.grpc.pb.h"
#include "source/control_plane/admin_backend.h"
#include "source/control_plane/tokens.h"

namespace phoenix::control_plane {

// phoenix-cp's admin gRPC service (api/phoenix/service/admin/v1, phoenixctl's server):
// authenticates each call (an admin principal when there is an identity store), translates between
// the protos and the AdminBackend, and answers on gRPC's callback threads (unary reactors).
class AdminService : public service::admin::v1::ControlPlaneAdminService::CallbackService {
 public:
  // Both must outlive the service.
  AdminService(AdminBackend& backend, const Authenticator& auth) : backend_(backend), auth_(auth) {}

  grpc::ServerUnaryReactor* Validate(grpc::CallbackServerContext* context,
                                     const service::admin::v1::ValidateRequest* request,
                                     service::admin::v1::ValidateResponse* response) override;
  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* context,
                                 const service::admin::v1::DiffRequest* request,
                                 service::admin::v1::DiffResponse* response) override;
  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* context,
                                  const service::admin::v1::ApplyRequest* request,
                                  service::admin::v1::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const service::admin::v1::DeleteRequest* request,
                                   service::admin::v1::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const service::admin::v1::RollbackRequest* request,
                                     service::admin::v1::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* RotateCertificate(
      grpc::CallbackServerContext* context,
      const service::admin::v1::RotateCertificateRequest* request,
      service::admin::v1::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const service::admin::v1::GetRequest* request,
                                service::admin::v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const service::admin::v1::StatusRequest* request,
                                   service::admin::v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Audit(grpc::CallbackServerContext* context,
                                  const service::admin::v1::AuditRequest* request,
                                  service::admin::v1::AuditResponse* response) override;
  grpc::ServerUnaryReactor* CaStatus(grpc::CallbackServerContext* context,
                                     const service::admin::v1::CaStatusRequest* request,
                                     service::admin::v1::CaStatusResponse* response) override;
  grpc::ServerUnaryReactor* CaRotate(grpc::CallbackServerContext* context,
                                     const service::admin::v1::CaRotateRequest* request,
                                     service::admin::v1::CaStatusResponse* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* context,
                                    const service::admin::v1::ExplainRequest* request,
                                    service::admin::v1::ExplainResponse* response) override;

 private:
  // Authenticates the call, then finishes it with what `handler` returns.
  template <typename Handler>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, Handler handler);

  AdminBackend& backend_;
  const Authenticator& auth_;
};

// The resource type a `phoenixctl get` word names: "listeners", "routes", "clusters",
// "secrets" (also singular, or the type name "RouteConfiguration"); nullopt otherwise.
std::optional<ResourceType> ParseResourceTypeWord(std::string_view word);

}  // namespace phoenix::control_plane
