#include "source/server/cluster_warmer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/server/transport_socket_registrations.h"
#include "source/upstream/health_checker.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::server {
namespace {

// A TCP port on loopback, bound for the whole test so no one else gets it: listening, it
// accepts connections (the kernel completes the handshake from the backlog), for health
// checks that pass; not listening, it refuses them, for checks that fail.
class LoopbackPort {
 public:
  explicit LoopbackPort(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (listening) ::listen(fd_, 16);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~LoopbackPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class ClusterWarmerTest : public ::testing::Test {
 protected:
  void SetUp() override { RegisterBuiltinTransportSockets(); }

  std::shared_ptr<const upstream::ClusterInfo> Cluster(const std::string& yaml) {
    config::v1::Cluster proto;
    EXPECT_TRUE(config::LoadYamlString(yaml, &proto, nullptr).ok()) << yaml;
    config::ConfigErrors errors;
    auto cluster = upstream::ClusterInfo::Create(proto, stats_, "cluster", errors);
    EXPECT_NE(cluster, nullptr) << errors.ToStatus();
    return cluster;
  }

  // An EDS cluster "name", with TCP health checks when `checked`.
  std::shared_ptr<const upstream::ClusterInfo> EdsCluster(const std::string& name,
                                                          bool checked = false) {
    return Cluster(absl::StrCat(
        "name: ", name, "\ntype: EDS\n",
        checked ? "health_checks: [{timeout: 1s, interval: 60s, tcp_health_check: {}}]\n" : ""));
  }

  static std::shared_ptr<config::ConfigSnapshot> Snapshot(
      std::initializer_list<std::shared_ptr<const upstream::ClusterInfo>> clusters) {
    auto snapshot = std::make_shared<config::ConfigSnapshot>();
    for (const auto& cluster : clusters) snapshot->clusters[cluster->name()] = cluster;
    return snapshot;
  }

  static void Assign(config::ConfigSnapshot& snapshot, const std::string& name,
                     std::initializer_list<int> ports) {
    auto& hosts = snapshot.endpoint_assignments[name];
    for (int port : ports) {
      upstream::ResolvedHost host{};
      EXPECT_TRUE(upstream::ParseSocketAddress("127.0.0.1", port, &host.address));
      hosts.push_back(host);
    }
  }

  // Sets each EDS cluster's hosts from the snapshot, as the server does on publish.
  static void ApplyAssignments(const config::ConfigSnapshot& snapshot) {
    for (const auto& [name, cluster] : snapshot.clusters) {
      auto it = snapshot.endpoint_assignments.find(cluster->eds_service_name());
      if (it == snapshot.endpoint_assignments.end()) continue;
      bool changed = false;
      cluster->UpdateHosts(upstream::MergeHosts(*cluster->hosts(), it->second, &changed));
    }
  }

  ClusterWarmer::CheckerLookup NoCheckers() {
    return [](const upstream::ClusterInfo&) -> upstream::HealthChecker* { return nullptr; };
  }

  fakes::TestDispatcher dispatcher_;
  StatsStore stats_;
  int released_ = 0;
  std::function<void()> Release() {
    return [this] { ++released_; };
  }
};

TEST_F(ClusterWarmerTest, AFilesConfigGoesAtOnce) {
  ClusterWarmer warmer(dispatcher_, std::chrono::seconds(5));
  warmer.Hold(Snapshot({EdsCluster("app")}), /*warm_new_clusters=*/false, NoCheckers(), Release());
  EXPECT_EQ(released_, 1);
}

TEST_F(ClusterWarmerTest, AnEdsClusterWaitsForItsEndpoints) {
  ClusterWarmer warmer(dispatcher_, std::chrono::seconds(5));
  auto app = EdsCluster("app");
  int first = 0;
  warmer.Hold(Snapshot({app}), true, NoCheckers(), [&first] { ++first; });
  dispatcher_.RunPending();
  EXPECT_EQ(first, 0);
  auto with_endpoints = Snapshot({app});
  Assign(*with_endpoints, "app", {8080});
  warmer.Hold(with_endpoints, true, NoCheckers(), Release());
  EXPECT_EQ(released_, 1);
  EXPECT_EQ(first, 0);  // The held snapshot was replaced, never released.
  // Warm now: a later snapshot with it goes at once, assignment or not.
  warmer.Hold(Snapshot({app}), true, NoCheckers(), Release());
  EXPECT_EQ(released_, 2);
}

TEST_F(ClusterWarmerTest, AHeldSnapshotGoesAfterTheTimeout) {
  ClusterWarmer warmer(dispatcher_, std::chrono::milliseconds(20));
  warmer.Hold(Snapshot({EdsCluster("app")}), true, NoCheckers(), Release());
  EXPECT_EQ(released_, 0);
  EXPECT_TRUE(dispatcher_.RunUntil([this] { return released_ == 1; }));
}

TEST_F(ClusterWarmerTest, LaterSnapshotsDoNotPutTheTimeoutOff) {
  ClusterWarmer warmer(dispatcher_, std::chrono::milliseconds(300));
  auto app = EdsCluster("app");
  warmer.Hold(Snapshot({app}), true, NoCheckers(), Release());
  EXPECT_FALSE(
      dispatcher_.RunUntil([this] { return released_ > 0; }, std::chrono::milliseconds(200)));
  warmer.Hold(Snapshot({app}), true, NoCheckers(), Release());
  // Due 300 ms after the first hold, not after this one.
  EXPECT_TRUE(
      dispatcher_.RunUntil([this] { return released_ == 1; }, std::chrono::milliseconds(250)));
}

TEST_F(ClusterWarmerTest, HealthCheckedHostsAreCheckedOnceBeforeRelease) {
  LoopbackPort live(/*listening=*/true);
  LoopbackPort dead(/*listening=*/false);
  ClusterWarmer warmer(dispatcher_, std::chrono::seconds(5));
  auto app = EdsCluster("app", /*checked=*/true);
  auto snapshot = Snapshot({app});
  Assign(*snapshot, "app", {live.port(), dead.port()});
  ApplyAssignments(*snapshot);
  upstream::HealthChecker checker(dispatcher_, app);
  EXPECT_FALSE(checker.warm());
  warmer.Hold(
      snapshot, true,
      [&](const upstream::ClusterInfo& cluster) -> upstream::HealthChecker* {
        return &cluster == app.get() ? &checker : nullptr;
      },
      Release());
  EXPECT_EQ(released_, 0);
  ASSERT_TRUE(dispatcher_.RunUntil([this] { return released_ == 1; }));
  EXPECT_TRUE(checker.warm());
  auto hosts = app->hosts();
  ASSERT_EQ(hosts->size(), 2u);
  // The first result alone decides: no waiting for unhealthy_threshold failures.
  EXPECT_FALSE((*hosts)[0]->failed_active_hc);
  EXPECT_TRUE((*hosts)[1]->failed_active_hc);
}

}  // namespace
}  // namespace phoenix::server
