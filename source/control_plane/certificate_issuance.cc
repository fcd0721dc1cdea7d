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
    (void)audit_(AuditLog::IssueRefusedLine(absl::Now(), who, node, requested,
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
    if (presented->node_id.empty()) {
      return refuse(absl::UnauthenticatedError("the certificate presented names no node"));
    }
    if (!node.empty() && node != presented->node_id) {
      return refuse(absl::PermissionDeniedError(absl::StrCat(
          "the certificate presented is node ", presented->node_id, "'s, not ", node, "'s")));
    }
    node = presented->node_id;
    // A certificate renews itself only while its node may still connect at all: revoking
    // the node's token (or certificate role) ends its renewals too.
    if (auth_ != nullptr && auth_->enabled() && !auth_->HasNodeRole(node)) {
      return refuse(absl::PermissionDeniedError(
          absl::StrCat("node ", node, " no longer has a node role (--tokens, --principals)")));
    }
  } else {
    if (node.empty()) return refuse(absl::InvalidArgumentError("node_id is required"));
    if (auth_ != nullptr && auth_->enabled()) {
      auto principal = auth_->ForNode(credentials);
      if (!principal.ok()) return refuse(principal.status());
      who = principal->name;
      if (auto may = Authenticator::MayServe(*principal, node); !may.ok()) return refuse(may);
    }
  }

  if (node.size() > kMaxIdentityNodeIdLength) {
    return refuse(absl::InvalidArgumentError(absl::StrCat(
        "a node id of a workload identity is at most ", kMaxIdentityNodeIdLength, " bytes")));
  }
  auto granted = entitlements_.Grant(node, requested);
  if (!granted.ok()) return refuse(granted.status());

  std::chrono::seconds validity = limits_.default_validity;
  if (request.has_validity()) validity = std::chrono::seconds(request.validity().seconds());
  validity = std::clamp(validity, limits_.min_validity, limits_.max_validity);

  auto issued = ca_.Issue(request.csr(), *granted, node, validity);
  if (!issued.ok()) return refuse(issued.status());
  if (absl::Status audited =
          audit_(AuditLog::IssuedLine(absl::Now(), who, node, issued->spiffe_id, issued->serial,
                                      absl::FromTimeT(issued->not_after), issued->root_serial));
      !audited.ok()) {
    // Not handed out: an issuance the audit trail does not show must not exist.
    PHX_LOG(kError, "phoenix-cp: certificate for node ", node,
            " withheld: the audit record could not be written: ", audited.message());
    return absl::UnavailableError("the audit trail cannot be written; try again");
  }
  if (issued_) issued_(node, issued->not_after, issued->root_serial);
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
