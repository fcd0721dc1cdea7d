#include "source/upstream/dns_cluster.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/dispatcher.h"
#include "source/config/yaml_loader.h"
#include "source/network/tcp_connection.h"
#include "source/upstream/cluster_manager.h"
#include "test/common/simulated_time_source.h"
#include "test/unit/fakes/fake_conn_pool.h"
#include "test/unit/fakes/fake_dns_resolver.h"

namespace phoenix::upstream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

sockaddr_storage Address(const std::string& ip, uint16_t port) {
  sockaddr_storage address;
  EXPECT_TRUE(ParseSocketAddress(ip, port, &address)) << ip;
  return address;
}

std::vector<std::string> Names(const HostVector& hosts) {
  std::vector<std::string> names;
  for (const auto& host : hosts) names.push_back(host->address_string());
  return names;
}

std::string AddressOf(const Host& host) { return network::FormatAddress(host.address().get()); }

TEST(MergeHostsTest, KeepsTheHostsThatStayAndAddsTheNewOnes) {
  bool changed = false;
  HostVector first =
      MergeHosts({}, {{Address("10.0.0.1", 80), 0}, {Address("10.0.0.2", 80), 0}}, &changed);
  EXPECT_TRUE(changed);
  EXPECT_THAT(Names(first), ElementsAre("10.0.0.1:80", "10.0.0.2:80"));

  HostVector second =
      MergeHosts(first, {{Address("10.0.0.2", 80), 0}, {Address("10.0.0.3", 80), 0}}, &changed);
  EXPECT_TRUE(changed);
  EXPECT_THAT(Names(second), ElementsAre("10.0.0.2:80", "10.0.0.3:80"));
  EXPECT_EQ(second[0], first[1]);  // The same Host: counters, health, pools carry on.
  EXPECT_NE(second[1], first[0]);
}

TEST(MergeHostsTest, SameAddressesAreNoChange) {
  bool changed = false;
  HostVector first =
      MergeHosts({}, {{Address("10.0.0.1", 80), 0}, {Address("10.0.0.2", 80), 0}}, &changed);
  HostVector again =
      MergeHosts(first, {{Address("10.0.0.1", 80), 0}, {Address("10.0.0.2", 80), 0}}, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(again, first);
}

TEST(MergeHostsTest, DuplicatesCollapseAndPriorityOrPortMakesAnotherHost) {
  bool changed = false;
  HostVector hosts = MergeHosts({},
                                {{Address("10.0.0.1", 80), 0},
                                 {Address("10.0.0.1", 80), 0},
                                 {Address("10.0.0.1", 81), 0},
                                 {Address("10.0.0.1", 80), 1}},
                                &changed);
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_THAT(Names(hosts), ElementsAre("10.0.0.1:80", "10.0.0.1:81", "10.0.0.1:80"));
  EXPECT_EQ(hosts[2]->priority(), 1u);
}

// A DNS cluster "c" resolved by a fake resolver on a loop whose clock the test moves.
class DnsClusterTest : public ::testing::Test {
 protected:
  // Its timers go before the loop closes its handles.
  ~DnsClusterTest() override {
    dns_.reset();
    dispatcher_.Exit();
  }

  std::shared_ptr<const ClusterInfo> Create(const std::string& type,
                                            const std::vector<std::string>& names,
                                            const std::string& extra = "") {
    std::string yaml = absl::StrCat("name: c\ntype: ", type, "\ndns_refresh_rate: 10s\n", extra,
                                    "\nload_assignment:\n  endpoints:\n  - lb_endpoints:\n");
    for (const std::string& name : names) {
      absl::StrAppend(&yaml, "    - endpoint: {address: {socket_address: {address: ", name,
                      ", port_value: 8080}}}\n");
    }
    config::v1::Cluster proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status << "\n" << yaml;
    config::ConfigErrors errors;
    auto cluster = ClusterInfo::Create(proto, stats_, "cluster", errors);
    EXPECT_NE(cluster, nullptr) << errors.ToStatus();
    return cluster;
  }

  void Start(std::shared_ptr<const ClusterInfo> cluster, const ClusterInfo* previous = nullptr) {
    cluster_ = std::move(cluster);
    dns_ = std::make_unique<DnsCluster>(
        dispatcher_, resolver_, cluster_, [this] { ++changes_; }, previous);
  }

  // The refresh timer fires.
  void Refresh() { time_.Advance(std::chrono::seconds(10)); }

  uint64_t Counter(const std::string& name) {
    return stats_.counter(absl::StrCat("cluster.c.", name)).Value();
  }

  SimulatedTimeSource time_;
  Dispatcher dispatcher_{time_};
  StatsStore stats_;
  fakes::FakeDnsResolver resolver_;
  std::shared_ptr<const ClusterInfo> cluster_;
  std::unique_ptr<DnsCluster> dns_;
  int changes_ = 0;
};

TEST_F(DnsClusterTest, StrictDnsHasNoHostsUntilItsNameResolves) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  EXPECT_THAT(*cluster_->hosts(), IsEmpty());
  EXPECT_EQ(resolver_.PendingCount("backend.local"), 1u);
  EXPECT_EQ(Counter("update_attempt"), 1u);

  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1", "10.0.0.2"}));
  EXPECT_THAT(Names(*cluster_->hosts()), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
  EXPECT_EQ(Counter("update_success"), 1u);
  EXPECT_EQ(stats_.gauge("cluster.c.membership_hosts").Value(), 2);
  EXPECT_EQ(changes_, 1);
}

TEST_F(DnsClusterTest, AWorkersBalancerSeesTheNewHostsOnItsNextPick) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  LoadBalancer lb(*cluster_, time_);
  EXPECT_EQ(lb.Choose(), nullptr);  // No hosts yet: no healthy upstream.

  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1"}));
  Host* host = lb.Choose();
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->address_string(), "10.0.0.1:8080");

  Refresh();
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.2"}));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lb.Choose()->address_string(), "10.0.0.2:8080");
}

