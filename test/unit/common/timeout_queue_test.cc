#include "source/common/timeout_queue.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/dispatcher.h"
#include "test/common/simulated_time_source.h"

namespace phoenix {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

class TimeoutQueueTest : public testing::Test {
 protected:
  // Logs "name@ms" when it times out; optionally arms itself again.
  class LoggingEntry : public TimeoutQueue::Entry {
   public:
    LoggingEntry(TimeoutQueueTest& test, std::string name) : test_(test), name_(std::move(name)) {}
    void OnTimeout() override {
      test_.fired_.push_back(name_ + "@" + std::to_string(test_.time_.MonotonicMs()));
      if (rearm_ != nullptr) rearm_->Arm(*this);
    }
    TimeoutQueue* rearm_ = nullptr;

   private:
    TimeoutQueueTest& test_;
    std::string name_;
  };

  ~TimeoutQueueTest() override { dispatcher_.Exit(); }

  SimulatedTimeSource time_;
  Dispatcher dispatcher_{time_};
  std::vector<std::string> fired_;
};

TEST_F(TimeoutQueueTest, EntriesExpireInArmOrderAtTheirDeadline) {
  TimeoutQueue& queue = dispatcher_.TimeoutQueueFor(milliseconds(100));
  LoggingEntry a(*this, "a"), b(*this, "b"), c(*this, "c");
  queue.Arm(a);
  time_.Advance(milliseconds(30));
  queue.Arm(b);
  queue.Arm(c);
  EXPECT_TRUE(a.armed());
  time_.Advance(milliseconds(69));
  EXPECT_TRUE(fired_.empty());
  time_.Advance(milliseconds(1));
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@100"}));
  EXPECT_FALSE(a.armed());
  time_.Advance(milliseconds(100));
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@100", "b@130", "c@130"}));
}

TEST_F(TimeoutQueueTest, DisarmedAndDestroyedEntriesDoNotExpire) {
  TimeoutQueue& queue = dispatcher_.TimeoutQueueFor(milliseconds(10));
  LoggingEntry a(*this, "a"), c(*this, "c");
  auto b = std::make_unique<LoggingEntry>(*this, "b");
  queue.Arm(a);
  queue.Arm(*b);
  queue.Arm(c);
  a.Disarm();
  b.reset();
  time_.Advance(milliseconds(10));
  EXPECT_EQ(fired_, (std::vector<std::string>{"c@10"}));
}

TEST_F(TimeoutQueueTest, ArmingAgainRestartsTheTimeout) {
  TimeoutQueue& queue = dispatcher_.TimeoutQueueFor(milliseconds(100));
  LoggingEntry a(*this, "a"), b(*this, "b");
  queue.Arm(a);
  queue.Arm(b);
  time_.Advance(milliseconds(50));
  queue.Arm(a);  // Activity: a now expires at 150, after b.
  time_.Advance(milliseconds(100));
  EXPECT_EQ(fired_, (std::vector<std::string>{"b@100", "a@150"}));
}

TEST_F(TimeoutQueueTest, EntryThatReArmsItselfExpiresOncePerDuration) {
  TimeoutQueue& queue = dispatcher_.TimeoutQueueFor(milliseconds(100));
  LoggingEntry a(*this, "a"), b(*this, "b");
  a.rearm_ = &queue;
  queue.Arm(a);
  time_.Advance(milliseconds(50));
  queue.Arm(b);
  time_.Advance(milliseconds(300));
  EXPECT_EQ(fired_, (std::vector<std::string>{"a@100", "b@150", "a@200", "a@300"}));
  EXPECT_TRUE(a.armed());
}

TEST_F(TimeoutQueueTest, OneQueuePerDuration) {
  TimeoutQueue& ten = dispatcher_.TimeoutQueueFor(milliseconds(10));
  EXPECT_EQ(&dispatcher_.TimeoutQueueFor(milliseconds(10)), &ten);
  TimeoutQueue& twenty = dispatcher_.TimeoutQueueFor(milliseconds(20));
  EXPECT_NE(&twenty, &ten);
  LoggingEntry a(*this, "a"), b(*this, "b");
  twenty.Arm(a);
  ten.Arm(b);
  time_.Advance(milliseconds(20));
  EXPECT_EQ(fired_, (std::vector<std::string>{"b@10", "a@20"}));
}

TEST_F(TimeoutQueueTest, ExpiresExactlyWhenDueBetweenMilliseconds) {
  TimeoutQueue& queue = dispatcher_.TimeoutQueueFor(milliseconds(1));
  LoggingEntry a(*this, "a");
  time_.Advance(microseconds(500));
  queue.Arm(a);  // Due at 1.5 ms.
  time_.Advance(microseconds(999));
  EXPECT_TRUE(a.armed());
  time_.Advance(microseconds(1));
  EXPECT_FALSE(a.armed());
  EXPECT_EQ(fired_.size(), 1u);
}

}  // namespace
}  // namespace phoenix
