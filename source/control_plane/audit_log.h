#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// The append-only record of what the control plane accepted and refused, kept in a local file
// (the directory store's audit trail): one JSON line per change, so who changed what, and
// when, can be answered later.
class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}

  // {"time", "who", "version", "changes": [{"type", "name", "action", "node"}], "diff"}; "diff"
  // (the unified diff of the change) only when given: the admin service's Apply has it.
  // Without the newline.
  static std::string AcceptedLine(absl::Time time, const std::string& who, uint64_t version,
                                  const std::vector<ResourceChange>& changes,
                                  const std::string& diff = "");
  // {"time", "who", "refused": error}
  static std::string RefusedLine(absl::Time time, const std::string& who, const std::string& error);

  // A workload certificate phoenix-cp issued: {"time", "who", "node", "issued": {"identity",
  // "serial", "not_after", "root"}} (root: the serial of the root it chains to).
  static std::string IssuedLine(absl::Time time, const std::string& who, const std::string& node,
                                const std::string& identity, const std::string& serial,
                                absl::Time not_after, const std::string& root_serial);
  // A certificate request refused: {"time", "who", "node", "identity", "refused": why}.
  static std::string IssueRefusedLine(absl::Time time, const std::string& who,
                                      const std::string& node, const std::string& identity,
                                      const std::string& error);

  // Appends one line (one write: lines of concurrent writers never mix).
  absl::Status Append(const std::string& line);

  // Every line recorded so far, oldest first (none when the file does not exist yet).
  absl::StatusOr<std::vector<std::string>> ReadLines() const;

 private:
  std::string path_;
};

}  // namespace phoenix::control_plane
