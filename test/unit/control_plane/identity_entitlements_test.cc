#include "source/control_plane/identity_entitlements.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

constexpr const char* kFrontend = "spiffe://phoenix.local/ns/shop/sa/frontend";
constexpr const char* kAdmin = "spiffe://phoenix.local/ns/ops/sa/admin";

TEST(IdentityEntitlementsTest, ANodeGetsWhatItsLinesGrantItsFirstByDefault) {
  auto table = IdentityEntitlements::Parse(
      std::string("# node identity\nweb-1 ") + kFrontend + "\nweb-1 " + kAdmin + "\n", "identities",
      "phoenix.local");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table->Grant("web-1", ""), kFrontend);
  EXPECT_EQ(*table->Grant("web-1", kAdmin), kAdmin);
  auto other = table->Grant("web-1", "spiffe://phoenix.local/ns/shop/sa/backend");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(other.status().message(),
            "node web-1 may not hold spiffe://phoenix.local/ns/shop/sa/backend");
  auto unknown = table->Grant("db-1", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "node db-1 may hold no identity (not in the identities file)");
}

TEST(IdentityEntitlementsTest, WithoutAFileEachNodeHoldsItsDefaultOnly) {
  IdentityEntitlements defaults("mesh.test");
  EXPECT_EQ(*defaults.Grant("web-1", ""), "spiffe://mesh.test/ns/default/sa/web-1");
  EXPECT_TRUE(defaults.Grant("web-1", "spiffe://mesh.test/ns/default/sa/web-1").ok());
  EXPECT_FALSE(defaults.Grant("web-1", "spiffe://mesh.test/ns/default/sa/web-2").ok());
  // A node id that makes no SPIFFE path gets nothing.
  EXPECT_FALSE(defaults.Grant("web 1?", "").ok());
  EXPECT_FALSE(defaults.Grant("", "").ok());
  EXPECT_FALSE(defaults.Grant("..", "").ok());
}

TEST(IdentityEntitlementsTest, ErrorsNameTheLine) {
  auto foreign = IdentityEntitlements::Parse("web-1 spiffe://other.domain/ns/a/sa/b\n", "ids",
                                             "phoenix.local");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().message(),
            "ids:1: 'spiffe://other.domain/ns/a/sa/b' is not a SPIFFE ID of trust domain "
            "phoenix.local (spiffe://phoenix.local/ns/<namespace>/sa/<service>)");
  auto shape = IdentityEntitlements::Parse("\nweb-1\n", "ids", "phoenix.local");
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().message(), "ids:2: want '<node-id> <spiffe-id>'");
}

TEST(IdentityEntitlementsTest, SpiffeIdsAreCheckedForTheirDomainAndPath) {
  EXPECT_TRUE(IsSpiffeIdIn("spiffe://d/ns/a/sa/b", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://dd/ns/a", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/ns/a?x=1", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("https://d/ns/a", "d"));
  // Empty and dot segments name nothing (or another identity, once normalized).
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/ns/default/sa/", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/ns//sa/b", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/ns/default/sa/../../ns/shop/sa/web", "d"));
  EXPECT_FALSE(IsSpiffeIdIn("spiffe://d/./a", "d"));
  EXPECT_TRUE(IsSpiffeIdIn("spiffe://d/ns/a.b/sa/c..d", "d"));
}

}  // namespace
}  // namespace phoenix::control_plane
