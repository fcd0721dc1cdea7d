#pragma once

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "phoenix/service/identity/v1/identity.pb.h"
#include "source/common/dispatcher.h"
#include "source/common/stats.h"

namespace phoenix::server {

// Where CSRs go to be signed: phoenix-cp's IdentityService (GrpcCertificateIssuer), or a fake
// in tests.
class CertificateIssuer {
 public:
  using Done =
      std::function<void(absl::StatusOr<service::identity::v1::CreateCertificateResponse>)>;
  virtual ~CertificateIssuer() = default;
  // Sends `request`; `done` runs once, on any thread.
  virtual void CreateCertificate(const service::identity::v1::CreateCertificateRequest& request,
                                 Done done) = 0;
};

// When to ask again: renewal at about half of what is left of a certificate's lifetime (with
// jitter, so a fleet started together does not renew together), and exponential back-off with
// jitter after a failure, never waiting past the certificate's expiry.
class RenewalSchedule {
 public:
  explicit RenewalSchedule(uint64_t seed = std::random_device{}()) : random_(seed) {}
  // After a certificate valid until `not_after` arrived at `now`: 40-60% of the time left.
  std::chrono::milliseconds AfterIssue(time_t now, time_t not_after);
  // After a failure: 1 s, doubling per failure in a row, up to 60 s, +-20%; while a
  // certificate is in hand, at most half the time it has left (at least 1 s).
  std::chrono::milliseconds AfterFailure(time_t now, time_t not_after);
  void Reset() { failures_ = 0; }

 private:
  std::mt19937_64 random_;
  int failures_ = 0;
};

#define PHX_WORKLOAD_IDENTITY_STATS(COUNTER, GAUGE, HISTOGRAM)                              \
  COUNTER(issued, "Workload certificates received from the control plane")                  \
  COUNTER(request_failed, "Certificate requests that failed (refused or unreachable)")      \
  GAUGE(expires_in_seconds, "Seconds until the workload certificate expires (<0: expired)") \
  GAUGE(valid, "1 while the workload certificate is valid")
struct WorkloadIdentityStats {
  PHX_STATS(WorkloadIdentityStats, PHX_WORKLOAD_IDENTITY_STATS);
};

// Keeps this proxy's workload certificate (bootstrap workload_identity): makes a key in
// memory, asks the issuer to sign its CSR, hands the certificate and key on as a Secret (to
// the SnapshotBuilder, so TLS contexts naming it use it for new handshakes while open
// connections go on), renews it on the RenewalSchedule, presenting the certificate in hand
// (with a proof of its key) once it has one. Main thread only.
class WorkloadIdentity {
 public:
  // `install` makes a Secret the one in force (an error: the certificate is not used, and it
  // is asked for again). `first` runs after the first certificate is installed.
  WorkloadIdentity(Dispatcher& dispatcher, StatsStore& stats, const config::v1::Node& node,
                   const config::v1::WorkloadIdentity& config,
                   std::unique_ptr<CertificateIssuer> issuer,
                   std::function<absl::Status(const config::v1::Secret&)> install,
                   std::function<void()> first);
  ~WorkloadIdentity();

  void Start();
  // Sets the expiry gauge from the clock (before /stats renders).
  void RefreshGauges();
  // {"spiffe_id", "serial", "not_after", "seconds_left", "next_attempt_in_seconds",
  // "last_error", "issued"}, for the admin /certs.
  std::string Json() const;
  const std::string& secret_name() const { return secret_name_; }

 private:
  void Request();
  void OnResponse(absl::StatusOr<service::identity::v1::CreateCertificateResponse> response,
                  std::string key_pem, bool presented);
  void ScheduleRetry(const std::string& why);
  void OnExpired();
  bool HoldsValidCertificate(time_t now) const;

  Dispatcher& dispatcher_;
  WorkloadIdentityStats stats_;
  const std::string node_id_;
  const config::v1::WorkloadIdentity config_;
  const std::string secret_name_;
  std::unique_ptr<CertificateIssuer> issuer_;
  std::function<absl::Status(const config::v1::Secret&)> install_;
  std::function<void()> first_;
  RenewalSchedule schedule_;
  std::unique_ptr<Timer> renew_timer_;
  std::unique_ptr<Timer> expiry_timer_;
  bool in_flight_ = false;
  // Whether a renewal presents the certificate in hand (not after it was refused).
  bool present_certificate_ = true;
  // The certificate in force ("" before the first) and its key (memory only).
  std::string chain_pem_;
  std::string key_pem_;
  std::string spiffe_id_;
  std::string serial_;
  time_t not_after_ = 0;
  time_t next_attempt_ = 0;
  std::string last_error_;
  uint64_t issued_ = 0;
  // Posted responses run only while this lives.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace phoenix::server
