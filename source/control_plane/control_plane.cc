#include "source/control_plane/control_plane.h"

#include <algorithm>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/logging.h"
#include "source/config/yaml_loader.h"
#include "source/control_plane/audit_log.h"
#include "source/control_plane/reference_check.h"
#include "source/control_plane/resource_text.h"
#include "source/tls/certificate.h"
#include "source/tls/workload_certificates.h"

namespace phoenix::control_plane {
namespace {

constexpr const char* kWho = "files";  // A change made in the directory itself.
constexpr const char* kSeeder = "seed";
constexpr const char* kMeshCa = "phoenix-cp mesh CA";
// The file (in the resources, every node's) that holds the Secret "trust_bundle".
constexpr const char* kTrustBundleFile = "mesh-trust-bundle.yaml";
constexpr const char* kTrustBundleSecret = "trust_bundle";
constexpr const char* kWorkloadSecret = "workload_certificate";
// How often a commit is tried over a newer state before giving up.
constexpr int kCommitAttempts = 5;

// What the CA's admin calls answer when phoenix-cp runs without --ca-dir.
absl::Status NoMeshCa() {
  return absl::FailedPreconditionError("phoenix-cp has no mesh CA (start it with --ca-dir)");
}

bool Unreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

ControlPlane::ControlPlane(ControlPlaneOptions options, std::unique_ptr<ResourceStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}

ControlPlane::~ControlPlane() { Stop(); }

absl::Status ControlPlane::Start() {
  auto auth = Authenticator::Load(options_.tokens_path, options_.principals_path);
  if (!auth.ok()) return auth.status();
  auth_ = *std::move(auth);
  auto credentials = MakeServerCredentials(options_.tls);
  if (!credentials.ok()) return credentials.status();
  if (!options_.identity.ca_dir.empty()) {
    if (auto opened = OpenMeshCa(); !opened.ok()) return opened;
  }
  auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (std::chrono::milliseconds wait{100};;
       wait = std::min(wait * 2, std::chrono::milliseconds(2000))) {
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      status = RefreshLocked(/*starting=*/true);
    }
    if (status.ok()) break;
    if (!Unreachable(status) || std::chrono::steady_clock::now() + wait > deadline) {
      if (Unreachable(status)) {
        return absl::UnavailableError(absl::StrCat(
            status.message(), "; gave up after ", options_.start_timeout.count() / 1000,
            " s: start etcd (or check --etcd) and start phoenix-cp again"));
      }
      return status;
    }
    PHX_LOG(kWarn, "phoenix-cp: ", status.message(), "; trying again in ", wait.count(), " ms");
    std::this_thread::sleep_for(wait);
  }
  if (ca_ != nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    if (coordinator_ != nullptr) {
      // Catch up with a rotation the replicas made while this one was away, before serving.
      if (auto caught_up = coordinator_->CatchUp(time(nullptr));
          !caught_up.ok() && !Unreachable(caught_up)) {
        return caught_up;
      }
    }
    // With replicas, the bundle they serve is a rotation driver's to change.
    if (auto synced = SyncTrustBundleLocked(kMeshCa, /*replace=*/coordinator_ == nullptr);
        !synced.ok()) {
      return synced;
    }
    // From now on validation sees the bundle file itself (a change that breaks it is refused).
    provided_secrets_.erase(
        std::remove_if(provided_secrets_.begin(), provided_secrets_.end(),
                       [](const auto& secret) { return secret.name() == kTrustBundleSecret; }),
        provided_secrets_.end());
    // Restarted in mid-rotation: proxies ACK what they are sent from now on.
    if (bundle_version_ == 0) bundle_version_ = version_;
  }
  admin_ = std::make_unique<AdminService>(*this, *auth_);
  server_ = std::make_unique<AdsServer>(Snapshot(), auth_.get());
  std::vector<grpc::Service*> services = {admin_.get()};
  if (identity_ != nullptr) services.push_back(identity_.get());
  auto port = server_->Start(options_.listen_address, *credentials, services);
  if (!port.ok()) return port.status();
  port_ = *port;
  store_->Watch([this] { Refresh(); });
  if (ca_ != nullptr) rotation_thread_ = std::thread([this] { DriveRotation(); });
  return absl::OkStatus();
}

absl::Status ControlPlane::OpenMeshCa() {
  const MeshIdentityOptions& identity = options_.identity;
  MeshCaOptions ca_options;
  ca_options.dir = identity.ca_dir;
  ca_options.trust_domain = identity.trust_domain;
  ca_options.generate = identity.ca_generate;
  ca_options.replica = identity.replica;
  ca_options.max_validity = identity.max_validity;
  SharedRecords* shared = store_->shared_records();
  ca_options.fenced = shared != nullptr;
  auto ca = MeshCa::Open(ca_options);
  if (!ca.ok()) return ca.status();
  ca_ = *std::move(ca);
  if (shared != nullptr) {
    CaRotationCoordinator::Options coordination;
    coordination.replica = identity.replica;
    coordinator_ = std::make_unique<CaRotationCoordinator>(
        *ca_, *shared, [this] { return store_->AuditLines(); }, coordination);
  }
  IdentityEntitlements entitlements(identity.trust_domain);
  if (!identity.identities_path.empty()) {
    auto loaded = IdentityEntitlements::Load(identity.identities_path, identity.trust_domain);
    if (!loaded.ok()) return loaded.status();
    entitlements = *std::move(loaded);
  }
  CertificateIssuance::Limits limits;
  limits.max_validity = identity.max_validity;
  limits.default_validity = std::min(limits.default_validity, identity.max_validity);
  // Who holds a certificate now (a rotation waits for them): from the audit trail, then from
  // each issuance.
  if (auto lines = store_->AuditLines(); lines.ok()) {
    holders_.AddFromAuditLines(*lines);
  } else {
    PHX_LOG(kWarn, "phoenix-cp: cannot read the audit trail for the certificates issued so far: ",
            lines.status().message());
  }
  issuance_ = std::make_unique<CertificateIssuance>(
      *ca_, auth_.get(), std::move(entitlements), limits,
      [this](const std::string& line) { return store_->AppendAudit(line); },
      [this](const std::string& node, time_t not_after, const std::string& root) {
        holders_.Add(node, not_after, root);
      });
  identity_ = std::make_unique<IdentityService>(*issuance_);

  // Validation stands in for what each proxy will have: a workload certificate (one made for
  // the purpose, never served) and the bundle.
  // (A self-signed certificate of its own: validation checks that a key matches its
  // certificate and that it is valid, not who signed it.)
  auto stand_in = tls::GenerateRootCa(identity.trust_domain, "phoenix-cp validation stand-in",
                                      std::chrono::hours(24 * 3650));
  if (!stand_in.ok()) return stand_in.status();
  config::v1::Secret workload;
  workload.set_name(kWorkloadSecret);
  workload.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(
      stand_in->cert_pem);
  workload.mutable_tls_certificate()->mutable_private_key()->set_inline_string(stand_in->key_pem);
  config::v1::Secret bundle;
  bundle.set_name(kTrustBundleSecret);
  bundle.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(ca_->TrustBundle());
  provided_secrets_ = {workload, bundle};
  PHX_LOG(kInfo, "phoenix-cp: mesh CA in ", identity.ca_dir, " (trust domain ",
          identity.trust_domain, "): issuing workload certificates, at most ",
          identity.max_validity.count(), " s");
  return absl::OkStatus();
}

absl::Status ControlPlane::SyncTrustBundleLocked(const std::string& who, bool replace) {
  config::v1::StaticResources resources;
  config::v1::Secret* secret = resources.add_secrets();
  secret->set_name(kTrustBundleSecret);
  secret->mutable_validation_context()->mutable_trusted_ca()->set_inline_string(ca_->TrustBundle());
  std::string text = absl::StrCat(
      "# Written by phoenix-cp: the mesh CA's roots, which sidecars trust.\n"
      "# Do not edit: phoenix-cp writes it again.\n",
      RenderMessage(resources, TextFormat::kYaml));
  for (const IncomingFile& file : files_) {
    if (file.path == kTrustBundleFile && file.content == text) return absl::OkStatus();
  }
  std::string served = ServedTrustBundleLocked();
  if (!served.empty() && !replace) {
    // The replicas serve one bundle, which only a rotation's driver changes. Each has its own
    // intermediate under the same root, so the bundle must hold the root this one issues
    // under.
    std::vector<std::string> theirs = tls::CertificateSerials(served);
    std::string serial = ca_->IssuingRootSerial();
    if (std::find(theirs.begin(), theirs.end(), serial) == theirs.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("this replica's mesh root (serial ", serial,
                       ") is not in the trust bundle the other replicas serve (roots ",
                       absl::StrJoin(theirs, ", "), "): give every replica the same root.crt and ",
                       "root.key in its --ca-dir"));
    }
    return absl::OkStatus();
  }
  std::vector<IncomingFile> sent = {{kTrustBundleFile, text}};
  auto applied = CommitLocked(
      [&](const FileSet& in_force) { return MergeFileSets(in_force, sent); }, sent, who, {});
  if (!applied.ok()) {
    return absl::Status(
        applied.status().code(),
        absl::StrCat("cannot publish the mesh trust bundle: ", applied.status().message()));
  }
  bundle_version_ = applied->version;
  PHX_LOG(kInfo, "phoenix-cp: trust bundle (roots ",
          absl::StrJoin(tls::CertificateSerials(ca_->TrustBundle()), ", "),
          ") published as version ", applied->version);
  return absl::OkStatus();
}

