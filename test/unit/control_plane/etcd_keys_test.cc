#include "source/control_plane/etcd_keys.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

TEST(EtcdKeysTest, LayoutUnderThePrefix) {
  EtcdKeys keys("/phoenix/");
  EXPECT_EQ(keys.Version(), "/phoenix/version");
  EXPECT_EQ(keys.File("common.yaml"), "/phoenix/files/common.yaml");
  EXPECT_EQ(keys.File("nodes/sidecar-1/x.yaml"), "/phoenix/files/nodes/sidecar-1/x.yaml");
  EXPECT_EQ(keys.History(7), "/phoenix/history/00000000000000000007");
  EXPECT_EQ(keys.Audit(absl::FromUnixNanos(1700000000123456789), "ab12cd34", 5),
            "/phoenix/audit/01700000000123456789-ab12cd34-5");
}

TEST(EtcdKeysTest, NamesReadBack) {
  EtcdKeys keys("/p/");
  EXPECT_EQ(keys.PathOfFile("/p/files/nodes/n/x.yaml"), "nodes/n/x.yaml");
  EXPECT_EQ(keys.PathOfFile("/p/files/"), std::nullopt);
  EXPECT_EQ(keys.PathOfFile("/p/version"), std::nullopt);
  EXPECT_EQ(keys.VersionOfHistory(keys.History(42)), 42u);
  EXPECT_EQ(keys.VersionOfHistory("/p/history/x"), std::nullopt);
}

TEST(EtcdKeysTest, HistoryAndAuditKeysSortAsTheirNumbers) {
  EtcdKeys keys("/p/");
  EXPECT_LT(keys.History(9), keys.History(10));
  EXPECT_LT(keys.Audit(absl::FromUnixSeconds(9), "a", 0),
            keys.Audit(absl::FromUnixSeconds(10), "a", 0));
}

TEST(EtcdKeysTest, PrefixRangeEndCoversThePrefix) {
  EXPECT_EQ(PrefixRangeEnd("/phoenix/"), "/phoenix0");
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdKeysTest, VersionsAreDecimal) {
  EXPECT_EQ(EncodeVersion(12), "12");
  EXPECT_EQ(DecodeVersion("12"), 12u);
  EXPECT_EQ(DecodeVersion(""), std::nullopt);
  EXPECT_EQ(DecodeVersion("-1"), std::nullopt);
  EXPECT_EQ(DecodeVersion("1 "), std::nullopt);
  EXPECT_EQ(DecodeVersion("99999999999999999999999"), std::nullopt);
}

}  // namespace
}  // namespace phoenix::control_plane
