#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "phoenix/service/admin/v1/admin.grpc.pb.h"

namespace phoenix::cli {

// phoenixctl's connection to phoenix-cp's admin service: one channel, the bearer token on
// every call, a deadline, and gRPC failures turned into short errors that say what to do.
class AdminClient {
 public:
  // `token` "" sends none.
  AdminClient(std::string server, std::string token);

  service::admin::v1::ControlPlaneAdminService::StubInterface& stub() { return *stub_; }
  // A context for one call: authorization metadata and the deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // A failed call as one line for the user.
  std::string Explain(const grpc::Status& status) const;
  const std::string& server() const { return server_; }

  // The token in `path`: its first line, trimmed.
  static absl::StatusOr<std::string> ReadToken(const std::string& path);

 private:
  const std::string server_;
  const std::string token_;
  std::unique_ptr<service::admin::v1::ControlPlaneAdminService::StubInterface> stub_;
};

}  // namespace phoenix::cli
