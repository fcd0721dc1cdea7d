#pragma once

#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace phoenix::control_plane {

// Which nodes hold a workload certificate that has not expired yet, and until when: what a
// root rotation waits for before it issues under the new root (a node that holds one but is
// not connected has not seen the new bundle). Fed by each issuance, and at startup by the
// audit trail's "issued" records, so a restart forgets no one. Thread-safe.
class CertificateHolders {
 public:
  // `root_serial`: the root the certificate chains to ("" when not known).
  void Add(const std::string& node, time_t not_after, const std::string& root_serial = "");
  // Adds the holder of each audit line that records an issuance ({"node", "issued":
  // {"not_after", "root"}}); other lines are skipped.
  void AddFromAuditLines(const std::vector<std::string>& lines);
  // The nodes whose latest certificate is still valid at `now` (the others are forgotten).
  std::vector<std::string> Current(time_t now);
  // When the last certificate added that is not under `root_serial` (or whose root is not
  // known) expires; 0 when none. What a rotation waits for before the old root leaves.
  time_t LatestNotUnder(const std::string& root_serial);

 private:
  std::mutex mu_;
  std::map<std::string, time_t> latest_;
  std::map<std::string, time_t> latest_by_root_;  // Root serial ("": not known) -> not-after.
};

}  // namespace phoenix::control_plane
