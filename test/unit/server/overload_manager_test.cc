#include "source/server/overload_manager.h"

#include <unistd.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/server/resource_monitor.h"
#include "test/common/simulated_time_source.h"

namespace phoenix::server {
namespace {

using testing::ElementsAre;

// Reads what the test queued, one value per Read(); nullopt once they run out.
class ScriptedMonitor : public ResourceMonitor {
 public:
  explicit ScriptedMonitor(std::deque<std::optional<double>>* values) : values_(values) {}
  std::optional<double> Read() override {
    if (values_->empty()) return std::nullopt;
    auto value = values_->front();
    values_->pop_front();
    return value;
  }

 private:
  std::deque<std::optional<double>>* values_;
};

class RecordingNotifier : public OverloadNotifier {
 public:
  void Notify(const OverloadEvent& event) override {
    events.push_back(std::string(OverloadEventName(event.kind)) + ":" + event.resource);
  }
  std::vector<std::string> events;
};

class OverloadManagerTest : public testing::Test {
 protected:
  void Watch(const std::string& name, config::OverloadThresholds thresholds) {
    manager_.Watch(
        name, [this] { return std::make_unique<ScriptedMonitor>(&values_); }, thresholds);
  }
  // One Evaluate() that reads `value`.
  void Read(std::optional<double> value) {
    values_.push_back(value);
    manager_.Evaluate();
  }
  int64_t Gauge(const std::string& name) { return stats_.Gauges()[name]; }
  uint64_t Counter(const std::string& name) { return stats_.Counters()[name]; }

  StatsStore stats_;
  RecordingNotifier notifier_;
  OverloadManager manager_{stats_, &notifier_};
  std::deque<std::optional<double>> values_;
};

TEST_F(OverloadManagerTest, NoticeThenShedThenBack) {
  Watch("cpu", {.notice = 0.8, .shed = 0.95});
  Read(0.5);
  EXPECT_TRUE(notifier_.events.empty());
  Read(0.85);
  EXPECT_THAT(notifier_.events, ElementsAre("notice:cpu"));
  EXPECT_FALSE(manager_.shedding().load());
  Read(0.9);  // Still in notice: nothing new.
  Read(0.97);
  EXPECT_TRUE(manager_.shedding().load());
  EXPECT_EQ(Gauge("overload.shedding"), 1);
  EXPECT_EQ(Gauge("overload.cpu.pressure_percent"), 97);
  Read(0.85);
  EXPECT_FALSE(manager_.shedding().load());
  Read(0.2);
  EXPECT_THAT(notifier_.events,
              ElementsAre("notice:cpu", "shed_start:cpu", "shed_end:cpu", "notice_end:cpu"));
  EXPECT_EQ(Counter("overload.cpu.notice"), 1);
  EXPECT_EQ(Counter("overload.cpu.shed"), 1);
  EXPECT_EQ(Gauge("overload.shedding"), 0);
}

TEST_F(OverloadManagerTest, AJumpStraightToShedRaisesTheNoticeToo) {
  Watch("memory", {.notice = 0.8, .shed = 0.9});
  Read(0.99);
  Read(0.1);
  EXPECT_THAT(notifier_.events, ElementsAre("notice:memory", "shed_start:memory", "shed_end:memory",
                                            "notice_end:memory"));
}

TEST_F(OverloadManagerTest, ShedOnlyAndNoticeOnly) {
  Watch("app_cpu", {.notice = 0.5});
  Read(0.99);
  EXPECT_FALSE(manager_.shedding().load());  // No shed threshold: never sheds.
  Read(0.1);
  Watch("app_cpu", {.shed = 0.6});  // Thresholds replaced, monitor kept.
  Read(0.7);
  EXPECT_TRUE(manager_.shedding().load());
  EXPECT_THAT(notifier_.events, ElementsAre("notice:app_cpu", "notice_end:app_cpu",
                                            "notice:app_cpu", "shed_start:app_cpu"));
}

TEST_F(OverloadManagerTest, AnUnreadableResourceKeepsItsState) {
  Watch("cpu", {.shed = 0.5});
  Read(0.9);
  Read(std::nullopt);
  EXPECT_TRUE(manager_.shedding().load());
}

TEST_F(OverloadManagerTest, AnyResourceShedding) {
  Watch("cpu", {.shed = 0.5});
  Watch("memory", {.shed = 0.5});
  values_ = {0.9, 0.1};  // The map reads cpu, then memory.
  manager_.Evaluate();
  EXPECT_TRUE(manager_.shedding().load());
  values_ = {0.1, 0.9};
  manager_.Evaluate();
  EXPECT_TRUE(manager_.shedding().load());
  values_ = {0.1, 0.1};
  manager_.Evaluate();
  EXPECT_FALSE(manager_.shedding().load());
}

TEST_F(OverloadManagerTest, UnwatchingEndsShedding) {
  Watch("memory", {.shed = 0.5});
  Read(0.9);
  ASSERT_TRUE(manager_.shedding().load());
  manager_.Unwatch("memory");
  EXPECT_FALSE(manager_.shedding().load());
  EXPECT_THAT(notifier_.events, ElementsAre("notice:memory", "shed_start:memory", "shed_end:memory",
                                            "notice_end:memory"));
}

TEST(CpuTimeRateTest, RateOfAllCores) {
  SimulatedTimeSource clock;
  CpuTimeRate rate(clock, 4);
  EXPECT_EQ(rate.Next(10.0), std::nullopt);  // The baseline.
  clock.Advance(std::chrono::seconds(2));
  EXPECT_DOUBLE_EQ(*rate.Next(14.0), 0.5);  // 4 CPU seconds in 2 s of 4 cores.
}

TEST(ResourceMonitorTest, ReadsThisProcess) {
  std::optional<double> cpu = ProcessCpuSeconds(getpid());
  ASSERT_TRUE(cpu.has_value());
  EXPECT_GE(*cpu, 0);
  EXPECT_EQ(ProcessCpuSeconds(-1), std::nullopt);
  ResidentMemoryMonitor memory(uint64_t{1} << 40);
  std::optional<double> rss = memory.Read();
  ASSERT_TRUE(rss.has_value());
  EXPECT_GT(*rss, 0);
  EXPECT_LT(*rss, 1);
}

}  // namespace
}  // namespace phoenix::server
