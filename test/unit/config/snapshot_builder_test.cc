#include "source/config/snapshot_builder.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"
#include "source/router/router_filter.h"
#include "source/server/filter_registrations.h"
#include "source/upstream/cluster_manager.h"
#include "test/unit/fakes/fake_codec.h"
#include "test/unit/fakes/fake_conn_pool.h"
#include "test/unit/fakes/fake_filter_callbacks.h"
#include "test/unit/fakes/test_dispatcher.h"

namespace phoenix::config {
namespace {

// A config source driven by the test: each Deliver() is one update carrying the complete set
// of the types it names, as a control plane pushes them (no bootstrap, no source map).
class FakeConfigSource : public ConfigSource {
 public:
  explicit FakeConfigSource(bool dynamic) : dynamic_(dynamic) {}

  absl::Status Start(ConfigUpdateCallbacks& callbacks) override {
    callbacks_ = &callbacks;
    return absl::OkStatus();
  }
  absl::Status Refresh() override { return absl::OkStatus(); }
  bool dynamic() const override { return dynamic_; }
  std::map<ResourceType, TypeStatus> status() const override { return {}; }
  std::string description() const override { return "fake"; }

  // Adds `yaml` (one message of `type`, as YAML) to the next update; an empty list of a type
  // delivers "none of that type".
  template <typename Message>
  FakeConfigSource& With(ResourceType type, const std::vector<std::string>& yamls) {
    auto& resources = next_.types[type];
    resources.version = std::to_string(++versions_);
    for (const std::string& yaml : yamls) {
      Message message;
      absl::Status loaded = LoadYamlString(yaml, &message, nullptr);
      EXPECT_TRUE(loaded.ok()) << loaded;
      resources.resources.emplace_back().PackFrom(message);
    }
    return *this;
  }

  // Sends the update built by With() and returns its answer (OK: ACK).
  absl::Status Deliver() {
    ConfigUpdate update = std::move(next_);
    next_ = ConfigUpdate();
    return callbacks_->OnConfigUpdate(update);
  }

 private:
  const bool dynamic_;
  ConfigUpdateCallbacks* callbacks_ = nullptr;
  ConfigUpdate next_;
  int versions_ = 0;
};

constexpr char kListener[] = R"(
name: ingress
address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
http_connection_manager: {rds: {route_config_name: main}}
)";

constexpr char kRoutes[] = R"(
name: main
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: later}
)";

constexpr char kCluster[] = R"(
name: later
load_assignment:
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
)";

// A source's updates through a SnapshotBuilder, and a request through the router on the
// published snapshot (as a worker would run it, with fake upstream pools).
class SnapshotBuilderTest : public ::testing::Test {
 protected:
  explicit SnapshotBuilderTest(bool dynamic = true) : source_(dynamic) {
    server::RegisterBuiltinFilters();
    EXPECT_TRUE(source_.Start(builder_).ok());
    upstream::ClusterManager::SetForThisThread(&cluster_manager_);
  }
  ~SnapshotBuilderTest() override { upstream::ClusterManager::SetForThisThread(nullptr); }

  // GET `path` through the router of the current snapshot's listener; the local reply's
  // status (0 if the request went upstream).
  int Send(const std::string& path) {
    router_.reset();  // The previous request's.
    const ConfigSnapshot& snapshot = *builder_.current();
    cluster_manager_.Update(snapshot.clusters);
    const auto& hcm = *snapshot.listeners.at(0).filter_chains->Select().connection_manager;
    callbacks_ = std::make_unique<fakes::FakeFilterCallbacks>(dispatcher_);
    router_ = std::make_unique<router::RouterFilter>();
    router_->SetCallbacks(*callbacks_);
    request_ = *fakes::MakeRequest("GET", path);
    callbacks_->set_route(hcm.route_config->RouteFor(request_));
    router_->DecodeHeaders(request_, /*end_stream=*/true);
    return callbacks_->local_reply_status;
  }

  // The response flags of the last request ("NC", "NR", ...).
  const std::string& flags() const { return callbacks_->info.response_flags; }

  FakeConfigSource source_;
  StatsStore stats_;
  std::vector<std::shared_ptr<const ConfigSnapshot>> published_;
  SnapshotBuilder builder_{source_, stats_, [this](std::shared_ptr<const ConfigSnapshot> snapshot) {
                             published_.push_back(std::move(snapshot));
                             return absl::OkStatus();
                           }};
  fakes::TestDispatcher dispatcher_;
  std::vector<fakes::FakeConnectionPool*> pools_;  // Owned by the cluster manager.
  upstream::ClusterManager cluster_manager_{dispatcher_, [this](upstream::Host& host) {
                                              auto pool =
                                                  std::make_unique<fakes::FakeConnectionPool>(host);
                                              pools_.push_back(pool.get());
                                              return pool;
                                            }};
  std::unique_ptr<fakes::FakeFilterCallbacks> callbacks_;
  std::unique_ptr<router::RouterFilter> router_;
  http::RequestHeaders request_;
};

TEST_F(SnapshotBuilderTest, DynamicRouteToAClusterNotYetArrivedAnswers503NC) {
  ASSERT_TRUE(source_.With<v1::Listener>(ResourceType::kListener, {kListener})
                  .With<v1::RouteConfiguration>(ResourceType::kRouteConfiguration, {kRoutes})
                  .Deliver()
                  .ok());
  EXPECT_EQ(Send("/a"), 503);
  EXPECT_EQ(flags(), "NC");
  EXPECT_TRUE(pools_.empty());

  // The cluster arrives on its own; the listener and its routes stay as they were.
  ASSERT_TRUE(source_.With<v1::Cluster>(ResourceType::kCluster, {kCluster}).Deliver().ok());
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(published_[1]->route_configs.at("main"),
            published_[1]->listeners[0].filter_chains->Select().connection_manager->route_config);
  EXPECT_EQ(Send("/a"), 0) << "the request goes upstream";
  ASSERT_EQ(pools_.size(), 1u);
  EXPECT_EQ(pools_[0]->requests.size(), 1u);
  EXPECT_EQ(flags(), "");
}

