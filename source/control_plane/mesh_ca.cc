#include "source/control_plane/mesh_ca.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "source/common/logging.h"
#include "source/control_plane/atomic_file.h"

namespace phoenix::control_plane {
namespace {

constexpr std::chrono::seconds kRootValidity{10LL * 365 * 24 * 3600};
// An intermediate this close to its end is replaced at Open.
constexpr std::chrono::seconds kRenewBefore{30LL * 24 * 3600};
constexpr char kRootName[] = "phoenix mesh root";
constexpr char kNextDir[] = "next";
constexpr char kRetiredDir[] = "retired";
constexpr char kRotationFile[] = "rotation";

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Creates `path` (mode 0700) unless it exists.
absl::Status MakeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
}

absl::Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  return WriteFileAtomically(path, path + ".tmp", content, mode);
}

// A certificate (0644) and its key (0600); the key first, so that a certificate on disk always
// has its key.
absl::Status WriteCa(const std::string& prefix, const tls::CaMaterial& ca) {
  if (absl::Status status = WriteFile(prefix + ".key", ca.key_pem, 0600); !status.ok()) {
    return status;
  }
  return WriteFile(prefix + ".crt", ca.cert_pem, 0644);
}

std::optional<tls::CaMaterial> ReadCa(const std::string& prefix) {
  auto cert = ReadFile(prefix + ".crt");
  auto key = ReadFile(prefix + ".key");
  if (!cert || !key) return std::nullopt;
  return tls::CaMaterial{*cert, *key};
}

// HA: an intermediate under a root whose key another replica holds is asked for with a CSR;
// its key and CSR wait in <prefix>.pending.key/.csr until the signed certificate comes.
std::string PendingPrefix(const std::string& prefix) { return prefix + ".pending"; }

void RemovePending(const std::string& prefix) {
  // The CSR first: a CSR on disk always has its key.
  ::unlink((PendingPrefix(prefix) + ".csr").c_str());
  ::unlink((PendingPrefix(prefix) + ".key").c_str());
}

// An accepted intermediate is put in place as <prefix>.crt first, then its key moves from
// .pending.key to .key: finishes that when a crash came in between.
void FinishAcceptedIntermediate(const std::string& prefix, const std::string& root_pem) {
  auto cert = ReadFile(prefix + ".crt");
  auto pending_key = ReadFile(PendingPrefix(prefix) + ".key");
  if (!cert || !pending_key) return;
  if (!tls::CertificateSigner::Create(tls::CaMaterial{*cert, *pending_key}, root_pem).ok()) {
    return;
  }
  if (WriteFile(prefix + ".key", *pending_key, 0600).ok()) RemovePending(prefix);
}

// next/ and what a rotation puts in it (this replica's intermediate is `intermediate`.*).
void RemoveNextDirectory(const std::string& dir, const std::string& intermediate) {
  RemovePending(absl::StrCat(dir, "/", intermediate));
  for (const std::string& name : {std::string("root.crt"), std::string("root.key"),
                                  intermediate + ".crt", intermediate + ".key"}) {
    ::unlink(absl::StrCat(dir, "/", name).c_str());
  }
  ::rmdir(dir.c_str());
}

std::string FirstSerial(const std::string& pem) {
  std::vector<std::string> serials = tls::CertificateSerials(pem);
  return serials.empty() ? "" : serials[0];
}

}  // namespace

const char* MeshCa::PhaseName(RotationPhase phase) {
  switch (phase) {
    case RotationPhase::kNone:
      return "none";
    case RotationPhase::kAddingRoot:
      return "adding_root";
    case RotationPhase::kIssuingFromNew:
      return "issuing_from_new";
  }
  return "none";
}

struct MeshCa::Authority {
  std::string dir;  // Where its files are: options.dir, or options.dir/next.
  std::string root_pem;
  std::string root_serial;
  std::optional<tls::CertificateSigner> signer;
  // The latest not-after this process issued under this root (0: none yet), and whether every
  // certificate under it was issued by this process (it made the root).
  time_t latest_issued = 0;
  bool made_here = false;
};

MeshCa::MeshCa(MeshCaOptions options) : options_(std::move(options)) {}
MeshCa::~MeshCa() = default;

std::string MeshCa::Path(const std::string& name) const {
  return absl::StrCat(options_.dir, "/", name);
}

