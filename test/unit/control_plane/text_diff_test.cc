#include "source/control_plane/text_diff.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

TEST(UnifiedDiffTest, EqualTextsHaveNoDiff) {
  EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n"), "");
  EXPECT_EQ(UnifiedDiff("", ""), "");
}

TEST(UnifiedDiffTest, OneChangedLineWithContext) {
  std::string before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  std::string after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  EXPECT_EQ(UnifiedDiff(before, after), "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(UnifiedDiffTest, AddedFromNothing) {
  EXPECT_EQ(UnifiedDiff("", "a\nb\n"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
}

TEST(UnifiedDiffTest, RemovedToNothing) {
  EXPECT_EQ(UnifiedDiff("a\nb\n", ""), "@@ -1,2 +0,0 @@\n-a\n-b\n");
}

TEST(UnifiedDiffTest, DistantChangesMakeTwoHunks) {
  std::string before, after;
  for (int i = 1; i <= 20; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 ? "two" : i == 18 ? "eighteen" : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(UnifiedDiff(before, after, 1),
            "@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n"
            "@@ -17,3 +17,3 @@\n 17\n-18\n+eighteen\n 19\n");
}

TEST(UnifiedDiffTest, NearChangesShareAHunk) {
  EXPECT_EQ(UnifiedDiff("a\nb\nc\nd\n", "A\nb\nc\nD\n", 1),
            "@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n-d\n+D\n");
}

}  // namespace
}  // namespace phoenix::control_plane
