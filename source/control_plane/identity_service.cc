#include "source/control_plane/identity_service.h"

#include "source/control_plane/caller_credentials.h"

namespace phoenix::control_plane {

grpc::ServerUnaryReactor* IdentityService::CreateCertificate(
    grpc::CallbackServerContext* context,
    const service::identity::v1::CreateCertificateRequest* request,
    service::identity::v1::CreateCertificateResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto issued = issuance_.Create(*request, CredentialsOf(*context));
  if (issued.ok()) {
    *response = *std::move(issued);
    reactor->Finish(grpc::Status::OK);
  } else {
    reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(issued.status().code()),
                                 std::string(issued.status().message())));
  }
  return reactor;
}

}  // namespace phoenix::control_plane
