#include "source/server/grpc_certificate_issuer.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "phoenix/service/identity/v1/identity.grpc.pb.h"
#include "source/config/grpc_channel_credentials.h"

namespace phoenix::server {

using service::identity::v1::CreateCertificateRequest;
using service::identity::v1::CreateCertificateResponse;

GrpcCertificateIssuer::GrpcCertificateIssuer(const config::v1::ApiConfigSource& config)
    : config_(config), thread_([this] { Run(); }) {}

GrpcCertificateIssuer::~GrpcCertificateIssuer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  }
  wake_.notify_all();
  thread_.join();
  for (Pending& pending : queue_) pending.done(absl::CancelledError("shutting down"));
}

void GrpcCertificateIssuer::CreateCertificate(const CreateCertificateRequest& request, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({request, std::move(done)});
  }
  wake_.notify_all();
}

void GrpcCertificateIssuer::Run() {
  for (;;) {
    Pending pending;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    auto result = Send(pending.request);
    pending.done(std::move(result));
  }
}

absl::StatusOr<CreateCertificateResponse> GrpcCertificateIssuer::Send(
    const CreateCertificateRequest& request) {
  size_t count = static_cast<size_t>(config_.grpc_services_size());
  if (count == 0) return absl::FailedPreconditionError("no control plane address");
  absl::Status last;
  for (size_t attempt = 0; attempt < count; ++attempt) {
    size_t index = (preferred_ + attempt) % count;
    const auto& service = config_.grpc_services(static_cast<int>(index));
    auto credentials = config::MakeChannelCredentials(service.google_grpc());
    if (!credentials.ok()) return credentials.status();
    auto stub = service::identity::v1::IdentityService::NewStub(
        grpc::CreateChannel(service.google_grpc().target_uri(), *credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    for (const auto& header : service.initial_metadata()) {
      context.AddMetadata(header.key(), header.value());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return absl::CancelledError("shutting down");
      in_flight_ = &context;
    }
    CreateCertificateResponse response;
    grpc::Status status = stub->CreateCertificate(&context, request, &response);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = nullptr;
    }
    if (status.ok()) {
      preferred_ = index;
      return response;
    }
    last = absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat(service.google_grpc().target_uri(), ": ", status.error_message()));
    bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!unreachable) break;  // An answer (a refusal) is final.
  }
  return last;
}

}  // namespace phoenix::server
