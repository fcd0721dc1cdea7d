#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace phoenix::control_plane {

// The PEM files of phoenix-cp's TLS (--tls-cert, --tls-key, --client-ca); all "" for
// plaintext.
struct ServerTlsFiles {
  std::string cert;       // Certificate chain, leaf first.
  std::string key;        // Its private key.
  std::string client_ca;  // The CA clients' certificates must chain to; "": none asked for.
};

// The credentials phoenix-cp's gRPC port listens with: plaintext without a certificate; TLS
// with one; with a client CA too, mutual TLS (a client certificate is required and verified
// against it). The files are read and checked now (a key that is not the certificate's, an
// expired certificate, a CA file without a certificate), and an error names the file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files);

}  // namespace phoenix::control_plane
