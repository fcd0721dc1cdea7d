#include "source/filters/global_ratelimit/redis_counter_store.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::filters {
namespace {

// A loopback port nothing listens on: bound, never listened on, so connects are refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
};

struct Recorder : public CounterCallbacks {
  void OnCounted(const CounterReply& reply) override { replies.push_back(reply); }
  std::vector<CounterReply> replies;
};

// A refused connect ends the calls made meanwhile with an error at once (not at the timeout),
// and the store answers null until a connection is up again.
TEST(RedisCounterStoreTest, ARefusedConnectFailsCallsAtOnce) {
  fakes::TestDispatcher dispatcher;
  ClosedPort closed;
  RedisCounterStore store(dispatcher, {{"127.0.0.1", closed.port()}}, std::chrono::seconds(30));
  Recorder recorder;
  CounterCall* call = store.Increment({"k", "", 2}, recorder);
  if (call != nullptr) {
    ASSERT_TRUE(
        dispatcher.RunUntil([&] { return !recorder.replies.empty(); }, std::chrono::seconds(5)));
    EXPECT_EQ(recorder.replies[0].status, CounterReply::Status::kError);
  }
  dispatcher.RunPending();
  EXPECT_EQ(store.Increment({"k", "", 2}, recorder), nullptr);
  store.Shutdown();
}

// Shut down with a call in flight: the call ends with an error; a cancelled one hears nothing.
TEST(RedisCounterStoreTest, ShutdownEndsCallsInFlight) {
  fakes::TestDispatcher dispatcher;
  ClosedPort closed;
  RedisCounterStore store(dispatcher, {{"127.0.0.1", closed.port()}}, std::chrono::seconds(30));
  Recorder kept, cancelled;
  CounterCall* first = store.Increment({"a", "", 2}, kept);
  CounterCall* second = store.Increment({"b", "b0", 3}, cancelled);
  if (second != nullptr) second->Cancel();
  store.Shutdown();
  EXPECT_EQ(kept.replies.size(), first != nullptr ? 1u : 0u);
  EXPECT_TRUE(cancelled.replies.empty());
  EXPECT_EQ(store.Increment({"a", "", 2}, kept), nullptr);
}

TEST(RedisCounterStoreTest, TheLoopsExitShutsTheThreadsStoresDown) {
  ClosedPort closed;
  std::shared_ptr<CounterStore> store;
  {
    fakes::TestDispatcher dispatcher;
    RedisCounterStoreProvider provider({{"127.0.0.1", closed.port()}}, std::chrono::seconds(1));
    store = provider.StoreFor(dispatcher);
    EXPECT_EQ(provider.StoreFor(dispatcher), store) << "one store per thread and addresses";
  }
  // The loop is gone; the store outlived it, shut down, its handles closed in time.
  Recorder recorder;
  EXPECT_EQ(store->Increment({"k", "", 2}, recorder), nullptr);
}

}  // namespace
}  // namespace phoenix::filters
