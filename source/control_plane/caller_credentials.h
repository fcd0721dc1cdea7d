#pragma once

#include <string>

#include "source/control_plane/tokens.h"

namespace grpc {
class AuthContext;
class ServerContextBase;
}  // namespace grpc

namespace phoenix::control_plane {

// The principal a verified client certificate names, as gRPC's AuthContext reports it: the
// first URI SAN (a SPIFFE ID), else the first DNS SAN, else the subject's common name. ""
// when the peer showed no verified certificate (plaintext, or TLS without a client
// certificate).
std::string CertificatePrincipal(const grpc::AuthContext& auth);

// What a call presents to the Authenticator: its authorization metadata and the principal of
// its client certificate.
CallerCredentials CredentialsOf(const grpc::ServerContextBase& context);

}  // namespace phoenix::control_plane
