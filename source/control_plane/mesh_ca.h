#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::control_plane {

struct MeshCaOptions {
  // Where the CA's files live (created 0700): root.crt, root.key (0600; optional when an
  // operator gives an intermediate of their own: intermediate.crt/.key), this replica's
  // intermediate-<replica>.crt/.key (0600), and rotation state.
  std::string dir;
  std::string trust_domain = "phoenix.local";
  // Make a root (10 years) in `dir` when it has none: the demo's "generated on first start".
  // Without it, a missing root is an error that says how to make one.
  bool generate = false;
  // Names this replica's intermediate (HA: each replica has its own under the same root).
  std::string replica = "default";
  std::chrono::seconds intermediate_validity{365 * 24 * 3600};
  // The longest validity Issue grants (a longer request is cut to it). A rotation relies on
  // it: when phoenix-cp may have issued under the old root before it (re)started, the last
  // of those certificates is assumed to expire `max_validity` after the rotation moves to
  // issuing from the new root.
  std::chrono::seconds max_validity{24 * 3600};
};

// phoenix-cp's certificate authority for workload identities: a root (from files, or made on
// first start) and this replica's own intermediate under it, which signs sidecars' CSRs. Also
// drives a root rotation: a new root joins the trust bundle; once sidecars have it, issuance
// moves to an intermediate under the new root; once every certificate under the old root has
// expired, the old root leaves the bundle. Thread-safe: sidecars' calls arrive on gRPC's
// threads.
class MeshCa {
 public:
  enum class RotationPhase {
    kNone,            // One root.
    kAddingRoot,      // Bundle = old + new roots; still issuing under the old one.
    kIssuingFromNew,  // Bundle = old + new; issuing under the new root; old certs expiring.
  };
  struct RotationStatus {
    RotationPhase phase = RotationPhase::kNone;
    std::string old_root_serial;
    std::string new_root_serial;
    // kIssuingFromNew: when the last certificate issued under the old root expires.
    time_t old_certificates_expire = 0;
  };

  // "none", "adding_root", "issuing_from_new": in the rotation file and the admin service.
  static const char* PhaseName(RotationPhase phase);

  static absl::StatusOr<std::unique_ptr<MeshCa>> Open(const MeshCaOptions& options);
  ~MeshCa();

  const std::string& trust_domain() const { return options_.trust_domain; }
  // PEM of every root sidecars must trust now.
  std::string TrustBundle() const;
  // Signs `csr_pem` for `spiffe_id` (already checked: the caller is entitled to it).
  absl::StatusOr<tls::IssuedCertificate> Issue(const std::string& csr_pem,
                                               const std::string& spiffe_id,
                                               const std::string& node_id,
                                               std::chrono::seconds validity);
  // Makes this replica's intermediate again when it ends within 30 days (or half its
  // validity): a long-running phoenix-cp keeps issuing. Called periodically.
  absl::Status RenewIntermediatesIfDue();
  // Checks a certificate a caller presents with a proof of its key, against the bundle.
  absl::StatusOr<tls::PresentedIdentity> Verify(const std::string& chain_pem, std::string_view data,
                                                std::string_view proof) const;

  // Rotation. Start: makes a new root (and this replica's intermediate under it) and adds it
  // to the bundle (FAILED_PRECONDITION when one is in progress).
  absl::Status StartRotation();
  // Moves on when it may: kAddingRoot -> kIssuingFromNew once `bundle_acked` (every sidecar
  // runs the new bundle); kIssuingFromNew -> kNone once `now` is past the last old
  // certificate's not-after (the old root leaves the bundle and its files are kept in
  // dir/retired/). Returns whether the phase changed (the bundle may have).
  bool AdvanceRotation(bool bundle_acked, time_t now);
  RotationStatus rotation() const;

 private:
  // A root, and this replica's signer under it (absent for the old root once issuance has
  // moved to the new one).
  struct Authority;

  explicit MeshCa(MeshCaOptions options);
  std::string Path(const std::string& name) const;
  absl::Status WriteRotationState() const;
  absl::Status CompleteRotation();

  const MeshCaOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<Authority> current_;  // root.crt: the only root, or the old one.
  std::unique_ptr<Authority> next_;     // next/root.crt during a rotation.
  RotationStatus rotation_;
  bool operator_intermediate_ = false;  // intermediate.crt/.key given: no rotation here.
};

}  // namespace phoenix::control_plane