TEST_F(DnsClusterTest, NamesAreResolvedAgainEveryRefreshRate) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1", "10.0.0.2"}));
  HostSharedPtr stays = (*cluster_->hosts())[1];
  time_.Advance(std::chrono::seconds(9));
  EXPECT_EQ(resolver_.PendingCount("backend.local"), 0u);
  time_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(resolver_.PendingCount("backend.local"), 1u);
  EXPECT_EQ(Counter("update_attempt"), 2u);

  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.2", "10.0.0.3"}));
  EXPECT_THAT(Names(*cluster_->hosts()), ElementsAre("10.0.0.2:8080", "10.0.0.3:8080"));
  EXPECT_EQ((*cluster_->hosts())[0], stays);
  EXPECT_EQ(changes_, 2);

  // The same answer again changes nothing (workers and health checks are left alone).
  uint64_t generation = cluster_->host_set().generation();
  Refresh();
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.2", "10.0.0.3"}));
  EXPECT_EQ(cluster_->host_set().generation(), generation);
  EXPECT_EQ(changes_, 2);
  EXPECT_EQ(Counter("update_success"), 3u);
}

TEST_F(DnsClusterTest, AFailedResolutionKeepsTheLastGoodAddresses) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1", "10.0.0.2"}));
  HostVectorConstSharedPtr good = cluster_->hosts();

  Refresh();
  ASSERT_TRUE(resolver_.Fail("backend.local"));
  EXPECT_EQ(Counter("update_failure"), 1u);
  EXPECT_EQ(cluster_->hosts(), good);
  EXPECT_EQ(changes_, 1);

  // And it goes on trying.
  Refresh();
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.3"}));
  EXPECT_THAT(Names(*cluster_->hosts()), ElementsAre("10.0.0.3:8080"));
}

