#include "source/common/random.h"

#include <array>
#include <set>

#include "gtest/gtest.h"

namespace phoenix {
namespace {

TEST(FastRandomTest, SameSeedSameSequenceOtherSeedOther) {
  FastRandom a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a();
    EXPECT_EQ(x, b());
    EXPECT_NE(x, c());
  }
}

TEST(FastRandomTest, DrawsAreSpreadOverEveryBitAndBucket) {
  FastRandom random(7);
  constexpr int kDraws = 64000;
  std::array<int, 64> ones{};
  std::array<int, 16> buckets{};
  std::set<uint64_t> seen;
  for (int i = 0; i < kDraws; ++i) {
    uint64_t x = random();
    seen.insert(x);
    for (int bit = 0; bit < 64; ++bit) ones[bit] += (x >> bit) & 1;
    ++buckets[x % 16];
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kDraws));  // No repeats in 64k 64-bit draws.
  for (int bit = 0; bit < 64; ++bit) {
    EXPECT_NEAR(ones[bit], kDraws / 2, kDraws / 20) << "bit " << bit;  // Within 10%.
  }
  for (int count : buckets) EXPECT_NEAR(count, kDraws / 16, kDraws / 80);
}

TEST(FastRandomTest, DefaultSeedsDiffer) {
  FastRandom a, b;
  EXPECT_NE(a(), b());
}

}  // namespace
}  // namespace phoenix