std::string ControlPlane::ServedTrustBundleLocked() const {
  if (current_ == nullptr) return "";
  auto secrets = current_->common().find(ResourceType::kSecret);
  if (secrets == current_->common().end()) return "";
  auto it = secrets->second.find(kTrustBundleSecret);
  config::v1::Secret secret;
  if (it == secrets->second.end() || !it->second.packed.UnpackTo(&secret)) return "";
  return secret.validation_context().trusted_ca().inline_string();
}

AdminBackend::CaState ControlPlane::CaStateLocked() const {
  CaState state;
  MeshCa::RotationStatus rotation = ca_->rotation();
  state.trust_domain = ca_->trust_domain();
  state.phase = MeshCa::PhaseName(rotation.phase);
  state.bundle_root_serials = tls::CertificateSerials(ca_->TrustBundle());
  state.issuing_root_serial =
      rotation.phase == MeshCa::RotationPhase::kIssuingFromNew
          ? rotation.new_root_serial
          : (rotation.phase == MeshCa::RotationPhase::kNone && !state.bundle_root_serials.empty()
                 ? state.bundle_root_serials.front()
                 : rotation.old_root_serial);
  state.bundle_version = bundle_version_;
  state.old_certificates_expire = rotation.old_certificates_expire;
  if (coordinator_ != nullptr) {
    // The replicas' rotation: their proxies and holders, as the last round saw them.
    CaRotationCoordinator::View view = coordinator_->view();
    if (view.rotation && view.rotation->phase != MeshCa::PhaseName(MeshCa::RotationPhase::kNone)) {
      if (rotation.phase == MeshCa::RotationPhase::kNone) state.phase = view.rotation->phase;
      state.bundle_version = view.rotation->bundle_version;
      state.old_certificates_expire = view.rotation->old_certificates_expire;
    }
    state.issuing_root_serial = ca_->IssuingRootSerial();
    state.proxies_acked = view.acked;
    state.proxies_waiting = view.waiting;
    state.replicas = view.replicas;
    return state;
  }
  const std::string secret_type(config::TypeUrl(ResourceType::kSecret));
  for (const ProxyStatus& proxy : server_ ? server_->Proxies() : std::vector<ProxyStatus>()) {
    uint64_t acked = 0;
    if (auto it = proxy.types.find(secret_type); it != proxy.types.end()) {
      if (!absl::SimpleAtoi(it->second.acked_version, &acked)) acked = 0;
    }
    (acked >= bundle_version_ ? state.proxies_acked : state.proxies_waiting)
        .push_back(proxy.node_id);
  }
  // A node holding a valid certificate that is not connected has not seen the bundle either.
  for (const std::string& holder : holders_.Current(time(nullptr))) {
    auto in = [&](const std::vector<std::string>& nodes) {
      return std::find(nodes.begin(), nodes.end(), holder) != nodes.end();
    };
    if (!in(state.proxies_acked) && !in(state.proxies_waiting)) {
      state.proxies_waiting.push_back(holder + " (not connected)");
    }
  }
  return state;
}

