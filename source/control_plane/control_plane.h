#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "source/control_plane/admin_backend.h"
#include "source/control_plane/admin_service.h"
#include "source/control_plane/ads_server.h"
#include "source/control_plane/audit_log.h"
#include "source/control_plane/directory_watcher.h"
#include "source/control_plane/server_credentials.h"
#include "source/control_plane/snapshot_store.h"

namespace phoenix::control_plane {

struct ControlPlaneOptions {
  std::string resources_dir;
  std::string listen_address = "127.0.0.1:18000";
  std::string audit_log_path;
  // Bearer tokens (TokenTable's format) and certificate principals' roles (PrincipalTable's);
  // both empty: no authentication (the local default).
  std::string tokens_path;
  std::string principals_path;
  ServerTlsFiles tls;  // Empty: plaintext.
  std::chrono::milliseconds poll_interval{100};
};

// phoenix-cp as a whole: the resource directory is the source of truth; each valid change
// becomes a new snapshot, is audited and pushed over ADS; an invalid one is audited, logged
// and refused while the last good one stays in force. The admin service (phoenixctl) changes
// the directory through it, so its changes take the same path and are audited with their
// principal.
class ControlPlane : public AdminBackend {
 public:
  explicit ControlPlane(ControlPlaneOptions options);
  ~ControlPlane() override;

  // Loads the directory (an invalid one is the error), listens and starts watching.
  absl::Status Start();
  void Stop();
  int port() const { return port_; }
  uint64_t version() const;

  // Reads the directory again and publishes it if it is valid and changed.
  void Reload();
  // Whether requests are authenticated (--tokens).
  bool authenticating() const { return auth_ && auth_->enabled(); }

  // AdminBackend.
  absl::StatusOr<std::vector<ResourceDiffText>> Plan(
      const std::vector<IncomingFile>& files) override;
  absl::StatusOr<Applied> Apply(const std::vector<IncomingFile>& files,
                                const std::string& who) override;
  absl::StatusOr<Applied> Rollback(uint64_t version, const std::string& who) override;
  absl::StatusOr<Applied> RotateCertificate(const std::string& name, const std::string& node,
                                            const std::string& certificate_chain,
                                            const std::string& private_key,
                                            const std::string& who) override;
  std::shared_ptr<const ResourceSnapshot> Snapshot() const override;
  std::vector<ProxyStatus> Proxies() const override;
  absl::StatusOr<std::vector<std::string>> AuditLines() const override;
  const std::string& resources_dir() const override { return options_.resources_dir; }

 private:
  // How many versions rollback can return to (their files, in memory).
  static constexpr size_t kHistoryVersions = 50;

  // Validates, writes, publishes and audits `files` (Apply, Rollback); `note` heads the
  // audited diff.
  absl::StatusOr<Applied> CommitLocked(const std::vector<IncomingFile>& files,
                                       const std::string& who, bool replace_all,
                                       const std::string& note);
  // Keeps the files of the version just accepted, for rollback.
  void RememberLocked();

  const ControlPlaneOptions options_;
  AuditLog audit_;
  mutable std::mutex mu_;  // Reload runs on the watcher thread.
  SnapshotStore store_;
  std::map<uint64_t, std::vector<IncomingFile>> history_;  // Version -> its files.
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<AdsServer> server_;
  std::unique_ptr<DirectoryWatcher> watcher_;
  int port_ = 0;
};

}  // namespace phoenix::control_plane
