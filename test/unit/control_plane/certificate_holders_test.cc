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
                           now + absl::Hours(24), "0A"),
      AuditLog::IssuedLine(now, "node-b", "node-b", "spiffe://d/ns/a/sa/b", "02",
                           now - absl::Seconds(1), "0A"),  // Expired.
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

TEST(CertificateHoldersTest, SaysWhenTheLastCertificateOutsideARootExpires) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  time_t t = absl::ToTimeT(now);
  CertificateHolders holders;
  EXPECT_EQ(holders.LatestNotUnder("0B"), 0);
  holders.AddFromAuditLines({
      AuditLog::IssuedLine(now, "node-a", "node-a", "spiffe://d/ns/a/sa/a", "01",
                           now + absl::Hours(1), "0A"),
      AuditLog::IssuedLine(now, "node-a", "node-a", "spiffe://d/ns/a/sa/a", "02",
                           now + absl::Hours(5), "0B"),
  });
  EXPECT_EQ(holders.LatestNotUnder("0B"), t + 3600);
  EXPECT_EQ(holders.LatestNotUnder("0A"), t + 5 * 3600);
  // A record from before roots were recorded counts as under any other root.
  holders.Add("node-c", t + 7200);
  EXPECT_EQ(holders.LatestNotUnder("0B"), t + 7200);
}

}  // namespace
}  // namespace phoenix::control_plane