absl::StatusOr<AdminBackend::CaState> ControlPlane::CaStatus() {
  if (ca_ == nullptr) return NoMeshCa();
  std::lock_guard<std::mutex> lock(mu_);
  return CaStateLocked();
}

absl::StatusOr<AdminBackend::CaState> ControlPlane::StartCaRotation(const std::string& who) {
  if (ca_ == nullptr) return NoMeshCa();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("phoenix-cp is stopping");
  if (coordinator_ != nullptr) {
    // The replicas' shared state is etcd I/O: not under the lock Refresh and the admin calls need.
    lock.unlock();
    absl::Status started = coordinator_->Start(time(nullptr));
    lock.lock();
    if (!started.ok()) return started;
  } else if (auto started = ca_->StartRotation(); !started.ok()) {
    return started;
  }
  PHX_LOG(kInfo, "phoenix-cp: root rotation started by ", who, ": new root ",
          ca_->rotation().new_root_serial, " joins the trust bundle");
  if (auto synced = SyncTrustBundleLocked(absl::StrCat(who, " (CA rotation: add the new root)"),
                                          /*replace=*/true);
      !synced.ok()) {
    // The rotation waits for the bundle: DriveRotation publishes it before anything else.
    return absl::Status(synced.code(),
                        absl::StrCat("the new root is made, but its bundle is not published yet "
                                     "(phoenix-cp keeps trying; the rotation waits for it): ",
                                     synced.message()));
  }
  // (With replicas, DriveRotation tells them which version carries the bundle.)
  rotation_cv_.notify_all();
  return CaStateLocked();
}

