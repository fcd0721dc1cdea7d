#include "source/control_plane/server_credentials.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "phoenix/config/v1/tls.pb.h"
#include "source/tls/certificate.h"

namespace phoenix::control_plane {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files) {
  if (files.cert.empty() && files.key.empty() && files.client_ca.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and its key");
  }
  config::v1::TlsCertificate certificate;
  certificate.mutable_certificate_chain()->set_filename(files.cert);
  certificate.mutable_private_key()->set_filename(files.key);
  auto loaded = tls::LoadCertificate(certificate);  // Checks the pair.
  if (!loaded.ok()) return loaded.status();
  auto chain = tls::ReadDataSource(certificate.certificate_chain());
  if (!chain.ok()) return chain.status();
  auto key = tls::ReadDataSource(certificate.private_key());
  if (!key.ok()) return key.status();

  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *chain});
  if (!files.client_ca.empty()) {
    config::v1::DataSource ca;
    ca.set_filename(files.client_ca);
    if (auto store = tls::LoadTrustedCa(ca, &options.pem_root_certs); !store.ok()) {
      return store.status();
    }
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace phoenix::control_plane
