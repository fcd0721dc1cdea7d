#include "source/control_plane/certificate_holders.h"

#include <algorithm>

#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace phoenix::control_plane {

void CertificateHolders::Add(const std::string& node, time_t not_after,
                             const std::string& root_serial) {
  std::lock_guard<std::mutex> lock(mu_);
  time_t& latest = latest_[node];
  latest = std::max(latest, not_after);
  time_t& under_root = latest_by_root_[root_serial];
  under_root = std::max(under_root, not_after);
}

time_t CertificateHolders::LatestNotUnder(const std::string& root_serial) {
  std::lock_guard<std::mutex> lock(mu_);
  time_t latest = 0;
  for (const auto& [root, not_after] : latest_by_root_) {
    if (root != root_serial) latest = std::max(latest, not_after);
  }
  return latest;
}

void CertificateHolders::AddFromAuditLines(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    if (line.find("\"issued\"") == std::string::npos) continue;
    google::protobuf::Struct record;
    if (!google::protobuf::util::JsonStringToMessage(line, &record).ok()) continue;
    const auto& fields = record.fields();
    auto node = fields.find("node");
    auto issued = fields.find("issued");
    if (node == fields.end() || issued == fields.end()) continue;
    const auto& issued_fields = issued->second.struct_value().fields();
    auto not_after = issued_fields.find("not_after");
    if (not_after == issued_fields.end()) continue;
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, not_after->second.string_value(), &time, &error)) {
      continue;
    }
    auto root = issued_fields.find("root");
    Add(node->second.string_value(), absl::ToTimeT(time),
        root == issued_fields.end() ? "" : root->second.string_value());
  }
}

std::vector<std::string> CertificateHolders::Current(time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (auto it = latest_.begin(); it != latest_.end();) {
    if (it->second <= now) {
      it = latest_.erase(it);  // Expired: forgotten (node ids come and go).
    } else {
      out.push_back(it->first);
      ++it;
    }
  }
  return out;
}

}  // namespace phoenix::control_plane