TEST_F(DnsClusterTest, ANameThatNeverResolvedLeavesNoHostsAndKeepsTrying) {
  Start(Create("STRICT_DNS", {"nonexistent.invalid"}));
  ASSERT_TRUE(resolver_.Fail("nonexistent.invalid"));
  EXPECT_THAT(*cluster_->hosts(), IsEmpty());
  EXPECT_EQ(Counter("update_failure"), 1u);
  Refresh();
  EXPECT_EQ(resolver_.PendingCount("nonexistent.invalid"), 1u);
}

TEST_F(DnsClusterTest, StrictDnsHostsAreEveryAddressOfEveryName) {
  Start(Create("STRICT_DNS", {"a.local", "b.local"}));
  ASSERT_TRUE(resolver_.Answer("b.local", {"10.0.0.2"}));
  EXPECT_THAT(Names(*cluster_->hosts()), ElementsAre("10.0.0.2:8080"));
  ASSERT_TRUE(resolver_.Answer("a.local", {"10.0.0.1", "10.0.0.3"}));
  EXPECT_THAT(Names(*cluster_->hosts()),
              ElementsAre("10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.2:8080"));
  // One name failing keeps its addresses; the other's change.
  Refresh();
  ASSERT_TRUE(resolver_.Fail("a.local"));
  ASSERT_TRUE(resolver_.Answer("b.local", {"10.0.0.4"}));
  EXPECT_THAT(Names(*cluster_->hosts()),
              ElementsAre("10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"));
}

TEST_F(DnsClusterTest, LogicalDnsIsOneHostWhoseAddressFollowsTheFirstAnswer) {
  Start(Create("LOGICAL_DNS", {"backend.local"}));
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1", "10.0.0.2"}));
  ASSERT_EQ(cluster_->hosts()->size(), 1u);
  HostSharedPtr host = (*cluster_->hosts())[0];
  EXPECT_EQ(host->address_string(), "backend.local:8080");
  EXPECT_EQ(AddressOf(*host), "10.0.0.1:8080");
  uint64_t generation = cluster_->host_set().generation();

  Refresh();
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.3"}));
  EXPECT_EQ((*cluster_->hosts())[0], host);  // Not replaced: one logical host.
  EXPECT_EQ(cluster_->host_set().generation(), generation);
  EXPECT_EQ(AddressOf(*host), "10.0.0.3:8080");  // New connections go there.

  Refresh();
  ASSERT_TRUE(resolver_.Fail("backend.local"));
  EXPECT_EQ(AddressOf(*host), "10.0.0.3:8080");
  EXPECT_EQ(changes_, 1);
}

// A pool that keeps its host alive, as the real ones do, and says when it is destroyed.
class TrackedPool : public fakes::FakeConnectionPool {
 public:
  TrackedPool(HostSharedPtr host, bool* destroyed)
      : FakeConnectionPool(*host), host_(std::move(host)), destroyed_(destroyed) {}
  ~TrackedPool() override { *destroyed_ = true; }

 private:
  HostSharedPtr host_;
  bool* destroyed_;
};

TEST_F(DnsClusterTest, AHostThatLeavesDrainsItsPoolWhichGoesOnceDone) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1"}));
  bool destroyed = false;
  TrackedPool* pool = nullptr;
  ThreadLocalCluster local(dispatcher_, cluster_, [&](Host& host) {
    auto made = std::make_unique<TrackedPool>(host.shared_from_this(), &destroyed);
    pool = made.get();
    return made;
  });
  Host* leaving = local.ChooseHost({});
  ASSERT_NE(leaving, nullptr);
  local.PoolFor(*leaving);
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(local.BeginRequest(*leaving));  // A request in flight on it.

  Refresh();
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.2"}));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(local.ChooseHost({})->address_string(), "10.0.0.2:8080");
  }
  EXPECT_TRUE(pool->draining);
  EXPECT_FALSE(destroyed);

  // Its connections are done, but the request has not ended yet: the pool stays.
  pool->idle = true;
  local.ChooseHost({});
  uv_run(dispatcher_.loop(), UV_RUN_NOWAIT);
  EXPECT_FALSE(destroyed);
  EXPECT_EQ(leaving->address_string(), "10.0.0.1:8080");

  local.EndRequest(*leaving, 1);
  local.ChooseHost({});
  uv_run(dispatcher_.loop(), UV_RUN_NOWAIT);
  EXPECT_TRUE(destroyed);
}