absl::StatusOr<AdminBackend::CaState> ControlPlane::AbortCaRotation(const std::string& who) {
  if (ca_ == nullptr) return NoMeshCa();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("phoenix-cp is stopping");
  std::string dropped = ca_->rotation().new_root_serial;
  if (coordinator_ != nullptr) {
    lock.unlock();
    auto aborted = coordinator_->Abort(time(nullptr));
    lock.lock();
    if (!aborted.ok()) return aborted.status();
    dropped = *aborted;
  } else if (ca_->rotation().phase == MeshCa::RotationPhase::kNone) {
    return absl::FailedPreconditionError("no root rotation is in progress");
  } else if (ca_->rotation().phase != MeshCa::RotationPhase::kAddingRoot) {
    return absl::FailedPreconditionError(
        "certificates under the new root exist already: the rotation can only finish now");
  } else if (auto abandoned = ca_->AbandonRotation(); !abandoned.ok()) {
    return abandoned;
  }
  PHX_LOG(kWarn, "phoenix-cp: root rotation to ", dropped, " abandoned by ", who);
  if (auto synced = SyncTrustBundleLocked(
          absl::StrCat(who, " (CA rotation abandoned: drop root ", dropped, ")"),
          /*replace=*/true);
      !synced.ok()) {
    return absl::Status(synced.code(),
                        absl::StrCat("the rotation is abandoned, but the bundle without its root "
                                     "is not published yet (phoenix-cp keeps trying): ",
                                     synced.message()));
  }
  rotation_cv_.notify_all();
  return CaStateLocked();
}

void ControlPlane::DriveRotation() {
  std::unique_lock<std::mutex> lock(mu_);
  time_t last_intermediate_check = 0;
  // After a failed publication: wait before the next (0.5 s doubling to 60 s; a new version
  // in force, which may have fixed the cause, tries at once).
  std::chrono::milliseconds retry_in{0};
  auto retry_at = std::chrono::steady_clock::now();
  uint64_t failed_at_version = 0;
  std::string step = "publish the bundle";  // Why the bundle differs, for the audit.
  while (!stopping_) {
    rotation_cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) break;
    if (time(nullptr) - last_intermediate_check >= 60) {
      last_intermediate_check = time(nullptr);
      if (auto renewed = ca_->RenewIntermediatesIfDue(time(nullptr)); !renewed.ok()) {
        PHX_LOG(kError, "phoenix-cp: mesh CA: cannot renew the intermediate: ", renewed.message());
      }
    }
    std::optional<CaRotationCoordinator::View> shared;
    if (coordinator_ != nullptr) {
      // The replicas' shared state is etcd I/O: not under the lock that Refresh and the admin
      // calls need.
      lock.unlock();
      absl::Status ticked = coordinator_->Tick(ConnectedProxies(), time(nullptr));
      lock.lock();
      if (stopping_) break;
      LogSharedStateLocked(ticked);
      shared = coordinator_->view();
      if (!shared->publishes_bundle) continue;  // Only the rotation's driver changes the bundle.
      if (ServedTrustBundleLocked() != ca_->TrustBundle()) {
        step = shared->driving ? "CA rotation: add the new root" : "CA rotation: drop the old root";
      }
    }
    MeshCa::RotationStatus before = ca_->rotation();
    // What the proxies are served must be the CA's bundle before anything moves on (a failed
    // publication, or the bundle file changed by hand, is put right here).
    if (ServedTrustBundleLocked() != ca_->TrustBundle()) {
      if (retry_in.count() > 0 && version_ == failed_at_version &&
          std::chrono::steady_clock::now() < retry_at) {
        continue;
      }
      if (auto synced =
              SyncTrustBundleLocked(absl::StrCat(kMeshCa, " (", step, ")"), /*replace=*/true);
          !synced.ok()) {
        retry_in = std::min(std::max(retry_in * 2, std::chrono::milliseconds(500)),
                            std::chrono::milliseconds(60000));
        retry_at = std::chrono::steady_clock::now() + retry_in;
        failed_at_version = version_;
        PHX_LOG(kError, "phoenix-cp: mesh CA: ", synced.message(), " (trying again in ",
                retry_in.count(), " ms)");
        continue;
      }
      retry_in = std::chrono::milliseconds(0);
      step = "publish the bundle";
      if (ServedTrustBundleLocked() != ca_->TrustBundle()) {
        // etcd: the replicas' shared bundle stands (it holds this replica's root).
        continue;
      }
    }
    if (shared) {
      // The driver tells the replicas which version carries the bundle with both roots (once
      // it is served).
      std::vector<std::string> served = tls::CertificateSerials(ServedTrustBundleLocked());
      if (shared->driving && shared->rotation->bundle_version == 0 &&
          std::find(served.begin(), served.end(), shared->rotation->new_root_serial) !=
              served.end()) {
        uint64_t version = bundle_version_;
        lock.unlock();
        absl::Status told = coordinator_->BundlePublished(version);
        lock.lock();
        if (!told.ok()) PHX_LOG(kWarn, "phoenix-cp: CA rotation: ", told.message());
      }
      continue;
    }
    if (before.phase == MeshCa::RotationPhase::kNone) continue;
    CaState state = CaStateLocked();
    if (!ca_->AdvanceRotation(state.proxies_waiting.empty(), time(nullptr))) continue;
    MeshCa::RotationStatus after = ca_->rotation();
    if (after.phase == MeshCa::RotationPhase::kIssuingFromNew) {
      PHX_LOG(kInfo, "phoenix-cp: CA rotation: every proxy and certificate holder (",
              state.proxies_acked.size(), ") runs the new bundle; issuing under root ",
              after.new_root_serial,
              " now; the old root stays until its last certificate expires at ",
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromTimeT(after.old_certificates_expire),
                               absl::UTCTimeZone()));
    } else {
      PHX_LOG(kInfo, "phoenix-cp: CA rotation: every certificate under root ",
              before.old_root_serial, " has expired; it leaves the trust bundle");
      step = "CA rotation: drop the old root";  // Published on the next tick.
    }
  }
}

