#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/control_plane/mesh_ca.h"
#include "source/control_plane/shared_records.h"

namespace phoenix::control_plane {

// A root rotation as the phoenix-cp replicas share it (the record "ca/rotation"). Kept once it
// is done (phase "none"), so a replica that was away catches up with it.
struct SharedRotation {
  std::string phase;  // MeshCa::PhaseName: "adding_root", "issuing_from_new", "none" (done).
  std::string old_root_serial;
  std::string new_root_serial;
  std::string new_root_pem;
  std::string driver;           // The replica that moves the phases on and publishes the bundle.
  uint64_t bundle_version = 0;  // The resource version whose bundle holds both roots (0: not yet).
  time_t old_certificates_expire = 0;  // issuing_from_new: the old root's last certificate.

  std::string Encode() const;
  static std::optional<SharedRotation> Decode(const std::string& text);
};

// One connected proxy and the Secret version it ACKed.
struct ConnectedProxy {
  std::string node;
  uint64_t acked_version = 0;
};

// Drives a root rotation across phoenix-cp replicas that share an etcd store. Each has its
// own intermediate under the shared root, so every one must move together: each replica
// reports (record "ca/replicas/<name>") its phase, the proxies connected to it and whether they
// ACKed the bundle with both roots, what it issued under the old root, and the CSR of an
// intermediate it waits for; whoever holds that root's key (the replica that made the new
// root) signs it ("ca/intermediates/<name>"). The driver moves the shared phase on once every
// live replica is ready and every proxy and certificate holder runs the new bundle
// (adding_root -> issuing_from_new), then once every certificate under the old root has
// expired (-> none); a live replica takes over from a driver gone silent. Each replica follows
// the shared phase in its own MeshCa. A replica that has not read the shared state for `fence`
// stops issuing (MeshCa's fence), so one cut off never issues under a root the others have
// left. Liveness is judged on this replica's clock: a report that has not changed for
// `replica_timeout` is a replica gone. Thread-safe; its calls do etcd I/O, so callers do not
// hold their own locks across them.
class CaRotationCoordinator {
 public:
  struct Options {
    std::string replica;  // Unique among the replicas.
    std::chrono::seconds replica_timeout{30};
    std::chrono::seconds fence{10};
    // An unchanged report is written again this often (a heartbeat), not on every Tick.
    std::chrono::seconds heartbeat{5};
  };
  // Every audit line (for who holds a certificate under which root).
  using AuditReader = std::function<absl::StatusOr<std::vector<std::string>>()>;

  CaRotationCoordinator(MeshCa& ca, SharedRecords& records, AuditReader audit, Options options);

  // Starts a rotation driven by this replica: a new root in this replica's CA, shared.
  // FAILED_PRECONDITION when one is in progress (here or shared) or a live replica's
  // intermediate is the operator's.
  absl::Status Start(time_t now);
  // Abandons the shared rotation while it is still adding its root (no certificate exists under
  // the new root): it becomes a done rotation back to the old root, which every replica follows
  // by dropping the new one. Any replica may, e.g. when the new root's maker is lost. Returns
  // the serial of the root dropped.
  absl::StatusOr<std::string> Abort(time_t now);
  // The driver published the bundle with both roots as `version`.
  absl::Status BundlePublished(uint64_t version);
  // Reads the shared records and brings this replica's CA in line with them (at startup,
  // before it serves: a rotation made while it was away).
  absl::Status CatchUp(time_t now);
  // One round: reads the shared records, brings this replica's CA in line with them, signs the
  // intermediates it can, (the driver) moves the phase on, and reports this replica with its
  // `proxies`. An error (etcd unreachable) leaves the fence to run out.
  absl::Status Tick(const std::vector<ConnectedProxy>& proxies, time_t now);
  // This replica stops: it no longer counts among the live ones.
  void Leave();

  // What the last call saw.
  struct View {
    std::optional<SharedRotation> rotation;
    bool driving = false;  // This replica drives a rotation in progress.
    // This replica drives (or drove) the rotation and its CA is where the shared one says:
    // it publishes the trust bundle.
    bool publishes_bundle = false;
    std::vector<std::string> acked;     // In progress: proxies that run the new bundle.
    std::vector<std::string> waiting;   // In progress: proxies and holders that do not yet.
    std::vector<std::string> replicas;  // "name (driver): phase, ..., seen 0 s ago".
  };
  View view() const;

 private:
  struct Report;
  // What this replica learns about one rotation phase; forgotten when the phase or the
  // rotation changes, so nothing from an earlier one decides a later one.
  struct PhaseProgress {
    std::string key;          // new root serial + phase.
    uint64_t audit_tick = 0;  // The tick of the last audit read in this phase (0: none yet).
    std::vector<std::string> holders;  // Nodes holding a valid certificate, per that read.
    time_t latest_old = 0;             // When the last certificate not under the new root expires.
    uint64_t switched_tick = 0;        // Since when every live replica issues under the new root.
  };
  // When this replica last saw another's report change (on its own clock).
  struct Observed {
    std::string report;
    time_t changed_at = 0;
  };

  // The shared records ("ca/..."); the rotation among them is taken into view_.rotation.
  absl::StatusOr<std::map<std::string, std::string>> Read();
  absl::Status Follow(const std::map<std::string, std::string>& records);
  void SignIntermediates(const std::map<std::string, std::string>& records);
  // The live replicas' reports (this one's own included), by what this replica observed.
  std::vector<Report> LiveReports(const std::map<std::string, std::string>& records,
                                  const Report& mine, time_t now);
  // The driver's: reads the audit trail every few ticks of a phase (progress_).
  void ReadAuditIfDue(time_t now);
  absl::Status TakeOverIfDriverGone(const std::vector<Report>& live, time_t now);
  // `all_run_bundle`: no proxy or holder is known to be without the bundle with both roots.
  absl::Status Drive(const std::vector<Report>& live, bool all_run_bundle, time_t now);
  absl::Status PutRotation(const SharedRotation& next);

  MeshCa& ca_;
  SharedRecords& records_;
  const AuditReader audit_;
  const Options options_;
  const std::string instance_;  // Random: tells two replicas given one name apart.

  std::mutex mu_;       // Serializes the calls; guards everything below but view_.
  time_t started_ = 0;  // The first call's time (liveness needs a timeout's worth of watching).
  std::string last_report_;  // What this replica last wrote ("": nothing yet).
  time_t last_report_at_ = 0;
  uint64_t report_sequence_ = 0;              // Bumped by each write, so a heartbeat is a change.
  std::optional<std::string> rotation_text_;  // "ca/rotation" as last read (for PutIf).
  std::optional<SharedRotation> rotation_;
  uint64_t tick_ = 0;
  PhaseProgress progress_;
  std::map<std::string, Observed> observed_;
  std::vector<std::string> not_connected_;  // The driver's, for its next report.

  mutable std::mutex view_mu_;
  View view_;  // Guarded by view_mu_.
};

}  // namespace phoenix::control_plane
