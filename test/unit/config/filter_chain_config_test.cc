#include "gtest/gtest.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/config/snapshot.h"
#include "source/config/yaml_loader.h"
#include "source/server/filter_registrations.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::config {
namespace {

// A config with one cluster "app" and one listener "l": `cluster` is the rest of the cluster
// (from line 5), `listener` the rest of the listener (from line 8 without `cluster`). Both are
// indented by four spaces.
std::string Config(const std::string& listener, const std::string& cluster = "") {
  return "static_resources:\n"
         "  clusters:\n"
         "  - name: app\n"
         "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
         "{socket_address: {address: 127.0.0.1, port_value: 80}}}}]}]}\n" +
         cluster +
         "  listeners:\n"
         "  - name: l\n"
         "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n" +
         listener;
}

class FilterChainConfigTest : public ::testing::Test {
 protected:
  FilterChainConfigTest() {
    server::RegisterBuiltinFilters();
    server::RegisterBuiltinTransportSockets();
  }

  // The snapshot of `yaml`, or null with its errors in `errors_`.
  std::shared_ptr<ConfigSnapshot> Build(const std::string& yaml) {
    v1::Bootstrap bootstrap;
    SourceMap map("f.yaml");
    absl::Status loaded = LoadYamlString(yaml, &bootstrap, &map);
    if (!loaded.ok()) {
      errors_ = std::string(loaded.message());
      return nullptr;
    }
    auto snapshot = BuildSnapshot(bootstrap, &map, stats_, nullptr, 1, SourceKind::kStatic);
    if (!snapshot.ok()) {
      errors_ = std::string(snapshot.status().message());
      return nullptr;
    }
    return *snapshot;
  }