std::vector<ConnectedProxy> ControlPlane::ConnectedProxies() const {
  std::vector<ConnectedProxy> connected;
  const std::string secret_type(config::TypeUrl(ResourceType::kSecret));
  for (const ProxyStatus& proxy : server_ ? server_->Proxies() : std::vector<ProxyStatus>()) {
    ConnectedProxy entry{proxy.node_id, 0};
    if (auto it = proxy.types.find(secret_type); it != proxy.types.end()) {
      if (!absl::SimpleAtoi(it->second.acked_version, &entry.acked_version)) {
        entry.acked_version = 0;
      }
    }
    connected.push_back(std::move(entry));
  }
  return connected;
}

void ControlPlane::LogSharedStateLocked(const absl::Status& ticked) {
  std::string error = ticked.ok() ? "" : std::string(ticked.message());
  if (error == coordinator_error_) return;
  if (!error.empty()) {
    PHX_LOG(kError, "phoenix-cp: mesh CA: the replicas' shared state: ", error);
  } else {
    PHX_LOG(kInfo, "phoenix-cp: mesh CA: the replicas' shared state is readable again");
  }
  coordinator_error_ = error;
}

void ControlPlane::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  rotation_cv_.notify_all();
  if (rotation_thread_.joinable()) rotation_thread_.join();
  if (coordinator_ != nullptr) {
    ca_->AllowIssuingUntil(0);  // Out of the replicas' count: no longer issuing either.
    coordinator_->Leave();
  }
  store_->StopWatching();  // First: a change seen now would be pushed through server_.
  if (server_) server_->Shutdown();
}

uint64_t ControlPlane::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

void ControlPlane::Refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  RefreshLocked(/*starting=*/false).IgnoreError();  // Logged where it happens.
}