namespace {

// This replica's intermediate under `root`, from `dir`/intermediate-<replica>.crt/.key; made
// (with the root's key in `dir`/root.key) when absent, when it does not chain to the root or
// when it ends within 30 days (or half its validity, when that is shorter).
absl::StatusOr<tls::CertificateSigner> LoadOrMakeIntermediate(const MeshCaOptions& options,
                                                              const std::string& dir,
                                                              const std::string& root_pem,
                                                              time_t now) {
  std::string prefix = absl::StrCat(dir, "/intermediate-", options.replica);
  FinishAcceptedIntermediate(prefix, root_pem);
  std::chrono::seconds renew_before = std::min(kRenewBefore, options.intermediate_validity / 2);
  bool root_key_here = Exists(dir + "/root.key");
  if (auto existing = ReadCa(prefix)) {
    auto signer = tls::CertificateSigner::Create(*existing, root_pem);
    if (signer.ok() && (signer->not_after() > now + renew_before.count() ||
                        (!root_key_here && signer->not_after() > now))) {
      // (Without the root's key here, a due one is renewed by asking: RenewIntermediatesIfDue.)
      return signer;
    }
    PHX_LOG(kInfo, "mesh CA: replacing ", prefix, ".crt: ",
            signer.ok() ? "it ends within " + std::to_string(renew_before.count() / 86400) + " days"
                        : std::string(signer.status().message()));
  }
  auto root_key = ReadFile(dir + "/root.key");
  if (!root_key) {
    return absl::FailedPreconditionError(
        absl::StrCat("phoenix-cp: ", prefix, ".crt must be made or renewed but there is no ", dir,
                     "/root.key to sign it with"));
  }
  auto made = tls::GenerateIntermediateCa(
      tls::CaMaterial{root_pem, *root_key}, options.trust_domain,
      absl::StrCat("phoenix mesh intermediate ", options.replica), options.intermediate_validity);
  if (!made.ok()) return made.status();
  if (absl::Status status = WriteCa(prefix, *made); !status.ok()) return status;
  PHX_LOG(kInfo, "mesh CA: made ", prefix, ".crt (serial ", FirstSerial(made->cert_pem), ")");
  return tls::CertificateSigner::Create(*made, root_pem);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MeshCa>> MeshCa::Open(const MeshCaOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("phoenix-cp: no mesh CA directory");
  if (options.max_validity.count() <= 0 || options.intermediate_validity.count() <= 0) {
    return absl::InvalidArgumentError("phoenix-cp: mesh CA validities must be positive");
  }
  std::unique_ptr<MeshCa> ca(new MeshCa(options));
  if (absl::Status status = MakeDirectory(options.dir); !status.ok()) return status;

  // The root: root.crt (its key may be kept offline once the intermediates exist).
  auto current = std::make_unique<Authority>();
  current->dir = options.dir;
  std::optional<std::string> root_pem = ReadFile(ca->Path("root.crt"));
  if (!root_pem) {
    if (!options.generate || Exists(ca->Path("intermediate.crt"))) {
      return absl::FailedPreconditionError(
          absl::StrCat("phoenix-cp: no mesh CA root in ", options.dir,
                       ": give root.crt and root.key, or start with --ca-generate"));
    }
    auto root = tls::GenerateRootCa(options.trust_domain, kRootName, kRootValidity);
    if (!root.ok()) return root.status();
    if (absl::Status status = WriteCa(ca->Path("root"), *root); !status.ok()) return status;
    root_pem = root->cert_pem;
    current->made_here = true;
    PHX_LOG(kInfo, "mesh CA: made a root in ", options.dir, " (serial ",
            FirstSerial(root->cert_pem), ")");
  }
  current->root_pem = *root_pem;
  current->root_serial = FirstSerial(*root_pem);
  if (current->root_serial.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("phoenix-cp: ", ca->Path("root.crt"), ": no PEM certificate in it"));
  }

  // The rotation in progress, if any.
  RotationStatus& rotation = ca->rotation_;
  if (auto text = ReadFile(ca->Path(kRotationFile))) {
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
      size_t colon = line.find(": ");
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon), value = line.substr(colon + 2);
      if (key == "phase") {
        rotation.phase = value == "adding_root"        ? RotationPhase::kAddingRoot
                         : value == "issuing_from_new" ? RotationPhase::kIssuingFromNew
                                                       : RotationPhase::kNone;
      } else if (key == "old_root_serial") {
        rotation.old_root_serial = value;
      } else if (key == "new_root_serial") {
        rotation.new_root_serial = value;
      } else if (key == "old_certificates_expire") {
        int64_t t = 0;
        if (absl::SimpleAtoi(value, &t)) rotation.old_certificates_expire = static_cast<time_t>(t);
      }
    }
    if (rotation.phase == RotationPhase::kNone) {
      return absl::InvalidArgumentError(
          absl::StrCat("phoenix-cp: ", ca->Path(kRotationFile), ": no phase in it"));
    }
  } else if (Exists(ca->Path(kNextDir))) {
    // A rotation that crashed before it started (or after it completed): nothing uses it.
    RemoveNextDirectory(ca->Path(kNextDir), absl::StrCat("intermediate-", options.replica));
  }

  if (rotation.phase != RotationPhase::kNone) {
    if (current->root_serial == rotation.new_root_serial) {
      // Completion got as far as making the new root root.crt before it stopped: finish it.
      ca->current_ = std::move(current);
      if (absl::Status status = ca->CompleteRotation(); !status.ok()) return status;
      return Open(options);
    }
    auto next = std::make_unique<Authority>();
    next->dir = ca->Path(kNextDir);
    auto next_pem = ReadFile(next->dir + "/root.crt");
    if (!next_pem || FirstSerial(*next_pem) != rotation.new_root_serial) {
      return absl::FailedPreconditionError(absl::StrCat("phoenix-cp: ", ca->Path(kRotationFile),
                                                        " names root ", rotation.new_root_serial,
                                                        " but ", next->dir, "/root.crt is not it"));
    }
    next->root_pem = *next_pem;
    next->root_serial = rotation.new_root_serial;
    if (Exists(next->dir + "/root.key") || !Exists(ca->PendingCsrPath(*next))) {
      auto signer = LoadOrMakeIntermediate(options, next->dir, next->root_pem, time(nullptr));
      if (!signer.ok()) return signer.status();
      next->signer = *std::move(signer);
    } else {
      // HA, joined another replica's rotation: its intermediate, or still waiting for it.
      std::string prefix = ca->IntermediatePrefix(*next);
      FinishAcceptedIntermediate(prefix, next->root_pem);
      if (auto given = ReadCa(prefix)) {
        if (auto signer = tls::CertificateSigner::Create(*given, next->root_pem); signer.ok()) {
          next->signer = *std::move(signer);
        }
      }
    }
    ca->next_ = std::move(next);
  }

  // This replica's signer under root.crt, unless issuance has moved to the new root.
  if (rotation.phase != RotationPhase::kIssuingFromNew) {
    if (auto given = ReadCa(ca->Path("intermediate"))) {
      auto signer = tls::CertificateSigner::Create(*given, current->root_pem);
      if (!signer.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("phoenix-cp: ", ca->Path("intermediate.crt"),
                                                       ": ", signer.status().message()));
      }
      current->signer = *std::move(signer);
      ca->operator_intermediate_ = true;
    } else {
      auto signer = LoadOrMakeIntermediate(options, options.dir, current->root_pem, time(nullptr));
      if (!signer.ok()) return signer.status();
      current->signer = *std::move(signer);
    }
  }
  ca->current_ = std::move(current);
  return ca;
}