TEST_F(DnsClusterTest, AChangedClusterStartsWithTheAddressesOfTheOneItReplaces) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  ASSERT_TRUE(resolver_.Answer("backend.local", {"10.0.0.1"}));
  auto before = cluster_;
  auto after = Create("STRICT_DNS", {"backend.local"}, "connect_timeout: 2s");
  Start(after, before.get());
  EXPECT_THAT(Names(*after->hosts()), ElementsAre("10.0.0.1:8080"));

  // Other names: nothing to start from.
  auto renamed = Create("STRICT_DNS", {"other.local"});
  Start(renamed, after.get());
  EXPECT_THAT(*renamed->hosts(), IsEmpty());
}

TEST_F(DnsClusterTest, DestroyingItCancelsItsQueries) {
  Start(Create("STRICT_DNS", {"backend.local"}));
  EXPECT_EQ(resolver_.PendingCount("backend.local"), 1u);
  dns_.reset();
  EXPECT_EQ(resolver_.PendingCount("backend.local"), 0u);
  EXPECT_FALSE(resolver_.Answer("backend.local", {"10.0.0.1"}));
}

TEST(DnsClusterConfigTest, HostNamesNeedADnsType) {
  StatsStore stats;
  auto create = [&](const std::string& yaml, config::ConfigErrors& errors) {
    config::v1::Cluster proto;
    EXPECT_TRUE(config::LoadYamlString(yaml, &proto, nullptr).ok()) << yaml;
    return ClusterInfo::Create(proto, stats, "cluster", errors);
  };
  const std::string endpoint =
      "load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
      "{address: localhost, port_value: 80}}}}]}]}\n";
  {
    config::ConfigErrors errors;
    EXPECT_EQ(create("name: c\n" + endpoint, errors), nullptr);
    EXPECT_THAT(errors.errors(),
                ElementsAre(AllOf(HasSubstr("endpoint.address.socket_address.address"),
                                  HasSubstr("'localhost' is not an IP address"),
                                  HasSubstr("STRICT_DNS or LOGICAL_DNS"))));
  }
  for (const char* type : {"STRICT_DNS", "LOGICAL_DNS"}) {
    config::ConfigErrors errors;
    auto cluster = create(absl::StrCat("name: c\ntype: ", type, "\n", endpoint), errors);
    ASSERT_NE(cluster, nullptr) << errors.ToStatus();
    ASSERT_EQ(cluster->dns_targets().size(), 1u);
    EXPECT_EQ(cluster->dns_targets()[0].name, "localhost");
    EXPECT_EQ(cluster->dns_refresh_rate(), std::chrono::seconds(5));
    EXPECT_EQ(cluster->dns_lookup_family(), network::DnsLookupFamily::kV4Only);
  }
  {
    config::ConfigErrors errors;
    EXPECT_EQ(create("name: c\ntype: LOGICAL_DNS\nload_assignment: {endpoints: [{lb_endpoints: "
                     "[{endpoint: {address: {socket_address: {address: a, port_value: 80}}}}, "
                     "{endpoint: {address: {socket_address: {address: b, port_value: 80}}}}]}]}",
                     errors),
              nullptr);
    EXPECT_THAT(errors.errors(), ElementsAre(HasSubstr("LOGICAL_DNS cluster has exactly one")));
  }
  {
    config::ConfigErrors errors;
    EXPECT_EQ(create("name: c\ntype: STRICT_DNS\ndns_refresh_rate: 0s\n" + endpoint, errors),
              nullptr);
    EXPECT_THAT(errors.errors(), ElementsAre(HasSubstr("cluster.dns_refresh_rate")));
  }
  {
    config::ConfigErrors errors;
    EXPECT_EQ(create("name: c\ntype: STRICT_DNS\nload_assignment: {endpoints: [{lb_endpoints: "
                     "[{endpoint: {address: {socket_address: {address: 'a b', port_value: "
                     "80}}}}]}]}",
                     errors),
              nullptr);
    EXPECT_THAT(errors.errors(), ElementsAre(HasSubstr("neither a host name nor an IP")));
  }
}

