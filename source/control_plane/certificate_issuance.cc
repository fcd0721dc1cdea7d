#include "source/control_plane/certificate_issuance.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "source/common/logging.h"
#include "source/control_plane/audit_log.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::control_plane {

using service::identity::v1::CreateCertificateRequest;
using service::identity::v1::CreateCertificateResponse;

absl::StatusOr<CreateCertificateResponse> CertificateIssuance::Create(
    const CreateCertificateRequest& request, const CallerCredentials& credentials) {
  std::string who = "anonymous";
  std::string node = request.node_id();
  std::string requested;
  auto refuse = [&](const absl::Status& status) {
    audit_(AuditLog::IssueRefusedLine(absl::Now(), who, node, requested,
                                      std::string(status.message())));
    PHX_LOG(kWarn, "phoenix-cp: certificate for node ", node, " (", who,
            ") refused: ", status.message());
    return status;
  };

  auto asked = tls::CsrSpiffeId(request.csr());
  if (!asked.ok()) return refuse(asked.status());
  requested = *asked;

  // Who is asking: the certificate in hand, else the stream's credentials.
  if (!request.presented_certificate_chain().empty()) {
    auto presented =
        ca_.Verify(request.presented_certificate_chain(), request.csr(), request.proof());
    if (!presented.ok()) return refuse(presented.status());
    who = absl::StrCat(presented->spiffe_id, " (certificate ", presented->serial, ")");
    if (!node.empty() && node != presented->node_id) {
      return refuse(absl::PermissionDeniedError(absl::StrCat(
          "the certificate presented is node ", presented->node_id, "'s, not ", node, "'s")));
    }
    node = presented->node_id;
  } else {
    if (node.empty()) return refuse(absl::InvalidArgumentError("node_id is required"));
    if (auth_ != nullptr && auth_->enabled()) {
      auto principal = auth_->ForNode(credentials);
      if (!principal.ok()) return refuse(principal.status());
      who = principal->name;
      if (auto may = Authenticator::MayServe(*principal, node); !may.ok()) return refuse(may);
    }
  }

  auto granted = entitlements_.Grant(node, requested);
  if (!granted.ok()) return refuse(granted.status());

  std::chrono::seconds validity = limits_.default_validity;
  if (request.has_validity()) validity = std::chrono::seconds(request.validity().seconds());
  validity = std::clamp(validity, limits_.min_validity, limits_.max_validity);

  auto issued = ca_.Issue(request.csr(), *granted, node, validity);
  if (!issued.ok()) return refuse(issued.status());
  audit_(AuditLog::IssuedLine(absl::Now(), who, node, issued->spiffe_id, issued->serial,
                              absl::FromTimeT(issued->not_after)));
  PHX_LOG(kInfo, "phoenix-cp: issued ", issued->spiffe_id, " to node ", node, " (", who,
          "): serial ", issued->serial, ", ", validity.count(), " s");
  CreateCertificateResponse response;
  response.set_certificate_chain(issued->chain_pem);
  response.set_spiffe_id(issued->spiffe_id);
  response.set_serial(issued->serial);
  response.set_not_after_unix(issued->not_after);
  response.set_trust_bundle(ca_.TrustBundle());
  return response;
}

}  // namespace phoenix::control_plane
