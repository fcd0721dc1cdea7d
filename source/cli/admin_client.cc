#include "source/cli/admin_client.h"

#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace phoenix::cli {
namespace {

// The contents of the PEM file `path` given with `flag`.
absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read it (", flag, ")"));
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (bytes.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a PEM file (", flag, ")"));
  }
  return bytes.str();
}

}  // namespace

AdminClient::AdminClient(std::string server, std::string token, const ClientTlsFiles& tls,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : server_(std::move(server)),
      token_(std::move(token)),
      tls_(tls.enabled()),
      client_certificate_(!tls.cert.empty()),
      stub_(service::admin::v1::ControlPlaneAdminService::NewStub(
          grpc::CreateChannel(server_, std::move(credentials)))) {}

std::unique_ptr<grpc::ClientContext> AdminClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  if (!token_.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return context;
}

std::string AdminClient::Explain(const grpc::Status& status) const {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (absl::StrContains(status.error_message(), "Connection refused")) {
        return absl::StrCat("cannot reach phoenix-cp at ", server_, ": is it running? (--server)");
      }
      return ExplainBrokenConnection(status);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StrCat("phoenix-cp at ", server_, " did not answer in time");
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat("phoenix-cp refused the call: ", status.error_message(),
                          token_.empty() && !client_certificate_
                              ? " (pass an admin token: --token-file FILE, or an admin "
                                "certificate: --client-cert and --client-key)"
                              : " (check --token-file or --client-cert)");
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::StrCat("phoenix-cp refused the call: ", status.error_message(),
                          " (use a token or certificate whose role is admin)");
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::StrCat(server_, " does not serve phoenix-cp's admin service (--server?)");
    default:
      return status.error_message();
  }
}

std::string AdminClient::ExplainBrokenConnection(const grpc::Status& status) const {
  const std::string& detail = status.error_message();
  std::string at = absl::StrCat("phoenix-cp at ", server_);
  if (!tls_) {
    return absl::StrCat(at,
                        " ended the connection: if it serves TLS, pass --ca FILE (and "
                        "--client-cert and --client-key if it wants a client certificate)");
  }
  if (absl::StrContains(detail, "certificate verify failed")) {
    return absl::StrCat(at, " showed a certificate that --ca did not sign");
  }
  // With TLS 1.3 a refused client certificate reaches the client as a closed socket.
  if (absl::StrContains(detail, "Socket closed") || absl::StrContains(detail, "reset by peer")) {
    return client_certificate_
               ? absl::StrCat(at,
                              " refused the client certificate: is --client-cert signed "
                              "by the CA phoenix-cp trusts (its --client-ca)?")
               : absl::StrCat(at,
                              " wants a client certificate: pass --client-cert and "
                              "--client-key");
  }
  return absl::StrCat("TLS with ", at, " failed: ", detail);
}

absl::StatusOr<std::string> AdminClient::ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the token file"));
  std::string line;
  std::getline(in, line);
  size_t start = line.find_first_not_of(" \t\r");
  size_t end = line.find_last_not_of(" \t\r");
  if (start == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the token file is empty"));
  }
  return line.substr(start, end - start + 1);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> AdminClient::Credentials(
    const ClientTlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  for (auto [path, flag, pem] : {std::tuple{&tls.ca, "--ca", &options.pem_root_certs},
                                 std::tuple{&tls.cert, "--client-cert", &options.pem_cert_chain},
                                 std::tuple{&tls.key, "--client-key", &options.pem_private_key}}) {
    if (path->empty()) continue;
    auto read = ReadPem(*path, flag);
    if (!read.ok()) return read.status();
    *pem = *std::move(read);
  }
  return grpc::SslCredentials(options);
}

}  // namespace phoenix::cli
