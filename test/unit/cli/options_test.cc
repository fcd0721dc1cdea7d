#include "source/cli/options.h"

#include "gtest/gtest.h"

namespace phoenix::cli {
namespace {

TEST(ParseArgsTest, GlobalFlagsAnywhere) {
  auto options =
      ParseArgs({"apply", "-f", "a.yaml", "--server", "h:1", "-f", "dir", "--token-file", "t"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->command, "apply");
  EXPECT_EQ(options->server, "h:1");
  EXPECT_EQ(options->token_file, "t");
  EXPECT_EQ(options->files, (std::vector<std::string>{"a.yaml", "dir"}));
}

TEST(ParseArgsTest, DefaultServer) {
  auto options = ParseArgs({"status", "-o", "json"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->server, "127.0.0.1:18000");
  EXPECT_EQ(options->output, "json");
}

TEST(ParseArgsTest, GetTakesATypeAndAName) {
  auto options = ParseArgs({"get", "clusters", "app", "-o", "yaml"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->args, (std::vector<std::string>{"clusters", "app"}));
}

TEST(ParseArgsTest, UsageErrors) {
  EXPECT_FALSE(ParseArgs({}).ok());
  EXPECT_FALSE(ParseArgs({"frobnicate"}).ok());
  EXPECT_FALSE(ParseArgs({"apply"}).ok());  // no -f
  EXPECT_FALSE(ParseArgs({"get"}).ok());    // no type
  EXPECT_FALSE(ParseArgs({"status", "-o", "xml"}).ok());
  EXPECT_FALSE(ParseArgs({"status", "--bogus"}).ok());
  EXPECT_FALSE(ParseArgs({"status", "--server"}).ok());  // no value
  EXPECT_FALSE(ParseArgs({"status", "--since", "1h"}).ok());
}

TEST(ParseArgsTest, RollbackAndCertsRotate) {
  auto rollback = ParseArgs({"rollback", "7"});
  ASSERT_TRUE(rollback.ok());
  EXPECT_EQ(rollback->args, (std::vector<std::string>{"7"}));
  EXPECT_FALSE(ParseArgs({"rollback", "latest"}).ok());
  EXPECT_FALSE(ParseArgs({"rollback"}).ok());
  auto rotate = ParseArgs({"certs", "rotate", "server", "--cert", "c.pem", "--key", "k.pem"});
  ASSERT_TRUE(rotate.ok()) << rotate.status();
  EXPECT_EQ(rotate->cert, "c.pem");
  EXPECT_EQ(rotate->key, "k.pem");
  EXPECT_FALSE(ParseArgs({"certs", "rotate", "server", "--cert", "c.pem"}).ok());  // no key
  EXPECT_FALSE(ParseArgs({"certs", "renew", "server", "--cert", "c", "--key", "k"}).ok());
  EXPECT_FALSE(ParseArgs({"status", "--cert", "c.pem"}).ok());
}

TEST(ParseArgsTest, CaRotateWaitsOrAborts) {
  auto wait = ParseArgs({"ca", "rotate", "--wait"});
  ASSERT_TRUE(wait.ok()) << wait.status();
  EXPECT_TRUE(wait->wait);
  EXPECT_FALSE(wait->abort);
  auto abort = ParseArgs({"ca", "rotate", "--abort", "-o", "json"});
  ASSERT_TRUE(abort.ok()) << abort.status();
  EXPECT_TRUE(abort->abort);
  EXPECT_EQ(abort->output, "json");
  EXPECT_FALSE(ParseArgs({"ca", "rotate", "--abort", "--wait"}).ok());
  EXPECT_FALSE(ParseArgs({"ca", "status", "--abort"}).ok());
  EXPECT_FALSE(ParseArgs({"ca", "status", "--wait"}).ok());
}

TEST(ParseArgsTest, TlsFlags) {
  auto options =
      ParseArgs({"--ca", "ca.pem", "status", "--client-cert", "c.pem", "--client-key", "k.pem"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->ca, "ca.pem");
  EXPECT_EQ(options->client_cert, "c.pem");
  EXPECT_EQ(options->client_key, "k.pem");
  auto alone = ParseArgs({"status", "--client-cert", "c.pem"});
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.status().message(), "--client-cert and --client-key go together");
  // A rotation's certificate and phoenixctl's own are different flags.
  auto rotate = ParseArgs({"certs", "rotate", "s", "--cert", "new.pem", "--key", "new.key",
                           "--client-cert", "c.pem", "--client-key", "k.pem"});
  ASSERT_TRUE(rotate.ok()) << rotate.status();
  EXPECT_EQ(rotate->cert, "new.pem");
  EXPECT_EQ(rotate->client_cert, "c.pem");
}

TEST(ParseSinceTest, DurationsAndTimes) {
  absl::Time now = absl::FromUnixSeconds(1000000);
  EXPECT_EQ(*ParseSince("90s", now), now - absl::Seconds(90));
  EXPECT_EQ(*ParseSince("1h30m", now), now - absl::Minutes(90));
  EXPECT_EQ(*ParseSince("1970-01-01T00:00:10Z", now), absl::FromUnixSeconds(10));
  EXPECT_FALSE(ParseSince("yesterday", now).ok());
  EXPECT_FALSE(ParseSince("-5m", now).ok());
}

}  // namespace
}  // namespace phoenix::cli
