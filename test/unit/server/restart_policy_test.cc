#include "source/server/restart_policy.h"

#include "gtest/gtest.h"
#include "test/common/simulated_time_source.h"

namespace phoenix::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

config::RestartConfig Config() {
  config::RestartConfig config;
  config.initial = milliseconds(100);
  config.max = milliseconds(1000);
  config.crash_loop_crashes = 4;
  config.crash_loop_interval = seconds(10);
  return config;
}

TEST(RestartPolicyTest, BacksOffExponentiallyUpToTheMaximum) {
  SimulatedTimeSource time;
  config::RestartConfig config = Config();
  config.crash_loop_crashes = 100;
  RestartPolicy policy(config);
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    delays.push_back(policy.OnCrash(time.MonotonicNow()).delay.count());
    time.Advance(milliseconds(10));
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
}

TEST(RestartPolicyTest, CrashesOutsideTheIntervalAreForgotten) {
  SimulatedTimeSource time;
  RestartPolicy policy(Config());
  EXPECT_EQ(policy.OnCrash(time.MonotonicNow()).delay, milliseconds(100));
  EXPECT_EQ(policy.OnCrash(time.MonotonicNow()).delay, milliseconds(200));
  time.Advance(seconds(10));
  EXPECT_EQ(policy.RecentCrashes(time.MonotonicNow()), 0u);
  EXPECT_EQ(policy.OnCrash(time.MonotonicNow()).delay, milliseconds(100));
}

TEST(RestartPolicyTest, DetectsACrashLoopOnceAndLeavesItWhenQuiet) {
  SimulatedTimeSource time;
  RestartPolicy policy(Config());
  for (int i = 0; i < 3; ++i) {
    RestartPolicy::Decision d = policy.OnCrash(time.MonotonicNow());
    EXPECT_FALSE(d.crash_loop);
    time.Advance(seconds(1));
  }
  RestartPolicy::Decision fourth = policy.OnCrash(time.MonotonicNow());
  EXPECT_TRUE(fourth.crash_loop);
  EXPECT_TRUE(fourth.crash_loop_began);
  EXPECT_EQ(fourth.delay, milliseconds(1000));
  RestartPolicy::Decision fifth = policy.OnCrash(time.MonotonicNow());
  EXPECT_TRUE(fifth.crash_loop);
  EXPECT_FALSE(fifth.crash_loop_began) << "a crash loop is reported once";
  time.Advance(seconds(11));
  RestartPolicy::Decision later = policy.OnCrash(time.MonotonicNow());
  EXPECT_FALSE(later.crash_loop);
  EXPECT_EQ(later.delay, milliseconds(100));
}

}  // namespace
}  // namespace phoenix::server