std::string MeshCa::TrustBundle() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string bundle = current_->root_pem;
  if (next_ != nullptr) bundle += next_->root_pem;
  return bundle;
}

absl::StatusOr<tls::IssuedCertificate> MeshCa::Issue(const std::string& csr_pem,
                                                     const std::string& spiffe_id,
                                                     const std::string& node_id,
                                                     std::chrono::seconds validity) {
  // Whoever checked the caller's entitlement, this CA names nothing outside its trust domain.
  if (spiffe_id.rfind(absl::StrCat("spiffe://", options_.trust_domain, "/"), 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", spiffe_id, "' is not in trust domain ", options_.trust_domain));
  }
  validity = std::min(validity, options_.max_validity);
  // Held while signing, so a rotation never misses a certificate issued under the old root.
  std::lock_guard<std::mutex> lock(mu_);
  time_t now = time(nullptr);
  if (options_.fenced && now > issuing_allowed_until_) {
    return absl::UnavailableError(
        "this phoenix-cp replica cannot read the state the replicas share (etcd): not issuing");
  }
  Authority& authority = rotation_.phase == RotationPhase::kIssuingFromNew ? *next_ : *current_;
  if (!authority.signer) {
    return absl::UnavailableError(
        "this phoenix-cp replica has no intermediate under the new root yet: ask another");
  }
  auto issued = authority.signer->Issue(csr_pem, spiffe_id, node_id, validity, now);
  if (issued.ok()) {
    authority.latest_issued = std::max(authority.latest_issued, issued->not_after);
    issued->root_serial = authority.root_serial;
  }
  return issued;
}

absl::Status MeshCa::RenewIntermediatesIfDue(time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (operator_intermediate_) return absl::OkStatus();  // The operator's to renew.
  std::chrono::seconds renew_before = std::min(kRenewBefore, options_.intermediate_validity / 2);
  time_t due = now + renew_before.count();
  for (Authority* authority : {current_.get(), next_.get()}) {
    if (authority == nullptr || !authority->signer || authority->signer->not_after() > due) {
      continue;
    }
    if (!Exists(authority->dir + "/root.key")) {
      if (options_.fenced) {
        // HA: another replica holds the root's key; the replicas' shared state carries the CSR.
        if (Exists(PendingCsrPath(*authority))) continue;
        if (absl::Status asked = MakePendingLocked(*authority); !asked.ok()) return asked;
        PHX_LOG(kInfo, "mesh CA: this replica's intermediate under root ", authority->root_serial,
                " is due for renewal: asking the replica that holds the root's key");
        continue;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "this replica's intermediate under root ", authority->root_serial, " ends on ",
          absl::FormatTime("%Y-%m-%d", absl::FromTimeT(authority->signer->not_after()),
                           absl::UTCTimeZone()),
          " and ", authority->dir, "/root.key, to make the next one, is not here"));
    }
    auto signer = LoadOrMakeIntermediate(options_, authority->dir, authority->root_pem, now);
    if (!signer.ok()) return signer.status();
    authority->signer = *std::move(signer);
  }
  return absl::OkStatus();
}

