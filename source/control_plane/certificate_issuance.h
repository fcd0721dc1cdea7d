#pragma once

#include <chrono>
#include <ctime>
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
  // Records one audit line; an error refuses the issuance (every issuance is audited).
  using AuditWriter = std::function<absl::Status(const std::string& line)>;
  // Told of each certificate issued: the node, when it expires and the root it chains to.
  using IssuedObserver = std::function<void(const std::string& node, time_t not_after,
                                            const std::string& root_serial)>;
  struct Limits {
    std::chrono::seconds default_validity{24 * 3600};
    std::chrono::seconds max_validity{24 * 3600};
    std::chrono::seconds min_validity{10};
  };

  // `auth` may be null (no identity store: node ids are taken as declared); `ca` and `auth`
  // must outlive it.
  CertificateIssuance(MeshCa& ca, const Authenticator* auth, IdentityEntitlements entitlements,
                      Limits limits, AuditWriter audit, IssuedObserver issued = nullptr)
      : ca_(ca),
        auth_(auth),
        entitlements_(std::move(entitlements)),
        limits_(limits),
        audit_(std::move(audit)),
        issued_(std::move(issued)) {}

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
  IssuedObserver issued_;
};

// The longest node id a workload certificate carries (its subject CN: 64 bytes in X.509).
inline constexpr size_t kMaxIdentityNodeIdLength = 64;

}  // namespace phoenix::control_plane