TEST(FilterAddressesTest, FamiliesAndDuplicates) {
  using network::DnsLookupFamily;
  std::vector<sockaddr_storage> mixed = {
      fakes::FakeDnsResolver::Parse("::1"), fakes::FakeDnsResolver::Parse("127.0.0.1"),
      fakes::FakeDnsResolver::Parse("127.0.0.1"), fakes::FakeDnsResolver::Parse("10.0.0.1")};
  auto text = [](const std::vector<sockaddr_storage>& addresses) {
    std::vector<std::string> out;
    for (const auto& a : addresses) {
      out.push_back(network::FormatAddress(reinterpret_cast<const sockaddr*>(&a)));
    }
    return out;
  };
  EXPECT_THAT(text(network::FilterAddresses(mixed, DnsLookupFamily::kV4Only)),
              ElementsAre("127.0.0.1:0", "10.0.0.1:0"));
  EXPECT_THAT(text(network::FilterAddresses(mixed, DnsLookupFamily::kV6Only)),
              ElementsAre("[::1]:0"));
  EXPECT_THAT(text(network::FilterAddresses(mixed, DnsLookupFamily::kAuto)),
              ElementsAre("[::1]:0"));
  EXPECT_THAT(text(network::FilterAddresses({mixed[1]}, DnsLookupFamily::kAuto)),
              ElementsAre("127.0.0.1:0"));
}

// The real resolver: `localhost` is in /etc/hosts, so this needs no network.
TEST(UvDnsResolverTest, ResolvesLocalhostOffTheLoopThread) {
  RealTimeSource clock;
  Dispatcher dispatcher(clock);
  network::UvDnsResolver resolver(dispatcher);
  absl::StatusOr<std::vector<sockaddr_storage>> result = absl::UnknownError("not called");
  bool called = false;
  auto query = resolver.Resolve("localhost", network::DnsLookupFamily::kV4Only,
                                [&](absl::StatusOr<std::vector<sockaddr_storage>> r) {
                                  called = true;
                                  result = std::move(r);
                                });
  EXPECT_FALSE(called);  // Never inside Resolve().
  while (!called) uv_run(dispatcher.loop(), UV_RUN_ONCE);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(result->empty());
  EXPECT_EQ(network::FormatAddress(reinterpret_cast<const sockaddr*>(&(*result)[0])),
            "127.0.0.1:0");

  called = false;
  auto failing = resolver.Resolve("nonexistent.invalid", network::DnsLookupFamily::kV4Only,
                                  [&](absl::StatusOr<std::vector<sockaddr_storage>> r) {
                                    called = true;
                                    result = std::move(r);
                                  });
  while (!called) uv_run(dispatcher.loop(), UV_RUN_ONCE);
  EXPECT_FALSE(result.ok());
  dispatcher.Exit();
  uv_run(dispatcher.loop(), UV_RUN_DEFAULT);
}

TEST(UvDnsResolverTest, ADestroyedQueryNeverCallsBack) {
  RealTimeSource clock;
  Dispatcher dispatcher(clock);
  network::UvDnsResolver resolver(dispatcher);
  bool called = false;
  auto query =
      resolver.Resolve("localhost", network::DnsLookupFamily::kV4Only,
                       [&](absl::StatusOr<std::vector<sockaddr_storage>>) { called = true; });
  query.reset();
  dispatcher.Exit();
  uv_run(dispatcher.loop(), UV_RUN_DEFAULT);  // Returns once the lookup is done or cancelled.
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace phoenix::upstream
