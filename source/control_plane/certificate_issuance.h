#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "phoenix/service/identity/v1/identity.pb.h"
#include "source/control_plane/identity_entitlements.h"
#include "source/control_plane/mesh_ca.h"
#include "source/control_plane/tokens.h"

namespace phoenix::control_plane {

// One CreateCertificate, decided and done apart from gRPC: who the caller is (the certificate
// it presents with a proof of its key, else its ADS credentials), whether that node may hold
// the identity its CSR names, then signing and the audit record; a refusal is audited too,
// with its reason. Never puts key material in an answer, a log line or the audit.
class CertificateIssuance {
 public:
  using AuditWriter = std::function<void(const std::string& line)>;
  struct Limits {
    std::chrono::seconds default_validity{24 * 3600};
    std::chrono::seconds max_validity{24 * 3600};
    std::chrono::seconds min_validity{10};
  };

  // `auth` may be null (no identity store: node ids are taken as declared); `ca` and `auth`
  // must outlive it.
  CertificateIssuance(MeshCa& ca, const Authenticator* auth, IdentityEntitlements entitlements,
                      Limits limits, AuditWriter audit)
      : ca_(ca),
        auth_(auth),
        entitlements_(std::move(entitlements)),
        limits_(limits),
        audit_(std::move(audit)) {}

  absl::StatusOr<service::identity::v1::CreateCertificateResponse> Create(
      const service::identity::v1::CreateCertificateRequest& request,
      const CallerCredentials& credentials);

  const Limits& limits() const { return limits_; }

 private:
  MeshCa& ca_;
  const Authenticator* auth_;
  const IdentityEntitlements entitlements_;
  const Limits limits_;
  AuditWriter audit_;
};

}  // namespace phoenix::control_plane
