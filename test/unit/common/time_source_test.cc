#include "source/common/time_source.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/dispatcher.h"
#include "test/common/simulated_time_source.h"

namespace phoenix {
namespace {

using std::chrono::milliseconds;

TEST(SimulatedTimeSourceTest, MovesOnlyWhenAdvanced) {
  SimulatedTimeSource time;
  MonotonicTime start = time.MonotonicNow();
  EXPECT_EQ(time.MonotonicNow(), start);
  EXPECT_EQ(time.SystemNow(), std::chrono::sys_days(std::chrono::year(2024) / 1 / 1));
  time.Advance(milliseconds(1500));
  EXPECT_EQ(time.MonotonicNow() - start, milliseconds(1500));
  EXPECT_EQ(time.MonotonicMs(), 1500u);
  EXPECT_EQ(time.MonotonicUs(), 1500000u);
  EXPECT_EQ(time.SystemUs(), 1704067200LL * 1000000 + 1500000);
}

// A Dispatcher on the simulated clock, and a log of which timer fired when.
class SimulatedDispatcherTest : public testing::Test {
 protected:
  ~SimulatedDispatcherTest() override { dispatcher_.Exit(); }

  std::unique_ptr<Timer> LoggingTimer(std::string name) {
    return dispatcher_.CreateTimer([this, name] { Log(name); });
  }
  void Log(const std::string& name) {
    fired_.push_back(name + "@" + std::to_string(time_.MonotonicMs()));
  }

  SimulatedTimeSource time_;
  Dispatcher dispatcher_{time_};
  std::vector<std::string> fired_;
};

TEST_F(SimulatedDispatcherTest, TimersFireInDeadlineOrderAtTheirDeadline) {
  auto a = LoggingTimer("a");
  auto b = LoggingTimer("b");
  auto c = LoggingTimer("c");
  auto d = LoggingTimer("d");
  a->Enable(milliseconds(30));
  b->Enable(milliseconds(10));
  c->Enable(milliseconds(20));
  d->Enable(milliseconds(10));  // Same deadline as b, enabled later: fires after it.
  time_.Advance(milliseconds(29));
  EXPECT_EQ(fired_, (std::vector<std::string>{"b@10", "d@10", "c@20"}));
  EXPECT_TRUE(a->enabled());
  EXPECT_FALSE(b->enabled());
  time_.Advance(milliseconds(1));
  EXPECT_EQ(fired_.back(), "a@30");
  EXPECT_FALSE(a->enabled());
  EXPECT_EQ(time_.MonotonicMs(), 30u);
}

TEST_F(SimulatedDispatcherTest, ZeroTimeoutFiresWithoutTimePassing) {
  auto a = LoggingTimer("a");
  a->Enable(milliseconds(0));
  EXPECT_TRUE(fired_.empty());  // Never from inside Enable().
  time_.Advance(milliseconds(0));
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@0"}));
}

TEST_F(SimulatedDispatcherTest, DisabledAndDestroyedTimersDoNotFire) {
  auto a = LoggingTimer("a");
  auto b = LoggingTimer("b");
  a->Enable(milliseconds(10));
  b->Enable(milliseconds(10));
  a->Disable();
  EXPECT_FALSE(a->enabled());
  b.reset();
  time_.Advance(milliseconds(100));
  EXPECT_TRUE(fired_.empty());
}

TEST_F(SimulatedDispatcherTest, EnablingAgainMovesTheDeadline) {
  auto a = LoggingTimer("a");
  a->Enable(milliseconds(10));
  time_.Advance(milliseconds(5));
  a->Enable(milliseconds(10));  // Now due at 15, not 10.
  time_.Advance(milliseconds(9));
  EXPECT_TRUE(fired_.empty());
  time_.Advance(milliseconds(1));
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@15"}));
  time_.Advance(milliseconds(100));
  EXPECT_EQ(fired_.size(), 1u);  // One-shot.
}

TEST_F(SimulatedDispatcherTest, TimerThatReArmsItselfFiresOncePerPeriod) {
  std::unique_ptr<Timer> tick;
  tick = dispatcher_.CreateTimer([&] {
    Log("tick");
    tick->Enable(milliseconds(10));
  });
  tick->Enable(milliseconds(10));
  time_.Advance(milliseconds(35));
  EXPECT_EQ(fired_, (std::vector<std::string>{"tick@10", "tick@20", "tick@30"}));
  EXPECT_TRUE(tick->enabled());
}

TEST_F(SimulatedDispatcherTest, CallbacksSeeTheClockAtTheirDeadlineAndCanCancelOthers) {
  auto later = LoggingTimer("later");
  std::unique_ptr<Timer> first = dispatcher_.CreateTimer([&] {
    Log("first");
    EXPECT_EQ(dispatcher_.ApproximateMonotonicTime(), time_.MonotonicNow());
    later.reset();  // Due in the same Advance(): must not fire after all.
  });
  first->Enable(milliseconds(10));
  later->Enable(milliseconds(20));
  time_.Advance(milliseconds(50));
  EXPECT_EQ(fired_, (std::vector<std::string>{"first@10"}));
}

TEST(RealTimeSourceTest, ReadsTheSystemClocks) {
  RealTimeSource time;
  auto near = [](auto a, auto b) { return std::chrono::abs(a - b) < std::chrono::seconds(1); };
  EXPECT_TRUE(near(time.MonotonicNow(), std::chrono::steady_clock::now()));
  EXPECT_TRUE(near(time.SystemNow(), std::chrono::system_clock::now()));
  MonotonicTime before = time.MonotonicNow();
  EXPECT_GE(time.MonotonicNow(), before);
}

TEST(RealTimeSourceTest, DispatcherTimersRunOnTheLoopOnTheSameClock) {
  RealTimeSource time;
  Dispatcher dispatcher(time);
  // TimeoutQueue computes deadlines on the loop's clock and waits on libuv timers: they must
  // agree with the time source.
  EXPECT_LT(std::chrono::abs(dispatcher.ApproximateMonotonicTime() - time.MonotonicNow()),
            std::chrono::seconds(1));
  MonotonicTime start = time.MonotonicNow();
  bool fired = false;
  std::unique_ptr<Timer> timer = dispatcher.CreateTimer([&] { fired = true; });
  timer->Enable(milliseconds(5));
  EXPECT_TRUE(timer->enabled());
  while (!fired) uv_run(dispatcher.loop(), UV_RUN_ONCE);
  EXPECT_FALSE(timer->enabled());
  // libuv counts a timer from the loop's clock, cached in whole milliseconds at the top of
  // the iteration: it may fire up to 1 ms earlier than `start` + 5 ms.
  EXPECT_GE(time.MonotonicNow() - start, milliseconds(4));
  // Timers go before Exit(): one closed by Exit() and destroyed after the loop has stopped
  // would never get its handle back.
  timer.reset();
  dispatcher.Exit();
}

}  // namespace
}  // namespace phoenix