absl::StatusOr<tls::PresentedIdentity> MeshCa::Verify(const std::string& chain_pem,
                                                      std::string_view data,
                                                      std::string_view proof) const {
  return tls::VerifyPresentedCertificate(chain_pem, TrustBundle(), data, proof, time(nullptr));
}

absl::Status MeshCa::WriteRotationState() const {
  return WriteFile(
      Path(kRotationFile),
      absl::StrCat("phase: ", MeshCa::PhaseName(rotation_.phase), "\n", "old_root_serial: ",
                   rotation_.old_root_serial, "\n", "new_root_serial: ", rotation_.new_root_serial,
                   "\n", "old_certificates_expire: ", rotation_.old_certificates_expire, "\n"),
      0600);
}

absl::Status MeshCa::StartRotation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (rotation_.phase != RotationPhase::kNone) {
    return absl::FailedPreconditionError("a root rotation is in progress");
  }
  if (operator_intermediate_) {
    return absl::FailedPreconditionError(
        "the operator gave this CA's intermediate.crt: rotate by replacing root.crt and "
        "intermediate.crt/.key");
  }
  auto root = tls::GenerateRootCa(options_.trust_domain, kRootName, kRootValidity);
  if (!root.ok()) return root.status();
  auto next = std::make_unique<Authority>();
  next->dir = Path(kNextDir);
  next->root_pem = root->cert_pem;
  next->root_serial = FirstSerial(root->cert_pem);
  next->made_here = true;
  // The files first, the rotation state last: a crash in between leaves an unused next/.
  if (absl::Status status = MakeDirectory(next->dir); !status.ok()) return status;
  if (absl::Status status = WriteCa(next->dir + "/root", *root); !status.ok()) return status;
  auto signer = LoadOrMakeIntermediate(options_, next->dir, next->root_pem, time(nullptr));
  if (!signer.ok()) return signer.status();
  next->signer = *std::move(signer);
  RotationStatus rotation;
  rotation.phase = RotationPhase::kAddingRoot;
  rotation.old_root_serial = current_->root_serial;
  rotation.new_root_serial = next->root_serial;
  std::swap(rotation_, rotation);
  if (absl::Status status = WriteRotationState(); !status.ok()) {
    std::swap(rotation_, rotation);
    return status;
  }
  next_ = std::move(next);
  PHX_LOG(kInfo, "mesh CA: root rotation started: new root ", rotation_.new_root_serial,
          " joins the trust bundle");
  return absl::OkStatus();
}