  StatsStore stats_;
  std::string errors_;
};

TEST_F(FilterChainConfigTest, HttpConnectionManagerIsADefaultChainOverRawTcp) {
  auto snapshot = Build(Config("    http_connection_manager: {stat_prefix: s}\n"));
  ASSERT_NE(snapshot, nullptr) << errors_;
  const FilterChainManager& chains = *snapshot->listeners[0].filter_chains;
  ASSERT_EQ(chains.chains().size(), 1u);
  const FilterChain& chain = chains.Select();
  EXPECT_EQ(chain.name, "default_filter_chain");
  EXPECT_EQ(chain.connection_manager->stat_prefix, "s");
  EXPECT_FALSE(chain.transport_socket_factory->ImplementsSecureTransport());
}

TEST_F(FilterChainConfigTest, FilterChainsComeFirstThenTheDefault) {
  auto snapshot = Build(
      Config("    filter_chains:\n"
             "    - name: main\n"
             "      transport_socket:\n"
             "        name: phoenix.transport_sockets.raw_buffer\n"
             "        typed_config: {\"@type\": type.googleapis.com/phoenix.config.v1.RawBuffer}\n"
             "      http_connection_manager: {stat_prefix: main}\n"
             "    default_filter_chain:\n"
             "      http_connection_manager: {stat_prefix: fallback}\n"));
  ASSERT_NE(snapshot, nullptr) << errors_;
  const FilterChainManager& chains = *snapshot->listeners[0].filter_chains;
  ASSERT_EQ(chains.chains().size(), 2u);
  EXPECT_EQ(chains.chains()[1]->name, "default_filter_chain");
  EXPECT_EQ(chains.chains()[1]->connection_manager->stat_prefix, "fallback");
  EXPECT_EQ(chains.Select().name, "main");
  EXPECT_EQ(chains.Select().connection_manager->stat_prefix, "main");
}

TEST_F(FilterChainConfigTest, AnUnnamedChainIsNamedByItsPlace) {
  auto snapshot = Build(Config("    filter_chains: [{http_connection_manager: {}}]\n"));
  ASSERT_NE(snapshot, nullptr) << errors_;
  EXPECT_EQ(snapshot->listeners[0].filter_chains->Select().name, "filter_chains[0]");
}

TEST_F(FilterChainConfigTest, ShorthandAndFilterChainsTogetherIsAnError) {
  EXPECT_EQ(Build(Config("    http_connection_manager: {stat_prefix: s}\n"
                         "    filter_chains: [{http_connection_manager: {}}]\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:8:5: static_resources.listeners[0].http_connection_manager: give either "
            "http_connection_manager or filter_chains/default_filter_chain, not both");
  EXPECT_EQ(Build(Config("    default_filter_chain: {}\n"
                         "    http_connection_manager: {}\n")),
            nullptr);
  EXPECT_NE(errors_.find("f.yaml:9:5: static_resources.listeners[0].http_connection_manager: "
                         "give either"),
            std::string::npos)
      << errors_;
}

TEST_F(FilterChainConfigTest, SniOrAlpnMatchOnARawChainIsAnError) {
  EXPECT_EQ(Build(Config("    filter_chains:\n"
                         "    - filter_chain_match:\n"
                         "        server_names: [app.example.com]\n"
                         "        application_protocols: [h2]\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:10:9: static_resources.listeners[0].filter_chains[0].filter_chain_match."
            "server_names: matching on SNI/ALPN needs a TLS transport socket\n"
            "f.yaml:11:9: static_resources.listeners[0].filter_chains[0].filter_chain_match."
            "application_protocols: matching on SNI/ALPN needs a TLS transport socket");
}

TEST_F(FilterChainConfigTest, UnknownTransportSocketSuggestsTheNearest) {
  EXPECT_EQ(Build(Config("    filter_chains:\n"
                         "    - transport_socket: {name: phoenix.transport_sockets.raw_bufer}\n",
                         "    transport_socket:\n"
                         "      name: phoenix.transport_socket.raw_buffer\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:6:7: static_resources.clusters[0].transport_socket.name: unknown transport "
            "socket 'phoenix.transport_socket.raw_buffer'; did you mean "
            "'phoenix.transport_sockets.raw_buffer'?\n"
            "f.yaml:11:26: static_resources.listeners[0].filter_chains[0].transport_socket.name: "
            "unknown transport socket 'phoenix.transport_sockets.raw_bufer'; did you mean "
            "'phoenix.transport_sockets.raw_buffer'?");
}

TEST_F(FilterChainConfigTest, ChainsAConnectionCannotTellApartAreAnError) {
  EXPECT_EQ(Build(Config("    filter_chains:\n"
                         "    - name: a\n"
                         "    - name: a\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:10:7: static_resources.listeners[0].filter_chains[1].name: duplicate filter "
            "chain name 'a'\n"
            "f.yaml:10:7: static_resources.listeners[0].filter_chains[1].filter_chain_match: same "
            "filter_chain_match as filter_chains[0]: no connection could tell them apart");
}

TEST_F(FilterChainConfigTest, ANameMayNotBeTakenFromTheDefaultChain) {
  EXPECT_EQ(Build(Config("    filter_chains: [{name: default_filter_chain}]\n"
                         "    default_filter_chain: {}\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:9:5: static_resources.listeners[0].default_filter_chain.name: duplicate "
            "filter chain name 'default_filter_chain'");
}

TEST_F(FilterChainConfigTest, TheDefaultChainTakesNoMatch) {
  EXPECT_EQ(Build(Config("    default_filter_chain:\n"
                         "      filter_chain_match: {server_names: [a.example.com]}\n")),
            nullptr);
  EXPECT_EQ(errors_,
            "f.yaml:9:7: static_resources.listeners[0].default_filter_chain.filter_chain_match: "
            "the default chain serves every connection no other chain matches: it takes no "
            "filter_chain_match");
}

TEST_F(FilterChainConfigTest, ClusterTransportSocket) {
  auto snapshot =
      Build(Config("    http_connection_manager: {}\n",
                   "    transport_socket: {name: phoenix.transport_sockets.raw_buffer}\n"));
  ASSERT_NE(snapshot, nullptr) << errors_;
  EXPECT_FALSE(
      snapshot->clusters.at("app")->transport_socket_factory().ImplementsSecureTransport());
}

}  // namespace
}  // namespace phoenix::config
