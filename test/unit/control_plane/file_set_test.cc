#include "source/control_plane/file_set.h"

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

TEST(FileSetTest, SortedByPathAndTheLaterOfTwoWins) {
  FileSet files = SortedFileSet({{"b.yaml", "1"}, {"a.yaml", "2"}, {"b.yaml", "3"}});
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "a.yaml");
  EXPECT_EQ(files[1].path, "b.yaml");
  EXPECT_EQ(files[1].content, "3");
}

TEST(FileSetTest, MergeReplacesSamePathsAndKeepsTheOthers) {
  FileSet merged =
      MergeFileSets({{"a.yaml", "a"}, {"b.yaml", "b"}}, {{"b.yaml", "B"}, {"nodes/n/c.yaml", "c"}});
  EXPECT_TRUE(
      SameFileSets(merged, FileSet{{"a.yaml", "a"}, {"b.yaml", "B"}, {"nodes/n/c.yaml", "c"}}));
  EXPECT_FALSE(SameFileSets(merged, FileSet{{"a.yaml", "a"}}));
}

TEST(FileSetTest, EncodingRoundTripsAnyContent) {
  FileSet files = {{"a.yaml", ""},
                   {"nodes/n1/b.yaml", "line 1\nline 2\n\n3\n"},
                   {"z.yaml", "no newline at the end"}};
  std::string text = EncodeFileSet(files);
  EXPECT_EQ(text.rfind("a.yaml\n0\n\nnodes/n1/b.yaml\n", 0), 0u) << text;
  auto decoded = DecodeFileSet(text);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(SameFileSets(*decoded, files));
  EXPECT_TRUE(DecodeFileSet("").ok());
  EXPECT_TRUE(DecodeFileSet("").value().empty());
}

TEST(FileSetTest, DecodingRefusesWhatEncodingDoesNotMake) {
  EXPECT_FALSE(DecodeFileSet("a.yaml").ok());
  EXPECT_FALSE(DecodeFileSet("a.yaml\nten\nx\n").ok());
  EXPECT_FALSE(DecodeFileSet("a.yaml\n10\nshort\n").ok());
  EXPECT_FALSE(DecodeFileSet("a.yaml\n1\nxy").ok());
}

}  // namespace
}  // namespace phoenix::control_plane
