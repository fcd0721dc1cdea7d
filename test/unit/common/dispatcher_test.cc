#include "source/common/dispatcher.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "test/common/simulated_time_source.h"

namespace phoenix {
namespace {

// Records its number when deleted.
struct Noted {
  Noted(std::vector<int>& log, int n) : log(log), n(n) {}
  ~Noted() { log.push_back(n); }
  std::vector<int>& log;
  int n;
};

TEST(DispatcherTest, DeferredWorkRunsInOrderWhicheverFormDeferredIt) {
  SimulatedTimeSource time;
  Dispatcher dispatcher(time);
  std::vector<int> log;
  dispatcher.Defer([&] { log.push_back(1); });
  dispatcher.DeferCall([](void* log) { static_cast<std::vector<int>*>(log)->push_back(2); }, &log);
  dispatcher.DeferredDelete(std::make_unique<Noted>(log, 3));
  dispatcher.Defer([&] {
    log.push_back(4);
    // Deferred while deferred work runs: after everything deferred before it.
    dispatcher.DeferCall([](void* log) { static_cast<std::vector<int>*>(log)->push_back(6); },
                         &log);
  });
  dispatcher.Defer([&] { log.push_back(5); });
  EXPECT_TRUE(log.empty());
  dispatcher.Exit();  // Runs what is deferred before closing the loop.
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3, 4, 5, 6}));
}

TEST(DispatcherTest, WorkDeferredAfterExitIsFreedNotRun) {
  auto captured = std::make_shared<int>(0);
  {
    SimulatedTimeSource time;
    Dispatcher dispatcher(time);
    dispatcher.Exit();
    dispatcher.Defer([captured] { ++*captured; });
    EXPECT_EQ(captured.use_count(), 2);
  }
  EXPECT_EQ(*captured, 0);
  EXPECT_EQ(captured.use_count(), 1);
}

}  // namespace
}  // namespace phoenix
