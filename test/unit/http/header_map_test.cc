#include "source/http/header_map.h"

#include <string>

#include "gtest/gtest.h"

namespace phoenix::http {
namespace {

std::string NaiveLowercase(std::string_view in) {
  std::string out(in);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

TEST(CopyLowercaseTest, MatchesByteByByteForEveryLengthAndByte) {
  // Every byte value, at every position of strings of 0 to 24 bytes, including the
  // neighbours of 'A'..'Z' ('@', '[', '`', '{') and bytes >= 0x80 that must stay as they are.
  for (size_t size = 0; size <= 24; ++size) {
    for (int byte = 0; byte < 256; ++byte) {
      for (size_t at = 0; at < size; ++at) {
        std::string in(size, 'Q');
        in[at] = static_cast<char>(byte);
        std::string out(size, '\0');
        CopyLowercase(in.data(), in.size(), out.data());
        ASSERT_EQ(out, NaiveLowercase(in)) << "size " << size << " byte " << byte << " at " << at;
      }
    }
  }
}

TEST(HeaderMapTest, WellKnownHeadersAreIndexedWhicheverWayTheyAreAdded) {
  HeaderMap map;
  map.Add("Content-Type", "text/plain");
  map.AddStored("x-request-id", "id", WellKnownHeader::kXRequestId);
  map.AddStored("host", "h");
  ASSERT_NE(map.Get(WellKnownHeader::kContentType), nullptr);
  EXPECT_EQ(*map.Get(WellKnownHeader::kContentType), "text/plain");
  ASSERT_NE(map.Get(WellKnownHeader::kXRequestId), nullptr);
  EXPECT_EQ(*map.Get(WellKnownHeader::kXRequestId), "id");
  ASSERT_NE(map.Get(WellKnownHeader::kHost), nullptr);
  EXPECT_EQ(*map.Get(WellKnownHeader::kHost), "h");
  EXPECT_EQ(map.Remove("content-type"), 1u);
  EXPECT_EQ(map.Get(WellKnownHeader::kContentType), nullptr);
  EXPECT_EQ(*map.Get(WellKnownHeader::kXRequestId), "id");  // Reindexed.
}

TEST(HeaderMapTest, EveryWellKnownNameClassifiesAsItself) {
  for (int i = 0; i < static_cast<int>(WellKnownHeader::kCount); ++i) {
    auto header = static_cast<WellKnownHeader>(i);
    EXPECT_EQ(ClassifyHeader(WellKnownName(header)), header) << WellKnownName(header);
  }
  EXPECT_EQ(ClassifyHeader("x-other"), WellKnownHeader::kCount);
  EXPECT_EQ(ClassifyHeader("hosts"), WellKnownHeader::kCount);
  EXPECT_EQ(ClassifyHeader("Host"), WellKnownHeader::kCount);  // Names arrive lowercased.
}

TEST(HeaderMapTest, HopByHopHeadersAreTheConnectionLevelOnes) {
  for (std::string_view name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                "te", "trailer", "upgrade"}) {
    EXPECT_TRUE(IsHopByHopHeader(name)) << name;
  }
  for (std::string_view name : {"host", "content-length", "x-forwarded-for", "x-other"}) {
    EXPECT_FALSE(IsHopByHopHeader(name)) << name;
  }
}

}  // namespace
}  // namespace phoenix::http
