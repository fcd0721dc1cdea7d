#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/control_plane/ads_server.h"
#include "source/control_plane/change_plan.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// What the admin service asks of the control plane, so the gRPC layer (AdminService) and the
// state it serves (ControlPlane) stay apart and each can be tested alone.
class AdminBackend {
 public:
  struct Applied {
    uint64_t version = 0;                 // In force after the apply.
    std::vector<ResourceDiffText> diffs;  // Empty: nothing changed, nothing written.
  };

  virtual ~AdminBackend() = default;

  // What writing `files` would change (INVALID_ARGUMENT: the errors, one per line).
  virtual absl::StatusOr<std::vector<ResourceDiffText>> Plan(
      const std::vector<IncomingFile>& files) = 0;
  // Validates and writes `files`, publishes and audits the result as done by `who`. An invalid
  // change writes nothing (and is audited as refused).
  virtual absl::StatusOr<Applied> Apply(const std::vector<IncomingFile>& files,
                                        const std::string& who) = 0;
  // Removes resource files (paths as Apply names them), validated like an Apply and also
  // refused (INVALID_ARGUMENT) when what is left would name a resource no longer there;
  // NOT_FOUND for a path that is not a file in force.
  virtual absl::StatusOr<Applied> Delete(const std::vector<std::string>& paths,
                                         const std::string& who) = 0;
  // Makes the directory what it was at `version` again (a new version, audited as `who`).
  // NOT_FOUND when that version is not kept.
  virtual absl::StatusOr<Applied> Rollback(uint64_t version, const std::string& who) = 0;
  // Puts `certificate_chain` and `private_key` (PEM) inline into Secret `name` (of `node`, or
  // the one definition there is) in its file, then commits that file as an Apply does.
  virtual absl::StatusOr<Applied> RotateCertificate(const std::string& name,
                                                    const std::string& node,
                                                    const std::string& certificate_chain,
                                                    const std::string& private_key,
                                                    const std::string& who) = 0;
  // The mesh CA and its rotation (FAILED_PRECONDITION without one).
  struct CaState {
    std::string trust_domain;
    std::string phase;  // "none", "adding_root", "issuing_from_new"
    std::vector<std::string> bundle_root_serials;
    std::string issuing_root_serial;
    uint64_t bundle_version = 0;
    std::vector<std::string> proxies_acked;
    std::vector<std::string> proxies_waiting;
    time_t old_certificates_expire = 0;
    std::vector<std::string> replicas;  // HA: each live replica's part in the rotation.
  };
  virtual absl::StatusOr<CaState> CaStatus() = 0;
  // Starts a root rotation, audited as `who`.
  virtual absl::StatusOr<CaState> StartCaRotation(const std::string& who) = 0;
  // Abandons a rotation still adding its root, audited as `who`.
  virtual absl::StatusOr<CaState> AbortCaRotation(const std::string& who) = 0;
  // The snapshot in force.
  virtual std::shared_ptr<const ResourceSnapshot> Snapshot() const = 0;
  virtual std::vector<ProxyStatus> Proxies() const = 0;
  // The audit log's lines, oldest first.
  virtual absl::StatusOr<std::vector<std::string>> AuditLines() const = 0;
  // The resource directory (to show files relative to it); "" when the files are not in a
  // directory (etcd).
  virtual const std::string& resources_dir() const = 0;
};

}  // namespace phoenix::control_plane
