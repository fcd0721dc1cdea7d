#include "source/server/workload_identity.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::server {
namespace {

constexpr std::chrono::hours kDefaultValidity{24};

std::string FormatUtc(time_t t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromTimeT(t), absl::UTCTimeZone());
}

}  // namespace

std::chrono::milliseconds RenewalSchedule::AfterIssue(time_t now, time_t not_after) {
  failures_ = 0;
  double left_ms = std::max<double>(0, static_cast<double>(not_after - now) * 1000.0);
  std::uniform_real_distribution<double> fraction(0.4, 0.6);
  // At least a second: a clock past not-after (skew) must not make a tight loop.
  return std::chrono::milliseconds(
      std::max<int64_t>(1000, static_cast<int64_t>(left_ms * fraction(random_))));
}

std::chrono::milliseconds RenewalSchedule::AfterFailure(time_t now, time_t not_after) {
  double base_ms = 1000.0 * static_cast<double>(1LL << std::min(failures_, 6));
  ++failures_;
  base_ms = std::min(base_ms, 60000.0);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  double wait_ms = base_ms * jitter(random_);
  if (not_after > now) {
    wait_ms = std::min(wait_ms, std::max(1000.0, static_cast<double>(not_after - now) * 500.0));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(wait_ms));
}

WorkloadIdentity::WorkloadIdentity(Dispatcher& dispatcher, StatsStore& stats,
                                   const config::v1::Node& node,
                                   const config::v1::WorkloadIdentity& config,
                                   std::unique_ptr<CertificateIssuer> issuer,
                                   std::function<absl::Status(const config::v1::Secret&)> install,
                                   std::function<void()> first)
    : dispatcher_(dispatcher),
      stats_(StatsScope(stats, "workload_identity.")),
      node_id_(node.id()),
      config_(config),
      secret_name_(config.secret_name().empty() ? "workload_certificate" : config.secret_name()),
      issuer_(std::move(issuer)),
      install_(std::move(install)),
      first_(std::move(first)) {
  renew_timer_ = dispatcher_.CreateTimer([this] { Request(); });
  expiry_timer_ = dispatcher_.CreateTimer([this] { OnExpired(); });
}

WorkloadIdentity::~WorkloadIdentity() = default;

void WorkloadIdentity::Start() {
  PHX_LOG(kInfo, "workload identity: asking the control plane for ",
          config_.spiffe_id().empty() ? std::string("this node's identity") : config_.spiffe_id());
  Request();
}

bool WorkloadIdentity::HoldsValidCertificate(time_t now) const {
  return !chain_pem_.empty() && now + 2 < not_after_;
}

void WorkloadIdentity::Request() {
  if (in_flight_) return;
  // A new key for every certificate: a renewal also rotates the key.
  auto fresh = tls::MakeKeyAndCsr(config_.spiffe_id());
  if (!fresh.ok()) {
    ScheduleRetry(std::string(fresh.status().message()));
    return;
  }
  service::identity::v1::CreateCertificateRequest request;
  request.set_csr(fresh->csr_pem);
  request.set_node_id(node_id_);
  auto validity = config_.has_validity()
                      ? std::chrono::seconds(config_.validity().seconds())
                      : std::chrono::duration_cast<std::chrono::seconds>(kDefaultValidity);
  request.mutable_validity()->set_seconds(validity.count());
  bool presenting = present_certificate_ && HoldsValidCertificate(time(nullptr));
  if (presenting) {
    // Renewal: the certificate in hand is the credential, with proof that its key is ours.
    auto proof = tls::SignWithKey(key_pem_, fresh->csr_pem);
    if (proof.ok()) {
      request.set_presented_certificate_chain(chain_pem_);
      request.set_proof(*proof);
    }
  }
  in_flight_ = true;
  issuer_->CreateCertificate(
      request,
      [this, alive = std::weak_ptr<int>(alive_), key = std::move(fresh->key_pem),
       presenting](absl::StatusOr<service::identity::v1::CreateCertificateResponse> response) {
        dispatcher_.Post([this, alive, key, presenting, response = std::move(response)]() mutable {
          if (alive.expired()) return;
          OnResponse(std::move(response), std::move(key), presenting);
        });
      });
}

