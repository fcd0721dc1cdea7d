#include "source/config/filter_chain_manager.h"

#include "gtest/gtest.h"

namespace phoenix::config {
namespace {

FilterChain Chain(std::string name, std::vector<std::string> server_names,
                  std::vector<std::string> application_protocols = {}) {
  FilterChain chain;
  chain.name = std::move(name);
  chain.server_names = std::move(server_names);
  chain.application_protocols = std::move(application_protocols);
  return chain;
}

// The name of the chain chosen for `server_name` and `alpn`, or "(none)".
std::string Chosen(const FilterChainManager& manager, std::string_view server_name,
                   std::vector<std::string> alpn = {}) {
  const FilterChain* chain = manager.Select(server_name, alpn);
  return chain != nullptr ? chain->name : "(none)";
}

FilterChainManager Manager(bool with_default) {
  std::vector<FilterChain> chains;
  chains.push_back(Chain("exact", {"A.example.com"}));  // Names compare lowercased.
  chains.push_back(Chain("wildcard", {"*.example.com"}));
  chains.push_back(Chain("deeper", {"*.b.example.com"}));
  chains.push_back(Chain("h2-only", {"api.test"}, {"h2"}));
  chains.push_back(Chain("api", {"api.test"}));
  chains.push_back(Chain("alpn", {}, {"http/1.1"}));
  return FilterChainManager(
      std::move(chains),
      with_default ? std::make_unique<FilterChain>(Chain("default", {})) : nullptr);
}

TEST(FilterChainManagerTest, ExactNameBeatsWildcards) {
  EXPECT_EQ(Chosen(Manager(true), "a.example.com"), "exact");
}

TEST(FilterChainManagerTest, TheLongestWildcardWins) {
  FilterChainManager manager = Manager(true);
  EXPECT_EQ(Chosen(manager, "x.example.com"), "wildcard");
  EXPECT_EQ(Chosen(manager, "x.b.example.com"), "deeper");
  EXPECT_EQ(Chosen(manager, "y.x.example.com"), "wildcard");
  EXPECT_EQ(Chosen(manager, "example.com"), "default");  // A wildcard needs a label.
}

TEST(FilterChainManagerTest, AlpnChoosesAmongTheChainsTheNameSelected) {
  FilterChainManager manager = Manager(true);
  EXPECT_EQ(Chosen(manager, "api.test", {"h2", "http/1.1"}), "h2-only");
  EXPECT_EQ(Chosen(manager, "api.test", {"http/1.1"}), "api");
  EXPECT_EQ(Chosen(manager, "api.test"), "api");
}

TEST(FilterChainManagerTest, NoNameFallsToChainsWithoutNamesThenTheDefault) {
  FilterChainManager manager = Manager(true);
  EXPECT_EQ(Chosen(manager, "", {"http/1.1"}), "alpn");
  EXPECT_EQ(Chosen(manager, "unknown.test", {"http/1.1"}), "alpn");
  EXPECT_EQ(Chosen(manager, "unknown.test"), "default");
  EXPECT_EQ(Chosen(manager, ""), "default");
}

TEST(FilterChainManagerTest, WithoutADefaultAnUnmatchedHelloGetsNoChain) {
  FilterChainManager manager = Manager(false);
  EXPECT_EQ(Chosen(manager, "unknown.test"), "(none)");
  EXPECT_EQ(manager.default_chain(), nullptr);
  EXPECT_TRUE(manager.needs_client_hello());
}

TEST(FilterChainManagerTest, ChainsWithoutCriteriaNeedNoClientHello) {
  std::vector<FilterChain> chains;
  chains.push_back(Chain("only", {}));
  FilterChainManager manager(std::move(chains), nullptr);
  EXPECT_FALSE(manager.needs_client_hello());
  EXPECT_EQ(manager.Select().name, "only");
}

}  // namespace
}  // namespace phoenix::config
