#include "source/server/workload_identity.h"

#include "gtest/gtest.h"

namespace phoenix::server {
namespace {

TEST(RenewalScheduleTest, RenewsAtAboutHalfOfWhatIsLeft) {
  RenewalSchedule schedule(42);
  for (int i = 0; i < 200; ++i) {
    auto wait = schedule.AfterIssue(1000, 1000 + 24 * 3600);
    EXPECT_GE(wait.count(), 24 * 3600 * 1000 * 4 / 10);
    EXPECT_LE(wait.count(), 24 * 3600 * 1000 * 6 / 10);
  }
  // Jitter: a fleet started together spreads out.
  std::set<int64_t> seen;
  for (int i = 0; i < 20; ++i) seen.insert(schedule.AfterIssue(0, 60).count());
  EXPECT_GT(seen.size(), 10u);
  // Already expired (a skewed clock): soon, but never a tight loop.
  EXPECT_EQ(schedule.AfterIssue(100, 50).count(), 1000);
}

TEST(RenewalScheduleTest, BacksOffAfterFailuresNeverPastExpiry) {
  RenewalSchedule schedule(7);
  std::vector<int64_t> waits;
  for (int i = 0; i < 9; ++i) waits.push_back(schedule.AfterFailure(0, 0).count());
  EXPECT_GE(waits[0], 800);
  EXPECT_LE(waits[0], 1200);
  EXPECT_GE(waits[3], 6400);  // 8 s +-20%.
  EXPECT_LE(waits[3], 9600);
  EXPECT_LE(waits[8], 72000);  // Capped at 60 s +20%.
  EXPECT_GE(waits[8], 48000);
  // With a certificate that has 10 s left, at most half of that.
  EXPECT_LE(schedule.AfterFailure(100, 110).count(), 5000);
  EXPECT_GE(schedule.AfterFailure(100, 100).count(), 48000);  // Expired: plain back-off.
  schedule.Reset();
  EXPECT_LE(schedule.AfterFailure(0, 0).count(), 1200);
  // A success resets the back-off too.
  schedule.AfterFailure(0, 0);
  schedule.AfterIssue(0, 100);
  EXPECT_LE(schedule.AfterFailure(0, 0).count(), 1200);
}

}  // namespace
}  // namespace phoenix::server
