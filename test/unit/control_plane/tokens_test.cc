#include "source/control_plane/tokens.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

TEST(TokenTableTest, ParsesRolesCommentsAndBlankLines) {
  auto table = TokenTable::Parse(
      "# who may do what\n"
      "\n"
      "s3cret   alice   admin\n"
      "tok-a sidecar-a node:sidecar-a  # a proxy\n",
      "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  const Principal* alice = table->Find("s3cret");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->name, "alice");
  EXPECT_TRUE(alice->admin);
  const Principal* node = table->Find("tok-a");
  ASSERT_NE(node, nullptr);
  EXPECT_FALSE(node->admin);
  EXPECT_EQ(node->node_id, "sidecar-a");
  EXPECT_EQ(table->Find("nope"), nullptr);
}

TEST(TokenTableTest, ErrorsNameTheLine) {
  auto missing = TokenTable::Parse("a b admin\nonly-two words\n", "t.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "t.txt:2: want '<token> <principal> <role>'");
  auto role = TokenTable::Parse("a b root\n", "t.txt");
  ASSERT_FALSE(role.ok());
  EXPECT_EQ(role.status().message(), "t.txt:1: unknown role 'root' (admin or node:<node-id>)");
  EXPECT_FALSE(TokenTable::Parse("a b node:\n", "t.txt").ok());
  auto twice = TokenTable::Parse("a b admin\na c admin\n", "t.txt");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "t.txt:2: the same token is on an earlier line");
}

TEST(BearerTokenTest, TakesTheTokenOfABearerHeader) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(AuthenticatorTest, WithoutTokensAnyoneMayDoAnything) {
  Authenticator auth(std::nullopt);
  EXPECT_FALSE(auth.enabled());
  auto admin = auth.ForAdmin("");
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->unauthenticated);
  auto node = auth.ForNode("");
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(Authenticator::MayServe(*node, "any-node").ok());
}

TEST(AuthenticatorTest, RolesDecide) {
  Authenticator auth(*TokenTable::Parse("adm alice admin\nna sidecar-a node:sidecar-a\n", "t"));
  EXPECT_EQ(auth.ForAdmin("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForAdmin("Bearer wrong").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForAdmin("Bearer na").status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(auth.ForAdmin("Bearer adm").ok());
  EXPECT_EQ(auth.ForAdmin("Bearer adm")->name, "alice");

  EXPECT_EQ(auth.ForNode("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForNode("Bearer adm").status().code(), absl::StatusCode::kPermissionDenied);
  auto node = auth.ForNode("Bearer na");
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(Authenticator::MayServe(*node, "sidecar-a").ok());
  EXPECT_EQ(Authenticator::MayServe(*node, "sidecar-b").code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace phoenix::control_plane
