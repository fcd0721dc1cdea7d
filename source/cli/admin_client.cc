#include "source/cli/admin_client.h"

#include <fstream>

#include "absl/strings/str_cat.h"

namespace phoenix::cli {

AdminClient::AdminClient(std::string server, std::string token)
    : server_(std::move(server)),
      token_(std::move(token)),
      stub_(service::admin::v1::ControlPlaneAdminService::NewStub(
          grpc::CreateChannel(server_, grpc::InsecureChannelCredentials()))) {}

std::unique_ptr<grpc::ClientContext> AdminClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  if (!token_.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return context;
}

std::string AdminClient::Explain(const grpc::Status& status) const {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("cannot reach phoenix-cp at ", server_, ": is it running? (--server)");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StrCat("phoenix-cp at ", server_, " did not answer in time");
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat(
          "phoenix-cp refused the call: ", status.error_message(),
          token_.empty() ? " (pass an admin token: --token-file FILE)" : " (check --token-file)");
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::StrCat("phoenix-cp refused the call: ", status.error_message(),
                          " (use a token whose role is admin)");
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::StrCat(server_, " does not serve phoenix-cp's admin service (--server?)");
    default:
      return status.error_message();
  }
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

}  // namespace phoenix::cli
