#include "source/server/autoscaler.h"

#include "gtest/gtest.h"
#include "test/common/simulated_time_source.h"

namespace phoenix::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Action = Autoscaler::Action;

config::AutoscalingConfig Config() {
  config::AutoscalingConfig config;
  config.target_rps_per_instance = 10;
  config.max_in_flight_per_instance = 0;
  config.scale_up_window = seconds(3);
  config.scale_down_window = seconds(6);
  return config;
}

// An autoscaler that took its first sample (which has no rate yet) at time 0.
struct Scaling {
  explicit Scaling(const config::AutoscalingConfig& config = Config()) : scaler(config) {
    scaler.Sample(time.MonotonicNow(), 0, 0, 1, 1, 1, 4);
  }
  // One sample a second at `rps` requests per second, for up to `max_seconds`: the first
  // action and the sample (1, 2, ...) it came at, or kNone.
  std::pair<Action, int> Until(double rps, uint32_t ready, uint32_t running, int max_seconds,
                               int64_t in_flight = 0, uint32_t min = 1, uint32_t max = 4) {
    for (int s = 1; s <= max_seconds; ++s) {
      time.Advance(seconds(1));
      total += static_cast<uint64_t>(rps);
      Autoscaler::Decision d =
          scaler.Sample(time.MonotonicNow(), total, in_flight, ready, running, min, max);
      if (d.action != Action::kNone) return {d.action, s};
    }
    return {Action::kNone, max_seconds};
  }
  SimulatedTimeSource time;
  Autoscaler scaler;
  uint64_t total = 0;
};

TEST(AutoscalerTest, ScalesUpAfterTheWindowAboveTarget) {
  Scaling run;
  // Above the target from the first rate (t=1) on; a 3 s window -> t=4.
  auto [action, second] = run.Until(25, 2, 2, 20);
  EXPECT_EQ(action, Action::kScaleUp);
  EXPECT_EQ(second, 4);
}

TEST(AutoscalerTest, AtTheTargetOrBelowItDoesNotScaleUp) {
  Scaling run;
  EXPECT_EQ(run.Until(20, 2, 2, 20).first, Action::kNone) << "10 per instance is the target";
}

TEST(AutoscalerTest, ABriefPeakDoesNotScaleUp) {
  Scaling run;
  EXPECT_EQ(run.Until(50, 1, 1, 3).first, Action::kNone);
  EXPECT_EQ(run.Until(5, 1, 1, 1).first, Action::kNone);  // The peak ends: the window restarts.
  auto [action, second] = run.Until(50, 1, 1, 10);
  EXPECT_EQ(action, Action::kScaleUp);
  EXPECT_EQ(second, 4);
}

TEST(AutoscalerTest, NeverAboveMax) {
  Scaling run;
  EXPECT_EQ(run.Until(1000, 4, 4, 30).first, Action::kNone);
}

TEST(AutoscalerTest, InFlightOverTheLimitScalesUp) {
  config::AutoscalingConfig config = Config();
  config.max_in_flight_per_instance = 5;
  Scaling run(config);
  auto [action, second] = run.Until(1, 2, 2, 20, /*in_flight=*/11);
  EXPECT_EQ(action, Action::kScaleUp);
  EXPECT_EQ(second, 4);
}

TEST(AutoscalerTest, ScalesDownWhenOneFewerIsEnoughForTheLongerWindow) {
  Scaling run;
  // 3 instances at 15 rps: 2 would have 7.5 each.
  auto [action, second] = run.Until(15, 3, 3, 30);
  EXPECT_EQ(action, Action::kScaleDown);
  EXPECT_EQ(second, 7);
}

TEST(AutoscalerTest, DoesNotScaleDownWhenOneFewerWouldBeOverTheTarget) {
  Scaling run;
  EXPECT_EQ(run.Until(25, 3, 3, 30).first, Action::kNone) << "2 would get 12.5 each";
}

TEST(AutoscalerTest, NeverBelowMin) {
  Scaling run;
  EXPECT_EQ(run.Until(0, 2, 2, 30, 0, /*min=*/2).first, Action::kNone);
}

TEST(AutoscalerTest, ADecisionStartsTheWindowsAfresh) {
  Scaling run;
  EXPECT_EQ(run.Until(30, 1, 1, 20).first, Action::kScaleUp);
  // Still above with 2 (starting) instances: the next scale-up needs a whole window again.
  auto [action, second] = run.Until(30, 1, 2, 20);
  EXPECT_EQ(action, Action::kScaleUp);
  EXPECT_EQ(second, 4);
}

}  // namespace
}  // namespace phoenix::server