absl::Status ControlPlane::RefreshLocked(bool starting) {
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    auto state = store_->Read();
    if (!state.ok()) {
      if (starting) return state.status();
      PHX_LOG(kWarn, "phoenix-cp: cannot read ", store_->description(), " (still serving version ",
              version_, "): ", state.status().message());
      return state.status();
    }
    std::string who = kWho;
    FileSet files = state->files;  // What the next version is made of.
    if (starting && state->version == 0 && !options_.seed_dir.empty()) {
      auto seed = ReadIncomingFiles(options_.seed_dir);
      if (!seed.ok()) return seed.status();
      files = *std::move(seed);  // Committed below as version 1, unless a replica was first.
      who = kSeeder;
      PHX_LOG(kInfo, "phoenix-cp: ", store_->description(), " has no version yet: seeding it from ",
              options_.seed_dir);
    }
    if (state->version != version_) {
      AdoptLocked(state->version);
      if (version_ != state->version) {
        // Logged by AdoptLocked; the files are that version's, not an edit to commit.
        return absl::FailedPreconditionError(
            absl::StrCat("version ", state->version, " cannot be served here"));
      }
    }
    if (current_ != nullptr && SameFileSets(files, files_)) return absl::OkStatus();

    // Files changed outside the admin service (the directory edited by hand), or nothing is in
    // force yet: validated and committed as the next version.
    auto plan = PlanChange(files, {}, store_->root(), current_.get(), state->version + 1,
                           provided_secrets_);
    if (!plan.ok()) {
      if (starting) return plan.status();
      std::string error(plan.status().message());
      PHX_LOG(kError, "phoenix-cp: refused the change to ", store_->description(),
              " (still serving version ", version_, "):\n", error);
      AuditRefusedLocked(who, error);
      return plan.status();
    }
    if (current_ != nullptr && plan->changes.empty()) {
      files_ = std::move(files);  // Only comments or layout changed: the version stays.
      PHX_LOG(kDebug, "phoenix-cp: ", store_->description(), " changed, its resources did not");
      return absl::OkStatus();
    }
    std::string line = AuditLog::AcceptedLine(absl::Now(), who, state->version + 1, plan->changes);
    absl::Status committed = store_->Commit(*state, plan->files, line);
    if (committed.code() == absl::StatusCode::kAborted) {
      PHX_LOG(kInfo, "phoenix-cp: ", committed.message(), "; reading again");
      continue;
    }
    if (!committed.ok()) {
      PHX_LOG(kError, "phoenix-cp: could not commit the change to ", store_->description(), ": ",
              committed.message());
      return committed;
    }
    PHX_LOG(kInfo, "phoenix-cp: version ", plan->candidate->version(), ": ", plan->changes.size(),
            " resource change(s)");
    PublishLocked(plan->candidate, std::move(plan->files));
    return absl::OkStatus();
  }
  return absl::AbortedError("the store kept changing while being read; will read again");
}

void ControlPlane::AdoptLocked(uint64_t version) {
  auto fail = [&](const absl::Status& status) {
    PHX_LOG(kError, "phoenix-cp: version ", version, " of ", store_->description(),
            " cannot be served here (still serving version ", version_, "): ", status.message());
    if (current_ == nullptr) {
      version_ = version;  // Nothing in force yet: what is read next becomes version + 1.
      files_.clear();
    }
  };
  FileSet files;
  if (version > 0) {
    auto kept = store_->Version(version);
    if (!kept.ok()) return fail(kept.status());
    files = *std::move(kept);
  }
  auto parsed = ParseResourceFiles(files, store_->root());
  if (!parsed.ok()) return fail(parsed.status());
  auto snapshot = BuildResourceSnapshot(*parsed, version, provided_secrets_);
  if (!snapshot.ok()) return fail(snapshot.status());
  size_t changes = DiffSnapshots(current_.get(), **snapshot).size();
  if (current_ != nullptr) {
    PHX_LOG(kInfo, "phoenix-cp: version ", version, " from ", store_->description(), ": ", changes,
            " resource change(s)");
  }
  PublishLocked(*std::move(snapshot), std::move(files));
}

void ControlPlane::PublishLocked(std::shared_ptr<const ResourceSnapshot> snapshot, FileSet files) {
  bool first = current_ == nullptr;
  std::string bundle_before = ServedTrustBundleLocked();
  version_ = snapshot->version();
  current_ = std::move(snapshot);
  files_ = std::move(files);
  // Which version proxies must have ACKed to run the bundle in force (whoever committed it).
  if (!first && ServedTrustBundleLocked() != bundle_before) bundle_version_ = version_;
  if (server_) server_->Publish(current_);
}

void ControlPlane::AuditRefusedLocked(const std::string& who, const std::string& error) {
  if (auto s = store_->AppendAudit(AuditLog::RefusedLine(absl::Now(), who, error)); !s.ok()) {
    PHX_LOG(kError, "phoenix-cp: audit: ", s.message());
  }
}

}  // namespace phoenix::control_plane