bool MeshCa::AdvanceRotation(bool bundle_acked, time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  switch (rotation_.phase) {
    case RotationPhase::kNone:
      return false;
    case RotationPhase::kAddingRoot: {
      if (!bundle_acked) return false;
      RotationStatus rotation = rotation_;
      rotation.phase = RotationPhase::kIssuingFromNew;
      // What this process issued under the old root; and when it may have issued under it
      // before it started, what that could have been at the most.
      rotation.old_certificates_expire = current_->latest_issued;
      if (!current_->made_here) {
        rotation.old_certificates_expire =
            std::max(rotation.old_certificates_expire,
                     now + static_cast<time_t>(options_.max_validity.count()));
      }
      std::swap(rotation_, rotation);
      if (absl::Status status = WriteRotationState(); !status.ok()) {
        std::swap(rotation_, rotation);
        PHX_LOG(kError, "mesh CA: cannot move the rotation on: ", status.message());
        return false;
      }
      PHX_LOG(kInfo, "mesh CA: issuing under the new root ", rotation_.new_root_serial,
              "; the old root leaves the bundle after ",
              absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                               absl::FromTimeT(rotation_.old_certificates_expire),
                               absl::UTCTimeZone()));
      return true;
    }
    case RotationPhase::kIssuingFromNew: {
      if (now <= rotation_.old_certificates_expire + clock_skew_margin().count()) return false;
      if (absl::Status status = CompleteRotation(); !status.ok()) {
        PHX_LOG(kError, "mesh CA: cannot complete the rotation: ", status.message());
        return false;
      }
      return true;
    }
  }
  return false;
}

// The new root becomes root.crt/.key, the old one goes to retired/<serial>.crt/.key, next/ is
// removed and the rotation state last (so a crash anywhere resumes here at Open). Every step
// may run again.
absl::Status MeshCa::CompleteRotation() {
  std::string next_dir = Path(kNextDir);
  std::string retired = Path(kRetiredDir);
  if (absl::Status status = MakeDirectory(retired); !status.ok()) return status;
  std::string old_serial = rotation_.old_root_serial;
  std::string retired_prefix = absl::StrCat(retired, "/", old_serial);
  if (current_->root_serial == old_serial && !Exists(retired_prefix + ".crt")) {
    if (auto old_key = ReadFile(Path("root.key"))) {
      if (absl::Status status = WriteFile(retired_prefix + ".key", *old_key, 0600); !status.ok()) {
        return status;
      }
    }
    if (absl::Status status = WriteFile(retired_prefix + ".crt", current_->root_pem, 0644);
        !status.ok()) {
      return status;
    }
  }
  std::string intermediate = absl::StrCat("intermediate-", options_.replica);
  if (auto next_root = ReadCa(next_dir + "/root")) {
    if (absl::Status status = WriteCa(Path("root"), *next_root); !status.ok()) return status;
  } else if (auto next_pem = ReadFile(next_dir + "/root.crt")) {
    // HA, a rotation another replica made: the new root's key stays with that replica, and the
    // old one's (kept in retired/) must not stand beside the new root.crt.
    if (absl::Status status = WriteFile(Path("root.crt"), *next_pem, 0644); !status.ok()) {
      return status;
    }
    if (::unlink(Path("root.key").c_str()) != 0 && errno != ENOENT) {
      return absl::UnavailableError(absl::StrCat(Path("root.key"), ": ", std::strerror(errno)));
    }
  }
  if (auto next_intermediate = ReadCa(absl::StrCat(next_dir, "/", intermediate))) {
    if (absl::Status status = WriteCa(Path(intermediate), *next_intermediate); !status.ok()) {
      return status;
    }
  }
  if (::unlink(Path(kRotationFile).c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(absl::StrCat(Path(kRotationFile), ": ", std::strerror(errno)));
  }
  // next/ is left behind only on a failure here; Open clears it.
  RemoveNextDirectory(next_dir, intermediate);
  RemovePending(Path(intermediate));  // A renewal under the old root asked for: moot.
  PHX_LOG(kInfo, "mesh CA: root rotation complete: root ", rotation_.new_root_serial,
          " alone; the old root ", old_serial, " is in ", retired, "/");
  if (next_ != nullptr) {
    next_->dir = options_.dir;
    current_ = std::move(next_);
  }
  rotation_ = RotationStatus();
  return absl::OkStatus();
}

MeshCa::RotationStatus MeshCa::rotation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rotation_;
}

