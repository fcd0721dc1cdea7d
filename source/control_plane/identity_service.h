#pragma once

#include "phoenix/service/identity/v1/identity.grpc.pb.h"
#include "source/control_plane/certificate_issuance.h"

namespace phoenix::control_plane {

// The IdentityService gRPC endpoint (api/phoenix/service/identity/v1) on phoenix-cp's port:
// hands each call, with the credentials it presents, to CertificateIssuance, on gRPC's
// callback threads.
class IdentityService : public service::identity::v1::IdentityService::CallbackService {
 public:
  // `issuance` must outlive the service.
  explicit IdentityService(CertificateIssuance& issuance) : issuance_(issuance) {}

  grpc::ServerUnaryReactor* CreateCertificate(
      grpc::CallbackServerContext* context,
      const service::identity::v1::CreateCertificateRequest* request,
      service::identity::v1::CreateCertificateResponse* response) override;

 private:
  CertificateIssuance& issuance_;
};

}  // namespace phoenix::control_plane
