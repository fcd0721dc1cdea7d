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

TEST(PrincipalTableTest, ParsesRoles) {
  auto table = PrincipalTable::Parse(
      "# certificates\n"
      "spiffe://phoenix.local/ns/ops/sa/admin admin\n"
      "\n"
      "spiffe://phoenix.local/ns/default/sa/web  node:sidecar-1  # the web sidecar\n",
      "principals.txt");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  const Principal* admin = table->Find("spiffe://phoenix.local/ns/ops/sa/admin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->name, "spiffe://phoenix.local/ns/ops/sa/admin");
  EXPECT_TRUE(admin->admin);
  const Principal* web = table->Find("spiffe://phoenix.local/ns/default/sa/web");
  ASSERT_NE(web, nullptr);
  EXPECT_FALSE(web->admin);
  EXPECT_EQ(web->node_id, "sidecar-1");
  EXPECT_EQ(table->Find("spiffe://phoenix.local/ns/default/sa/other"), nullptr);
}

TEST(PrincipalTableTest, ErrorsNameTheLine) {
  auto shape = PrincipalTable::Parse("a admin\ntoken b admin\n", "p.txt");
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().message(), "p.txt:2: want '<principal> <role>'");
  auto role = PrincipalTable::Parse("a node:\n", "p.txt");
  ASSERT_FALSE(role.ok());
  EXPECT_EQ(role.status().message(), "p.txt:1: unknown role 'node:' (admin or node:<node-id>)");
  auto twice = PrincipalTable::Parse("a admin\na node:x\n", "p.txt");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "p.txt:2: the same principal is on an earlier line");
}

CallerCredentials Token(std::string authorization) { return {std::move(authorization), ""}; }
CallerCredentials Certificate(std::string principal) { return {"", std::move(principal)}; }

TEST(AuthenticatorTest, WithoutTokensAnyoneMayDoAnything) {
  Authenticator auth(std::nullopt);
  EXPECT_FALSE(auth.enabled());
  auto admin = auth.ForAdmin(Token(""));
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->unauthenticated);
  auto node = auth.ForNode(Certificate("spiffe://x"));
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(Authenticator::MayServe(*node, "any-node").ok());
}

TEST(AuthenticatorTest, RolesDecide) {
  Authenticator auth(*TokenTable::Parse("adm alice admin\nna sidecar-a node:sidecar-a\n", "t"));
  EXPECT_EQ(auth.ForAdmin(Token("")).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForAdmin(Token("Bearer wrong")).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForAdmin(Token("Bearer na")).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(auth.ForAdmin(Token("Bearer adm")).ok());
  EXPECT_EQ(auth.ForAdmin(Token("Bearer adm"))->name, "alice");

  EXPECT_EQ(auth.ForNode(Token("")).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.ForNode(Token("Bearer adm")).status().code(), absl::StatusCode::kPermissionDenied);
  auto node = auth.ForNode(Token("Bearer na"));
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(Authenticator::MayServe(*node, "sidecar-a").ok());
  EXPECT_EQ(Authenticator::MayServe(*node, "sidecar-b").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticatorTest, CertificatePrincipalsHaveTheirRoles) {
  Authenticator auth(std::nullopt, *PrincipalTable::Parse("spiffe://td/admin admin\n"
                                                          "spiffe://td/web node:sidecar-a\n",
                                                          "p"));
  EXPECT_TRUE(auth.enabled());
  EXPECT_EQ(auth.ForAdmin(Certificate("")).status().code(), absl::StatusCode::kUnauthenticated);
  auto stranger = auth.ForAdmin(Certificate("spiffe://td/stranger"));
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(stranger.status().message(),
            "the client certificate of spiffe://td/stranger has no role");
  auto web_as_admin = auth.ForAdmin(Certificate("spiffe://td/web"));
  EXPECT_EQ(web_as_admin.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(web_as_admin.status().message(),
            "spiffe://td/web is not an admin (its role is node:sidecar-a)");
  auto admin = auth.ForAdmin(Certificate("spiffe://td/admin"));
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->name, "spiffe://td/admin");

  EXPECT_EQ(auth.ForNode(Certificate("spiffe://td/admin")).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto node = auth.ForNode(Certificate("spiffe://td/web"));
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(Authenticator::MayServe(*node, "sidecar-a").ok());
  auto other = Authenticator::MayServe(*node, "sidecar-b");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(other.message(), "spiffe://td/web may only ask for node sidecar-a, not sidecar-b");
  // Without --tokens a bearer token is no credential: the certificate decides.
  EXPECT_TRUE(auth.ForAdmin({"Bearer adm", "spiffe://td/admin"}).ok());
}

TEST(AuthenticatorTest, ABearerTokenGoesBeforeTheCertificate) {
  Authenticator auth(*TokenTable::Parse("na sidecar-a node:sidecar-a\n", "t"),
                     *PrincipalTable::Parse("spiffe://td/admin admin\n", "p"));
  auto by_token = auth.ForNode({"Bearer na", "spiffe://td/admin"});
  ASSERT_TRUE(by_token.ok());
  EXPECT_EQ(by_token->name, "sidecar-a");
  EXPECT_EQ(auth.ForAdmin({"Bearer wrong", "spiffe://td/admin"}).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto by_certificate = auth.ForAdmin(Certificate("spiffe://td/admin"));
  ASSERT_TRUE(by_certificate.ok());
  EXPECT_EQ(by_certificate->name, "spiffe://td/admin");
  EXPECT_EQ(auth.ForAdmin(Token("")).status().message(),
            "no bearer token (authorization: Bearer <token>) and no client certificate");
}

TEST(AuthenticatorTest, LoadNamesAMissingFile) {
  auto loaded = Authenticator::Load("", "/nonexistent/principals");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(), "/nonexistent/principals: cannot read the principals file");
  auto open = Authenticator::Load("", "");
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE((*open)->enabled());
}

}  // namespace
}  // namespace phoenix::control_plane
