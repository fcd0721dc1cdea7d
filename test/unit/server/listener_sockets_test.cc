#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "source/server/worker.h"

namespace phoenix::server {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(ListenerSocketsTest, ClosesTheSocketsNoWorkerTook) {
  int untaken = ::socket(AF_INET, SOCK_STREAM, 0);
  int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  {
    auto sockets = std::make_shared<ListenerSockets>();
    sockets->Add(untaken);
    sockets->Add(taken);
    sockets->taken[1].store(true);  // Worker 1's listener handle owns it now.
  }
  EXPECT_FALSE(IsOpen(untaken));
  EXPECT_TRUE(IsOpen(taken));
  ::close(taken);
}

}  // namespace
}  // namespace phoenix::server