void WorkloadIdentity::OnResponse(
    absl::StatusOr<service::identity::v1::CreateCertificateResponse> response, std::string key_pem,
    bool presented) {
  in_flight_ = false;
  if (!response.ok()) {
    // The certificate in hand was refused (a new root, say): the next try uses the node's own
    // credentials instead of waiting for it to expire.
    // Only a success or a new certificate makes it present one again.
    if (presented && (response.status().code() == absl::StatusCode::kUnauthenticated ||
                      response.status().code() == absl::StatusCode::kPermissionDenied)) {
      present_certificate_ = false;
    }
    ScheduleRetry(std::string(response.status().message()));
    return;
  }
  if (static_cast<time_t>(response->not_after_unix()) <= time(nullptr)) {
    // Expired on arrival: this clock is ahead of phoenix-cp's by more than the lifetime.
    ScheduleRetry(
        "the certificate issued has already expired by this host's clock: check "
        "its time against phoenix-cp's");
    return;
  }
  present_certificate_ = true;
  config::v1::Secret secret;
  secret.set_name(secret_name_);
  secret.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(
      response->certificate_chain());
  secret.mutable_tls_certificate()->mutable_private_key()->set_inline_string(key_pem);
  if (absl::Status installed = install_(secret); !installed.ok()) {
    ScheduleRetry(absl::StrCat("the issued certificate was not taken: ", installed.message()));
    return;
  }
  bool first = chain_pem_.empty();
  chain_pem_ = response->certificate_chain();
  key_pem_ = std::move(key_pem);
  spiffe_id_ = response->spiffe_id();
  serial_ = response->serial();
  not_after_ = static_cast<time_t>(response->not_after_unix());
  last_error_.clear();
  ++issued_;
  stats_.issued.Inc();
  RefreshGauges();
  time_t now = time(nullptr);
  auto renew_in = schedule_.AfterIssue(now, not_after_);
  next_attempt_ = now + renew_in.count() / 1000;
  renew_timer_->Enable(renew_in);
  expiry_timer_->Enable(std::chrono::seconds(std::max<int64_t>(0, not_after_ - now) + 1));
  PHX_LOG(kInfo, "workload identity: ", spiffe_id_, " serial ", serial_, " valid until ",
          FormatUtc(not_after_), "; renewing in ", renew_in.count() / 1000, " s");
  if (first && first_) first_();
}

void WorkloadIdentity::ScheduleRetry(const std::string& why) {
  last_error_ = why;
  stats_.request_failed.Inc();
  time_t now = time(nullptr);
  auto retry_in = schedule_.AfterFailure(now, not_after_);
  next_attempt_ = now + retry_in.count() / 1000;
  renew_timer_->Enable(retry_in);
  PHX_LOG(kWarn, "workload identity: certificate request failed: ", why, "; trying again in ",
          retry_in.count(), " ms",
          chain_pem_.empty()
              ? std::string(" (no certificate yet)")
              : absl::StrCat(" (the one in hand expires in ", not_after_ - now, " s)"));
}

void WorkloadIdentity::OnExpired() {
  time_t now = time(nullptr);
  RefreshGauges();
  if (now < not_after_) {  // Renewed since the timer was set.
    expiry_timer_->Enable(std::chrono::seconds(not_after_ - now + 1));
    return;
  }
  PHX_LOG(kError, "workload identity: certificate ", serial_, " of ", spiffe_id_,
          " has expired and could not be renewed: TLS handshakes that would present it fail "
          "until a new one is issued");
}

void WorkloadIdentity::RefreshGauges() {
  if (chain_pem_.empty()) return;
  int64_t left = static_cast<int64_t>(not_after_ - time(nullptr));
  stats_.expires_in_seconds.Set(left);
  stats_.valid.Set(left > 0 ? 1 : 0);
}

std::string WorkloadIdentity::Json() const {
  time_t now = time(nullptr);
  return absl::StrCat(
      "{\"secret\":\"", JsonEscape(secret_name_), "\",\"spiffe_id\":\"", JsonEscape(spiffe_id_),
      "\",\"serial\":\"", serial_, "\",\"not_after\":\"",
      not_after_ == 0 ? "" : FormatUtc(not_after_),
      "\",\"seconds_left\":", chain_pem_.empty() ? 0 : static_cast<int64_t>(not_after_ - now),
      ",\"next_attempt_in_seconds\":", std::max<int64_t>(0, next_attempt_ - now),
      ",\"issued\":", issued_, ",\"last_error\":\"", JsonEscape(last_error_), "\"}");
}

}  // namespace phoenix::server