std::string MeshCa::IntermediatePrefix(const Authority& authority) const {
  return absl::StrCat(authority.dir, "/intermediate-", options_.replica);
}

std::string MeshCa::PendingCsrPath(const Authority& authority) const {
  return PendingPrefix(IntermediatePrefix(authority)) + ".csr";
}

absl::Status MeshCa::MakePendingLocked(const Authority& authority) {
  auto key = tls::MakeKeyAndCsr(absl::StrCat("spiffe://", options_.trust_domain));
  if (!key.ok()) return key.status();
  std::string pending = PendingPrefix(IntermediatePrefix(authority));
  // The key first: a CSR on disk always has its key.
  if (absl::Status status = WriteFile(pending + ".key", key->key_pem, 0600); !status.ok()) {
    return status;
  }
  return WriteFile(pending + ".csr", key->csr_pem, 0644);
}

absl::Status MeshCa::JoinRotation(const std::string& new_root_pem) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string serial = FirstSerial(new_root_pem);
  if (serial.empty()) return absl::InvalidArgumentError("the new root is no PEM certificate");
  if (rotation_.phase != RotationPhase::kNone) {
    if (rotation_.new_root_serial == serial) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("this replica is rotating to root ",
                                                      rotation_.new_root_serial, ", not ", serial));
  }
  if (operator_intermediate_) {
    return absl::FailedPreconditionError(
        "the operator gave this replica's intermediate.crt: give it one under the new root");
  }
  auto next = std::make_unique<Authority>();
  next->dir = Path(kNextDir);
  next->root_pem = new_root_pem;
  next->root_serial = serial;
  // The files first, the rotation state last: a crash in between leaves an unused next/.
  if (absl::Status status = MakeDirectory(next->dir); !status.ok()) return status;
  if (absl::Status status = MakePendingLocked(*next); !status.ok()) return status;
  if (absl::Status status = WriteFile(next->dir + "/root.crt", new_root_pem, 0644); !status.ok()) {
    return status;
  }
  RotationStatus rotation;
  rotation.phase = RotationPhase::kAddingRoot;
  rotation.old_root_serial = current_->root_serial;
  rotation.new_root_serial = serial;
  std::swap(rotation_, rotation);
  if (absl::Status status = WriteRotationState(); !status.ok()) {
    std::swap(rotation_, rotation);
    return status;
  }
  next_ = std::move(next);
  PHX_LOG(kInfo, "mesh CA: joined the root rotation to ", serial,
          ": waiting for this replica's intermediate under it");
  return absl::OkStatus();
}

std::optional<MeshCa::IntermediateRequest> MeshCa::PendingIntermediate() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Authority* authority : {next_.get(), current_.get()}) {
    if (authority == nullptr) continue;
    if (auto csr = ReadFile(PendingCsrPath(*authority))) {
      return IntermediateRequest{authority->root_serial, *csr};
    }
  }
  return std::nullopt;
}

absl::Status MeshCa::AcceptIntermediate(const std::string& root_serial,
                                        const std::string& cert_pem) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Authority* authority : {next_.get(), current_.get()}) {
    if (authority == nullptr || authority->root_serial != root_serial) continue;
    std::string prefix = IntermediatePrefix(*authority);
    auto key = ReadFile(PendingPrefix(prefix) + ".key");
    if (!key) {
      if (!authority->signer) {
        return absl::FailedPreconditionError("no intermediate asked for under that root");
      }
      RemovePending(prefix);  // A request left behind once its answer was in place.
      return absl::OkStatus();
    }
    auto signer =
        tls::CertificateSigner::Create(tls::CaMaterial{cert_pem, *key}, authority->root_pem);
    if (!signer.ok()) return signer.status();
    // The certificate, then its key (FinishAcceptedIntermediate completes a crash in between).
    if (absl::Status status = WriteFile(prefix + ".crt", cert_pem, 0644); !status.ok()) {
      return status;
    }
    FinishAcceptedIntermediate(prefix, authority->root_pem);
    authority->signer = *std::move(signer);
    PHX_LOG(kInfo, "mesh CA: ", prefix, ".crt is in (serial ", FirstSerial(cert_pem),
            "): issuing under root ", root_serial, " with it");
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat("no root ", root_serial, " here"));
}

