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
  void Add(const std::string& node, time_t not_after);
  // Adds the holder of each audit line that records an issuance ({"node", "issued":
  // {"not_after"}}); other lines are skipped.
  void AddFromAuditLines(const std::vector<std::string>& lines);
  // The nodes whose latest certificate is still valid at `now` (the others are forgotten).
  std::vector<std::string> Current(time_t now);

 private:
  std::mutex mu_;
  std::map<std::string, time_t> latest_;
};

}  // namespace phoenix::control_plane
