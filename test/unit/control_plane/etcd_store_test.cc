#include "source/control_plane/etcd_store.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern char** environ;

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEtcd = "/usr/bin/etcd";

// A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range (32768+): a
// client connecting to it before etcd listens must not be given it as its own port (a TCP
// self-connect, which the channel would then take for etcd).
int FreePort() {
  static std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = 20000 + static_cast<int>(random() % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (free) return port;
  }
  return 0;
}

// Whether a TCP connect to 127.0.0.1:`port` succeeds.
bool Accepting(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

// A real etcd (Debian's etcd-server) on loopback in a temporary directory, for the store's
// wire compatibility and its transactions; the tests skip when it is not installed.
class EtcdStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    if (::access(kEtcd, X_OK) != 0) GTEST_SKIP() << kEtcd << " is not installed";
    char pattern[] = "/tmp/phoenix-etcd-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    client_port_ = FreePort();
    endpoint_ = absl::StrCat("http://127.0.0.1:", client_port_);
    std::string peer = absl::StrCat("http://127.0.0.1:", FreePort());
    std::string data = dir_ + "/data";
    std::string cluster = "test=" + peer;
    std::string log = dir_ + "/etcd.log";
    std::vector<std::string> args = {kEtcd,     "--name",
                                     "test",    "--data-dir",
                                     data,      "--listen-client-urls",
                                     endpoint_, "--advertise-client-urls",
                                     endpoint_, "--listen-peer-urls",
                                     peer,      "--initial-advertise-peer-urls",
                                     peer,      "--initial-cluster",
                                     cluster,   "--log-level",
                                     "warn"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;  // Its output to a log file in its directory.
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int spawned = ::posix_spawn(&pid_, kEtcd, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(spawned, 0);
    // Ready once its client port accepts and a read answers (a deadline, no fixed sleep).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!Accepting(client_port_)) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "etcd did not listen";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto store = NewStore();
    while (!store->Read().ok()) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        FAIL() << "etcd did not start:\n" << text.str() << "\n" << store->Read().status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::unique_ptr<EtcdStore> NewStore(const std::string& prefix = "/test/") {
    auto client = EtcdClient::Create({endpoint_}, std::chrono::milliseconds(1000));
    EXPECT_TRUE(client.ok()) << client.status();
    return std::make_unique<EtcdStore>(*std::move(client), prefix);
  }

  std::string dir_;
  int client_port_ = 0;
  std::string endpoint_;
  pid_t pid_ = 0;
};

TEST_F(EtcdStoreTest, CommitsAreReadBackWithTheirHistoryAndAudit) {
  auto store = NewStore();
  StoredState empty = *store->Read();
  EXPECT_EQ(empty.version, 0u);
  EXPECT_TRUE(empty.files.empty());
  FileSet one = {{"a.yaml", "a"}, {"nodes/n1/b.yaml", "b"}};
  ASSERT_TRUE(store->Commit(empty, one, R"({"version": "1"})").ok());
  StoredState first = *store->Read();
  EXPECT_EQ(first.version, 1u);
  EXPECT_TRUE(SameFileSets(first.files, one));
  FileSet two = {{"a.yaml", "A"}, {"c.yaml", "c"}};  // b removed, c added, a changed.
  ASSERT_TRUE(store->Commit(first, two, R"({"version": "2"})").ok());
  StoredState second = *store->Read();
  EXPECT_EQ(second.version, 2u);
  EXPECT_TRUE(SameFileSets(second.files, two));
  EXPECT_TRUE(SameFileSets(*store->Version(1), one));
  EXPECT_EQ(store->Version(7).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->AppendAudit(R"({"refused": "x"})").ok());
  EXPECT_EQ(*store->AuditLines(),
            (std::vector<std::string>{R"({"version": "1"})", R"({"version": "2"})",
                                      R"({"refused": "x"})"}));
  // Another prefix is another store.
  EXPECT_EQ(NewStore("/other/")->Read()->version, 0u);
}

TEST_F(EtcdStoreTest, OfTwoCommitsOverTheSameVersionOneWinsTheOtherIsAborted) {
  auto a = NewStore();
  auto b = NewStore();
  ASSERT_TRUE(a->Commit(*a->Read(), {{"x.yaml", "0"}}, "{}").ok());
  StoredState seen_a = *a->Read();
  StoredState seen_b = *b->Read();
  ASSERT_TRUE(a->Commit(seen_a, {{"x.yaml", "a"}}, "{}").ok());
  absl::Status lost = b->Commit(seen_b, {{"x.yaml", "b"}}, "{}");
  EXPECT_EQ(lost.code(), absl::StatusCode::kAborted) << lost;
  EXPECT_TRUE(SameFileSets(b->Read()->files, FileSet{{"x.yaml", "a"}}));
  // Two first commits (seeding): the same.
  auto c = NewStore("/fresh/");
  auto d = NewStore("/fresh/");
  StoredState none_c = *c->Read();
  StoredState none_d = *d->Read();
  ASSERT_TRUE(c->Commit(none_c, {{"x.yaml", "c"}}, "{}").ok());
  EXPECT_EQ(d->Commit(none_d, {{"x.yaml", "d"}}, "{}").code(), absl::StatusCode::kAborted);
}

TEST_F(EtcdStoreTest, TheWatchSeesEveryCommit) {
  auto writer = NewStore();
  auto watcher = NewStore();
  std::atomic<int> calls{0};
  watcher->Watch([&] { ++calls; });
  auto wait_for = [&](int n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (calls.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return calls.load() >= n;
  };
  ASSERT_TRUE(wait_for(1)) << "no call once the watch was created";
  ASSERT_TRUE(writer->Commit(*writer->Read(), {{"x.yaml", "1"}}, "{}").ok());
  EXPECT_TRUE(wait_for(2)) << "the commit was not seen";
  ASSERT_TRUE(writer->AppendAudit("{}").ok());  // Not a commit: no call.
  ASSERT_TRUE(writer->Commit(*writer->Read(), {{"x.yaml", "2"}}, "{}").ok());
  EXPECT_TRUE(wait_for(3));
  watcher->StopWatching();
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(EtcdStoreTest, KeepsTheLastVersionsOnly) {
  auto store = NewStore();
  for (uint64_t v = 1; v <= ResourceStore::kKeptVersions + 1; ++v) {
    ASSERT_TRUE(store->Commit(*store->Read(), {{"a.yaml", std::to_string(v)}}, "{}").ok());
  }
  EXPECT_EQ(store->Version(1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(store->Version(1).status().message().find("(2 to 51)"), std::string::npos)
      << store->Version(1).status();
  EXPECT_TRUE(SameFileSets(*store->Version(2), FileSet{{"a.yaml", "2"}}));
}

}  // namespace
}  // namespace phoenix::control_plane
