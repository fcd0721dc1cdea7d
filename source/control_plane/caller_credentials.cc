#include "source/control_plane/caller_credentials.h"

#include "grpc/grpc_security_constants.h"
#include "grpcpp/grpcpp.h"

namespace phoenix::control_plane {

std::string CertificatePrincipal(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  for (const char* property :
       {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    std::vector<grpc::string_ref> values = auth.FindPropertyValues(property);
    if (!values.empty() && !values.front().empty()) {
      return std::string(values.front().data(), values.front().size());
    }
  }
  return "";
}

CallerCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  CallerCredentials credentials;
  auto it = context.client_metadata().find("authorization");
  if (it != context.client_metadata().end()) {
    credentials.authorization.assign(it->second.data(), it->second.size());
  }
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context(); auth != nullptr) {
    credentials.certificate_principal = CertificatePrincipal(*auth);
  }
  return credentials;
}

}  // namespace phoenix::control_plane
