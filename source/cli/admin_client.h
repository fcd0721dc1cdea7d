#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "phoenix/service/admin/v1/admin.grpc.pb.h"

namespace phoenix::cli {

// The PEM files phoenixctl speaks TLS with (--ca, --client-cert, --client-key); all "" for
// plaintext.
struct ClientTlsFiles {
  std::string ca;
  std::string cert;
  std::string key;

  bool enabled() const { return !ca.empty() || !cert.empty(); }
};

// phoenixctl's connection to phoenix-cp's admin service: one channel (plaintext or TLS), the
// bearer token on every call, a deadline, and gRPC failures turned into short errors that say
// what to do.
class AdminClient {
 public:
  // `token` "" sends none; `credentials` come from Credentials(`tls`).
  AdminClient(std::string server, std::string token, const ClientTlsFiles& tls,
              std::shared_ptr<grpc::ChannelCredentials> credentials);

  service::admin::v1::ControlPlaneAdminService::StubInterface& stub() { return *stub_; }
  // A context for one call: authorization metadata and the deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // A failed call as one line for the user.
  std::string Explain(const grpc::Status& status) const;
  const std::string& server() const { return server_; }

  // The token in `path`: its first line, trimmed.
  static absl::StatusOr<std::string> ReadToken(const std::string& path);
  // Plaintext when `tls` names no file; else TLS with its files, read now (an error names
  // the flag and the file).
  static absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
      const ClientTlsFiles& tls);

 private:
  // Why a connection that was made failed (UNAVAILABLE, not refused): TLS trouble, mostly.
  std::string ExplainBrokenConnection(const grpc::Status& status) const;

  const std::string server_;
  const std::string token_;
  const bool tls_;
  const bool client_certificate_;
  std::unique_ptr<service::admin::v1::ControlPlaneAdminService::StubInterface> stub_;
};

}  // namespace phoenix::cli
