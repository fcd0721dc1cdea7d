#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/server/workload_identity.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace phoenix::server {

// Sends CSRs to phoenix-cp's IdentityService at the ADS config's gRPC services: the same
// targets, channel credentials and initial metadata (a node's bearer token) as the ADS
// stream. Tries the targets in turn from the last one that answered, and reports the last
// error when none does. Calls are made one at a time on a thread of its own with gRPC's
// blocking API (as the ADS client does), so no gRPC object is created or destroyed on gRPC's
// own threads.
class GrpcCertificateIssuer : public CertificateIssuer {
 public:
  explicit GrpcCertificateIssuer(const config::v1::ApiConfigSource& config);
  // Cancels the call in flight and joins the thread; calls not yet made get CANCELLED.
  ~GrpcCertificateIssuer() override;

  void CreateCertificate(const service::identity::v1::CreateCertificateRequest& request,
                         Done done) override;

 private:
  struct Pending {
    service::identity::v1::CreateCertificateRequest request;
    Done done;
  };

  void Run();
  // One request across the targets, from the preferred one.
  absl::StatusOr<service::identity::v1::CreateCertificateResponse> Send(
      const service::identity::v1::CreateCertificateRequest& request);

  const config::v1::ApiConfigSource config_;
  size_t preferred_ = 0;  // Thread only.
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;                 // Guarded by mu_.
  bool stopping_ = false;                     // Guarded by mu_.
  grpc::ClientContext* in_flight_ = nullptr;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace phoenix::server