TEST_F(SnapshotBuilderTest, DynamicListenerBeforeItsRouteConfigurationAnswers404NR) {
  ASSERT_TRUE(source_.With<v1::Listener>(ResourceType::kListener, {kListener}).Deliver().ok());
  EXPECT_EQ(Send("/a"), 404);
  EXPECT_EQ(flags(), "NR");
  ASSERT_TRUE(source_.With<v1::RouteConfiguration>(ResourceType::kRouteConfiguration, {kRoutes})
                  .Deliver()
                  .ok());
  EXPECT_EQ(Send("/a"), 503);
  EXPECT_EQ(flags(), "NC");
}

TEST_F(SnapshotBuilderTest, ARejectedUpdateKeepsTheLastGoodSnapshot) {
  ASSERT_TRUE(source_.With<v1::Listener>(ResourceType::kListener, {kListener}).Deliver().ok());
  absl::Status rejected =
      source_
          .With<v1::Listener>(ResourceType::kListener,
                              {"{name: x, address: {socket_address: {address: nowhere}}}"})
          .Deliver();
  EXPECT_NE(rejected.message().find("'nowhere' is not an IP address"), absl::string_view::npos)
      << rejected;
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(builder_.current(), published_[0]);
  EXPECT_EQ(builder_.current()->listeners[0].name, "ingress");
}

// A static source delivers everything together: a name that resolves to nothing is a typo.
class StaticSnapshotBuilderTest : public SnapshotBuilderTest {
 protected:
  StaticSnapshotBuilderTest() : SnapshotBuilderTest(/*dynamic=*/false) {}
};

TEST_F(StaticSnapshotBuilderTest, RouteToAnUnknownClusterIsRejected) {
  absl::Status answer =
      source_.With<v1::Listener>(ResourceType::kListener, {kListener})
          .With<v1::RouteConfiguration>(ResourceType::kRouteConfiguration, {kRoutes})
          .With<v1::Cluster>(ResourceType::kCluster, {})
          .Deliver();
  EXPECT_EQ(std::string(answer.message()),
            "static_resources.route_configurations[0].virtual_hosts[0].routes[0].route.cluster: "
            "unknown cluster 'later'");
  EXPECT_TRUE(published_.empty());
  EXPECT_EQ(builder_.current(), nullptr);
}

TEST_F(StaticSnapshotBuilderTest, ListenerNamingAnUnknownRouteConfigurationIsRejected) {
  absl::Status answer = source_.With<v1::Listener>(ResourceType::kListener, {kListener})
                            .With<v1::Cluster>(ResourceType::kCluster, {kCluster})
                            .Deliver();
  EXPECT_EQ(std::string(answer.message()),
            "static_resources.listeners[0].http_connection_manager.rds.route_config_name: "
            "unknown route configuration 'main'");
  EXPECT_TRUE(published_.empty());
}

constexpr char kBundleSecret[] = R"(
name: trust_bundle
validation_context: {trusted_ca: {inline_string: "bundle"}}
)";

v1::Secret LocalSecret(const std::string& name, const std::string& ca) {
  v1::Secret secret;
  secret.set_name(name);
  secret.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(ca);
  return secret;
}

// The names and CA strings of the secrets in force.
std::map<std::string, std::string> SecretsOf(const ConfigSnapshot& snapshot) {
  std::map<std::string, std::string> out;
  for (const auto& secret : snapshot.bootstrap.static_resources().secrets()) {
    out[secret.name()] = secret.validation_context().trusted_ca().inline_string();
  }
  return out;
}

TEST_F(SnapshotBuilderTest, ALocalSecretStaysBesideDeliveredOnesAndWinsOverItsName) {
  // Before any config: kept for the first update.
  ASSERT_TRUE(builder_.SetLocalSecret(LocalSecret("workload_certificate", "mine")).ok());
  EXPECT_TRUE(published_.empty());
  ASSERT_TRUE(source_.With<v1::Secret>(ResourceType::kSecret, {kBundleSecret}).Deliver().ok());
  EXPECT_EQ(SecretsOf(*builder_.current()),
            (std::map<std::string, std::string>{{"trust_bundle", "bundle"},
                                                {"workload_certificate", "mine"}}));
  // A renewal rebuilds the snapshot in force at once.
  ASSERT_TRUE(builder_.SetLocalSecret(LocalSecret("workload_certificate", "renewed")).ok());
  EXPECT_EQ(published_.size(), 2u);
  EXPECT_EQ(SecretsOf(*builder_.current())["workload_certificate"], "renewed");
  // A new set of secrets from the source keeps it; one of its name does not replace it.
  ASSERT_TRUE(source_
                  .With<v1::Secret>(ResourceType::kSecret, {kBundleSecret, R"(
name: workload_certificate
validation_context: {trusted_ca: {inline_string: "pushed"}}
)"})
                  .Deliver()
                  .ok());
  EXPECT_EQ(SecretsOf(*builder_.current())["workload_certificate"], "renewed");
  EXPECT_EQ(builder_.current()->bootstrap.static_resources().secrets_size(), 2);
}

}  // namespace
}  // namespace phoenix::config