bool MeshCa::HasIntermediateUnder(const std::string& root_serial) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Authority* authority : {next_.get(), current_.get()}) {
    if (authority != nullptr && authority->root_serial == root_serial) {
      return authority->signer.has_value();
    }
  }
  return false;
}

time_t MeshCa::LatestIssuedUnder(const std::string& root_serial) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Authority* authority : {next_.get(), current_.get()}) {
    if (authority != nullptr && authority->root_serial == root_serial) {
      return authority->latest_issued;
    }
  }
  return 0;
}

std::chrono::seconds MeshCa::clock_skew_margin() const {
  return std::min(std::chrono::seconds(60), options_.max_validity / 4);
}

bool MeshCa::operator_intermediate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return operator_intermediate_;
}

absl::StatusOr<std::string> MeshCa::SignIntermediate(const std::string& replica,
                                                     const std::string& root_serial,
                                                     const std::string& csr_pem) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Authority* authority : {current_.get(), next_.get()}) {
    if (authority == nullptr || authority->root_serial != root_serial) continue;
    auto root = ReadCa(authority->dir + "/root");
    if (!root) break;
    return tls::SignIntermediateCsr(*root, csr_pem, options_.trust_domain,
                                    absl::StrCat("phoenix mesh intermediate ", replica),
                                    options_.intermediate_validity);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("this replica does not hold the key of root ", root_serial));
}

bool MeshCa::HoldsRootKey(const std::string& root_serial) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Authority* authority : {current_.get(), next_.get()}) {
    if (authority != nullptr && authority->root_serial == root_serial) {
      return Exists(authority->dir + "/root.key");
    }
  }
  return false;
}

absl::Status MeshCa::FollowToIssuingFromNew(time_t old_certificates_expire) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rotation_.phase != RotationPhase::kAddingRoot) return absl::OkStatus();
  RotationStatus rotation = rotation_;
  rotation.phase = RotationPhase::kIssuingFromNew;
  rotation.old_certificates_expire = old_certificates_expire;
  std::swap(rotation_, rotation);
  if (absl::Status status = WriteRotationState(); !status.ok()) {
    std::swap(rotation_, rotation);
    return status;
  }
  PHX_LOG(kInfo, "mesh CA: issuing under the new root ", rotation_.new_root_serial);
  return absl::OkStatus();
}

absl::Status MeshCa::FinishRotation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (rotation_.phase == RotationPhase::kNone) return absl::OkStatus();
  return CompleteRotation();
}

absl::Status MeshCa::AbandonRotation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (rotation_.phase != RotationPhase::kAddingRoot) {
    return absl::FailedPreconditionError("only a rotation still adding its root is abandoned");
  }
  // The new root is kept in retired/ (should etcd commit its rotation after all, late).
  std::string kept = absl::StrCat(Path(kRetiredDir), "/abandoned-", rotation_.new_root_serial);
  if (auto root = ReadCa(Path(kNextDir) + "/root")) {
    if (absl::Status status = MakeDirectory(Path(kRetiredDir)); !status.ok()) return status;
    if (absl::Status status = WriteCa(kept, *root); !status.ok()) return status;
  }
  if (::unlink(Path(kRotationFile).c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(absl::StrCat(Path(kRotationFile), ": ", std::strerror(errno)));
  }
  RemoveNextDirectory(Path(kNextDir), absl::StrCat("intermediate-", options_.replica));
  PHX_LOG(kWarn, "mesh CA: dropped the root rotation to ", rotation_.new_root_serial,
          " (its root kept as ", kept, ".crt)");
  next_.reset();
  rotation_ = RotationStatus();
  return absl::OkStatus();
}

std::string MeshCa::NewRootPem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_ == nullptr ? "" : next_->root_pem;
}

std::string MeshCa::CurrentRootPem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_->root_pem;
}

std::string MeshCa::CurrentRootSerial() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_->root_serial;
}

std::string MeshCa::IssuingRootSerial() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rotation_.phase == RotationPhase::kIssuingFromNew ? next_->root_serial
                                                           : current_->root_serial;
}

void MeshCa::AllowIssuingUntil(time_t until) {
  std::lock_guard<std::mutex> lock(mu_);
  issuing_allowed_until_ = until;
}

}  // namespace phoenix::control_plane
