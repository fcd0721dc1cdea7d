#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "source/control_plane/admin_backend.h"
#include "source/control_plane/admin_service.h"
#include "source/control_plane/ads_server.h"
#include "source/control_plane/ca_rotation_coordinator.h"
#include "source/control_plane/certificate_holders.h"
#include "source/control_plane/certificate_issuance.h"
#include "source/control_plane/identity_service.h"
#include "source/control_plane/mesh_ca.h"
#include "source/control_plane/resource_store.h"
#include "source/control_plane/server_credentials.h"

namespace phoenix::control_plane {

// Mesh identity: phoenix-cp's CA issues workload certificates (IdentityService) and serves its
// roots as the Secret "trust_bundle". Off without a CA directory.
struct MeshIdentityOptions {
  std::string ca_dir;  // Empty: no CA.
  bool ca_generate = false;
  std::string trust_domain = "phoenix.local";
  std::string identities_path;  // Empty: each node may hold .../ns/default/sa/<node id> only.
  std::chrono::seconds max_validity{24 * 3600};
  // Names this replica's intermediate; with replicas sharing etcd, unique among them.
  std::string replica = "default";
};

struct ControlPlaneOptions {
  std::string listen_address = "127.0.0.1:18000";
  // Bearer tokens (TokenTable's format) and certificate principals' roles (PrincipalTable's);
  // both empty: no authentication (the local default).
  std::string tokens_path;
  std::string principals_path;
  ServerTlsFiles tls;  // Empty: plaintext.
  // With a store that has no version yet (a new etcd prefix): the directory whose files
  // become version 1. Empty: version 1 has no resources.
  std::string seed_dir;
  MeshIdentityOptions identity;
  // How long Start keeps trying a store it cannot reach (etcd not up yet).
  std::chrono::milliseconds start_timeout{10000};
};

// phoenix-cp as a whole: the ResourceStore (a directory, or etcd shared with other replicas)
// holds the resource files and their version; each valid change becomes a new snapshot, is
// committed (with its audit record) and pushed over ADS; an invalid one is audited, logged and
// refused while the last good one stays in force. Changes come through the admin service
// (phoenixctl, audited with their principal), from the directory edited by hand (`files`), or
// from another replica (seen through the store's watch, published as they are).
class ControlPlane : public AdminBackend {
 public:
  ControlPlane(ControlPlaneOptions options, std::unique_ptr<ResourceStore> store);
  ~ControlPlane() override;

  // Reads the store (an invalid state is the error), listens and starts watching.
  absl::Status Start();
  void Stop();
  int port() const { return port_; }
  uint64_t version() const;
  // Reads the store again: publishes a version committed elsewhere, and commits (or refuses)
  // files changed by hand.
  void Refresh();
  // Whether requests are authenticated (--tokens).
  bool authenticating() const { return auth_ && auth_->enabled(); }
  const ResourceStore& store() const { return *store_; }
  // The mesh CA; null without --ca-dir.
  MeshCa* mesh_ca() { return ca_.get(); }

  // AdminBackend.
  absl::StatusOr<std::vector<ResourceDiffText>> Plan(
      const std::vector<IncomingFile>& files) override;
  absl::StatusOr<Applied> Apply(const std::vector<IncomingFile>& files,
                                const std::string& who) override;
  absl::StatusOr<Applied> Delete(const std::vector<std::string>& paths,
                                 const std::string& who) override;
  absl::StatusOr<Applied> Rollback(uint64_t version, const std::string& who) override;
  absl::StatusOr<Applied> RotateCertificate(const std::string& name, const std::string& node,
                                            const std::string& certificate_chain,
                                            const std::string& private_key,
                                            const std::string& who) override;
  absl::StatusOr<CaState> CaStatus() override;
  absl::StatusOr<CaState> StartCaRotation(const std::string& who) override;
  absl::StatusOr<CaState> AbortCaRotation(const std::string& who) override;
  std::shared_ptr<const ResourceSnapshot> Snapshot() const override;
  std::vector<ProxyStatus> Proxies() const override;
  absl::StatusOr<std::vector<std::string>> AuditLines() const override;
  const std::string& resources_dir() const override { return store_->root(); }

 private:
  // How a change makes the new file set from the one in force (or refuses).
  using NextFiles = std::function<absl::StatusOr<FileSet>(const FileSet& in_force)>;
  struct CommitOptions {
    std::string note;                         // Heads the audited diff.
    bool refuse_dangling_references = false;  // Delete.
  };

  // Refresh's work; at startup an invalid state or an unreachable store is the error.
  absl::Status RefreshLocked(bool starting);
  // Makes `version`, committed elsewhere, the one in force.
  void AdoptLocked(uint64_t version);
  // Validates, commits (retrying over a newer state when another commit came first),
  // publishes and audits the files `next` makes.
  absl::StatusOr<Applied> CommitLocked(const NextFiles& next, const std::vector<IncomingFile>& sent,
                                       const std::string& who, const CommitOptions& options);
  void PublishLocked(std::shared_ptr<const ResourceSnapshot> snapshot, FileSet files);
  void AuditRefusedLocked(const std::string& who, const std::string& error);
  // Opens the mesh CA and makes what validation assumes proxies have (the workload
  // certificate each is issued, the trust bundle).
  absl::Status OpenMeshCa();
  // Commits the CA's trust bundle as the Secret "trust_bundle" (file kTrustBundleFile) when the
  // one in force differs.
  // Without `replace` (replicas, where the bundle is a rotation's to change), a bundle already
  // served stays; it only has to hold the root this replica issues under.
  absl::Status SyncTrustBundleLocked(const std::string& who, bool replace);
  // INVALID_ARGUMENT when an admin change names a file the mesh CA writes.
  absl::Status RefuseCaFiles(const std::vector<std::string>& paths) const;
  // The CA bundle of the Secret trust_bundle in force ("" when none).
  std::string ServedTrustBundleLocked() const;
  // The CA's state, with which connected proxies run the bundle's version.
  CaState CaStateLocked() const;
  // While a rotation is in progress: moves it on (every half second) when it may; with
  // replicas, takes part in the one they share (coordinator_).
  void DriveRotation();
  // Logs the shared rotation's round when its outcome changes (not every half second).
  void LogSharedStateLocked(const absl::Status& ticked);
  // The connected proxies and the Secret version each ACKed.
  std::vector<ConnectedProxy> ConnectedProxies() const;

  const ControlPlaneOptions options_;
  const std::unique_ptr<ResourceStore> store_;
  mutable std::mutex mu_;  // Refresh runs on the store's watch thread.
  // What is in force (guarded by mu_): its version, snapshot (null only before the first)
  // and files.
  uint64_t version_ = 0;
  std::shared_ptr<const ResourceSnapshot> current_;
  FileSet files_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<MeshCa> ca_;
  std::unique_ptr<CaRotationCoordinator> coordinator_;  // With replicas (etcd) only.
  std::string coordinator_error_;  // The last Tick's error, logged once (guarded by mu_).
  std::unique_ptr<CertificateIssuance> issuance_;
  mutable CertificateHolders holders_;  // Forgets the expired as it is read.
  std::unique_ptr<IdentityService> identity_;
  std::vector<config::v1::Secret> provided_secrets_;  // For validation (see OpenMeshCa).
  uint64_t bundle_version_ = 0;  // The version that last changed the bundle (guarded by mu_).
  std::thread rotation_thread_;
  std::condition_variable rotation_cv_;
  bool stopping_ = false;  // Guarded by mu_.
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<AdsServer> server_;
  int port_ = 0;
};

}  // namespace phoenix::control_plane
