#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
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
  // HA: Issue refuses unless the replicas' shared state was read recently (AllowIssuingUntil),
  // so a replica cut off from the others never issues under a root they have moved on from.
  bool fenced = false;
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
  // HA without the root's key here: asks for one instead (PendingIntermediate).
  absl::Status RenewIntermediatesIfDue(time_t now);
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

  // HA: the replicas share one rotation (CaRotationCoordinator drives these).
  // Joins a rotation another replica started: `new_root_pem` joins the bundle (its key stays
  // with that replica) and this replica makes its key for an intermediate under it; the CSR
  // is PendingIntermediate until AcceptIntermediate.
  absl::Status JoinRotation(const std::string& new_root_pem);
  // An intermediate this replica asks another to sign (the replica holding the root's key):
  // under the new root after JoinRotation, or the renewal of one whose root's key is not here
  // (RenewIntermediatesIfDue, fenced only).
  struct IntermediateRequest {
    std::string root_serial;
    std::string csr_pem;
  };
  std::optional<IntermediateRequest> PendingIntermediate() const;
  // The certificate signed for PendingIntermediate under `root_serial`: checked against the
  // key kept for it and the root, then used.
  absl::Status AcceptIntermediate(const std::string& root_serial, const std::string& cert_pem);
  bool HasIntermediateUnder(const std::string& root_serial) const;
  // The latest not-after this process issued under `root_serial` (0: none).
  time_t LatestIssuedUnder(const std::string& root_serial) const;
  bool operator_intermediate() const;
  // How long past its not-after a certificate may still pass a peer whose clock runs behind
  // (60 s, or a quarter of max_validity when that is shorter): an old root leaves that late.
  std::chrono::seconds clock_skew_margin() const;
  // An intermediate under root `root_serial` for another replica's CSR, when this replica
  // holds that root's key (the one that made a new root does); FAILED_PRECONDITION otherwise.
  absl::StatusOr<std::string> SignIntermediate(const std::string& replica,
                                               const std::string& root_serial,
                                               const std::string& csr_pem) const;
  bool HoldsRootKey(const std::string& root_serial) const;
  // Issues under the new root from now on (once its intermediate is in: until then Issue is
  // UNAVAILABLE); `old_certificates_expire` is for the status only.
  absl::Status FollowToIssuingFromNew(time_t old_certificates_expire);
  // The new root alone: the old one leaves the bundle.
  absl::Status FinishRotation();
  // Drops a rotation still adding its root that the other replicas never saw.
  absl::Status AbandonRotation();
  std::string NewRootPem() const;
  // root.crt's: the only root, or the old one during a rotation.
  std::string CurrentRootPem() const;
  std::string CurrentRootSerial() const;
  // The serial of the root Issue signs under now.
  std::string IssuingRootSerial() const;
  // Fenced: Issue is allowed until `until` (the shared state was read just now).
  void AllowIssuingUntil(time_t until);

 private:
  // A root, and this replica's signer under it (absent for the old root once issuance has
  // moved to the new one).
  struct Authority;

  explicit MeshCa(MeshCaOptions options);
  std::string Path(const std::string& name) const;
  // <authority dir>/intermediate-<replica>, and the CSR of the one asked for there.
  std::string IntermediatePrefix(const Authority& authority) const;
  std::string PendingCsrPath(const Authority& authority) const;
  // A key and CSR for this replica's intermediate under `authority`'s root (PendingIntermediate).
  absl::Status MakePendingLocked(const Authority& authority);
  absl::Status WriteRotationState() const;
  absl::Status CompleteRotation();

  const MeshCaOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<Authority> current_;  // root.crt: the only root, or the old one.
  std::unique_ptr<Authority> next_;     // next/root.crt during a rotation.
  RotationStatus rotation_;
  bool operator_intermediate_ = false;  // intermediate.crt/.key given: no rotation here.
  time_t issuing_allowed_until_ = 0;    // options_.fenced: see AllowIssuingUntil.
};

}  // namespace phoenix::control_plane