namespace phoenix::control_plane {

absl::StatusOr<std::vector<ResourceDiffText>> ControlPlane::Plan(
    const std::vector<IncomingFile>& files) {
  std::lock_guard<std::mutex> lock(mu_);
  auto plan =
      PlanChange(files_, files, store_->root(), current_.get(), version_ + 1, provided_secrets_);
  if (!plan.ok()) return plan.status();
  return DescribeChanges(current_.get(), *plan->candidate, plan->changes);
}

absl::Status ControlPlane::RefuseCaFiles(const std::vector<std::string>& paths) const {
  if (ca_ == nullptr) return absl::OkStatus();
  for (const std::string& path : paths) {
    if (path == kTrustBundleFile) {
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          " is the mesh CA's trust bundle, written by phoenix-cp: phoenixctl ca rotate "
          "changes it"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::Apply(const std::vector<IncomingFile>& sent,
                                                          const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  // The bundle file as it is in force (an exported directory applied again) is no change.
  std::vector<IncomingFile> files;
  std::vector<std::string> paths;
  for (const IncomingFile& file : sent) {
    bool unchanged = std::any_of(files_.begin(), files_.end(), [&](const IncomingFile& f) {
      return f.path == file.path && f.content == file.content;
    });
    if (ca_ != nullptr && file.path == kTrustBundleFile && unchanged) continue;
    files.push_back(file);
    paths.push_back(file.path);
  }
  if (auto refused = RefuseCaFiles(paths); !refused.ok()) return refused;
  return CommitLocked([&](const FileSet& in_force) { return MergeFileSets(in_force, files); },
                      files, who, {});
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::Delete(const std::vector<std::string>& paths,
                                                           const std::string& who) {
  if (auto refused = RefuseCaFiles(paths); !refused.ok()) return refused;
  std::lock_guard<std::mutex> lock(mu_);
  if (paths.empty()) return absl::InvalidArgumentError("name at least one file to delete");
  for (const std::string& path : paths) {
    if (auto s = CheckIncomingPath(path); !s.ok()) return s;
  }
  NextFiles next = [&](const FileSet& in_force) -> absl::StatusOr<FileSet> {
    FileSet kept;
    for (const IncomingFile& file : in_force) {
      if (std::find(paths.begin(), paths.end(), file.path) == paths.end()) kept.push_back(file);
    }
    for (const std::string& path : paths) {
      bool known = std::any_of(in_force.begin(), in_force.end(),
                               [&](const IncomingFile& f) { return f.path == path; });
      if (!known) {
        return absl::NotFoundError(absl::StrCat("no file ", path, " in version ", version_,
                                                " (phoenixctl get shows each resource's file)"));
      }
    }
    return kept;
  };
  CommitOptions options;
  options.note = absl::StrCat("# delete ", absl::StrJoin(paths, " "), "\n");
  options.refuse_dangling_references = true;
  return CommitLocked(next, {}, who, options);
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::Rollback(uint64_t version,
                                                             const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  auto files = store_->Version(version);
  if (!files.ok()) return files.status();
  CommitOptions options;
  options.note = absl::StrCat("# rollback to version ", version, "\n");
  if (ca_ != nullptr) {
    // The mesh CA's bundle is not rolled back: the proxies keep trusting today's roots.
    for (const IncomingFile& file : files_) {
      if (file.path == kTrustBundleFile) *files = MergeFileSets(*files, {file});
    }
  }
  return CommitLocked([&](const FileSet&) { return *files; }, {}, who, options);
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::RotateCertificate(
    const std::string& name, const std::string& node, const std::string& certificate_chain,
    const std::string& private_key, const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  NextFiles next = [&](const FileSet& in_force) -> absl::StatusOr<FileSet> {
    // Where the Secret is defined: the common files, or nodes/<id>/ folders.
    std::vector<const Resource*> found;
    auto look = [&](const ResourcesByType& set, const std::string& at) {
      if (!node.empty() && at != node) return;
      auto secrets = set.find(ResourceType::kSecret);
      if (secrets == set.end()) return;
      if (auto it = secrets->second.find(name); it != secrets->second.end()) {
        found.push_back(&it->second);
      }
    };
    if (current_ != nullptr) {
      look(current_->common(), "");
      for (const auto& [at, set] : current_->per_node()) look(set, at);
    }
    if (found.empty()) return absl::NotFoundError(absl::StrCat("no Secret named '", name, "'"));
    if (found.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("Secret '", name, "' is defined for several nodes: say which with --node"));
    }
    auto file = std::find_if(in_force.begin(), in_force.end(), [&](const IncomingFile& f) {
      return JoinRoot(store_->root(), f.path) == found[0]->file;
    });
    if (file == in_force.end()) {
      return absl::InternalError(absl::StrCat(found[0]->file, " is not among the files in force"));
    }
    config::v1::StaticResources resources;
    config::SourceMap map(found[0]->file);
    if (auto s = config::LoadYamlString(file->content, &resources, &map); !s.ok()) return s;
    config::v1::Secret* secret = nullptr;
    for (auto& candidate : *resources.mutable_secrets()) {
      if (candidate.name() == name) secret = &candidate;
    }
    if (secret == nullptr || !secret->has_tls_certificate()) {
      return absl::FailedPreconditionError(absl::StrCat("Secret '", name, "' in ", found[0]->file,
                                                        " holds no tls_certificate to rotate"));
    }
    secret->mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(
        certificate_chain);
    secret->mutable_tls_certificate()->mutable_private_key()->set_inline_string(private_key);
    // The proxy's own loader: the key must be the certificate's and the certificate valid now
    // (the snapshot's validation checks only the secrets a TLS context refers to).
    if (auto loaded = tls::LoadCertificate(secret->tls_certificate()); !loaded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Secret '", name, "': ", loaded.status().message()));
    }
    std::string text =
        absl::StrCat("# Rewritten by phoenix-cp: certificate of Secret ", name, " rotated by ", who,
                     "\n", RenderMessage(resources, TextFormat::kYaml));
    return MergeFileSets(in_force, {{file->path, text}});
  };
  CommitOptions options;
  options.note = absl::StrCat("# certificate rotation of Secret ", name, "\n");
  return CommitLocked(next, {}, who, options);
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::CommitLocked(
    const NextFiles& next, const std::vector<IncomingFile>& sent, const std::string& who,
    const CommitOptions& options) {
  auto refuse = [&](const absl::Status& status) {
    AuditRefusedLocked(who, std::string(status.message()));
    PHX_LOG(kWarn, "phoenix-cp: refused a change by ", who, ":\n", status.message());
    return status;
  };
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    auto files = next(files_);
    if (!files.ok()) {
      if (files.status().code() == absl::StatusCode::kInvalidArgument) {
        return refuse(files.status());
      }
      return files.status();
    }
    // The sent files are laid over the new set once more so their errors name them as sent.
    auto plan =
        PlanChange(*files, sent, store_->root(), current_.get(), version_ + 1, provided_secrets_);
    if (!plan.ok()) return refuse(plan.status());
    if (options.refuse_dangling_references) {
      auto dangling = NewDanglingReferences(current_.get(), *plan->candidate);
      if (!dangling.empty()) {
        return refuse(absl::InvalidArgumentError(absl::StrJoin(dangling, "\n")));
      }
    }
    Applied applied;
    applied.version = version_;
    if (plan->changes.empty()) return applied;  // Nothing to commit.
    applied.diffs = DescribeChanges(current_.get(), *plan->candidate, plan->changes);
    std::string line = AuditLog::AcceptedLine(absl::Now(), who, version_ + 1, plan->changes,
                                              options.note + JoinDiffs(applied.diffs));
    absl::Status committed = store_->Commit({version_, files_}, plan->files, line);
    if (committed.code() == absl::StatusCode::kAborted) {
      PHX_LOG(kInfo, "phoenix-cp: ", committed.message(), "; planning the change by ", who,
              " again over it");
      RefreshLocked(/*starting=*/false).IgnoreError();
      continue;
    }
    if (!committed.ok()) {
      // FAILED_PRECONDITION rather than UNAVAILABLE: phoenix-cp answered, its store did not
      // (phoenixctl says UNAVAILABLE means phoenix-cp itself cannot be reached).
      return absl::FailedPreconditionError(absl::StrCat("nothing changed: ", committed.message(),
                                                        " (", store_->description(),
                                                        "); try again once it is back"));
    }
    applied.version = version_ + 1;
    PHX_LOG(kInfo, "phoenix-cp: version ", applied.version, ": ", plan->changes.size(),
            " resource change(s) by ", who);
    PublishLocked(plan->candidate, std::move(plan->files));
    return applied;
  }
  return absl::AbortedError(absl::StrCat("the resources kept changing while committing (",
                                         kCommitAttempts, " tries); run the command again"));
}

std::shared_ptr<const ResourceSnapshot> ControlPlane::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::vector<ProxyStatus> ControlPlane::Proxies() const {
  return server_ ? server_->Proxies() : std::vector<ProxyStatus>{};
}

absl::StatusOr<std::vector<std::string>> ControlPlane::AuditLines() const {
  return store_->AuditLines();
}

}  // namespace phoenix::control_plane
