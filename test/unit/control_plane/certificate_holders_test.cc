#include "source/control_plane/certificate_holders.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "source/control_plane/audit_log.h"

namespace phoenix::control_plane {
namespace {

TEST(CertificateHoldersTest, TheAuditTrailsIssuancesSayWhoHoldsOneStill) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  CertificateHolders holders;
  holders.AddFromAuditLines({
      AuditLog::IssuedLine(now, "node-a", "node-a", "spiffe://d/ns/a/sa/a", "01",
                           now + absl::Hours(24)),
      AuditLog::IssuedLine(now, "node-b", "node-b", "spiffe://d/ns/a/sa/b", "02",
                           now - absl::Seconds(1)),  // Expired.
      AuditLog::IssueRefusedLine(now, "node-c", "node-c", "spiffe://d/ns/a/sa/c", "no"),
      AuditLog::RefusedLine(now, "ops", "a bad change"),
      "not json",
  });
  time_t t = absl::ToTimeT(now);
  EXPECT_EQ(holders.Current(t), std::vector<std::string>{"node-a"});
  // A later certificate keeps a node listed; an earlier one does not shorten it.
  holders.Add("node-b", t + 60);
  holders.Add("node-a", t + 10);
  EXPECT_EQ(holders.Current(t), (std::vector<std::string>{"node-a", "node-b"}));
  EXPECT_EQ(holders.Current(t + 61), std::vector<std::string>{"node-a"});
  EXPECT_TRUE(holders.Current(t + 24 * 3600).empty());
}

}  // namespace
}  // namespace phoenix::control_plane
