#include "source/filters/local_ratelimit/token_bucket.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/common/simulated_time_source.h"

namespace phoenix::filters {
namespace {

constexpr uint64_t kSecond = 1000000;

TEST(TokenBucketTest, StartsFullAndRefillsPerInterval) {
  TokenBucket bucket(/*max_tokens=*/3, /*tokens_per_fill=*/2, /*fill_interval_us=*/kSecond, 0);
  EXPECT_TRUE(bucket.TryTake(0));
  EXPECT_TRUE(bucket.TryTake(0));
  EXPECT_TRUE(bucket.TryTake(0));
  EXPECT_FALSE(bucket.TryTake(kSecond - 1));
  EXPECT_EQ(bucket.UntilNextFillUs(kSecond - 1), 1u);
  EXPECT_TRUE(bucket.TryTake(kSecond));  // +2
  EXPECT_TRUE(bucket.TryTake(kSecond));
  EXPECT_FALSE(bucket.TryTake(kSecond));
  // Long idle: capped at max_tokens, and fills keep their phase.
  EXPECT_TRUE(bucket.TryTake(100 * kSecond + 10));
  EXPECT_EQ(bucket.tokens(), 2u);
  EXPECT_EQ(bucket.UntilNextFillUs(100 * kSecond + 10), kSecond - 10);
}

// As the filter uses it: the time comes from the dispatcher's TimeSource.
TEST(TokenBucketTest, OnTheSimulatedClock) {
  SimulatedTimeSource time;
  time.Advance(std::chrono::hours(1));  // Any starting point.
  TokenBucket bucket(/*max_tokens=*/2, /*tokens_per_fill=*/1, /*fill_interval_us=*/kSecond,
                     time.MonotonicUs());
  EXPECT_TRUE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_TRUE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_FALSE(bucket.TryTake(time.MonotonicUs()));
  time.Advance(std::chrono::milliseconds(999));
  EXPECT_FALSE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_EQ(bucket.UntilNextFillUs(time.MonotonicUs()), 1000u);
  time.Advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_FALSE(bucket.TryTake(time.MonotonicUs()));
  time.Advance(std::chrono::seconds(10));  // Refills up to max_tokens only.
  EXPECT_TRUE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_TRUE(bucket.TryTake(time.MonotonicUs()));
  EXPECT_FALSE(bucket.TryTake(time.MonotonicUs()));
}

TEST(KeyedTokenBucketsTest, KeysHaveSeparateBuckets) {
  KeyedTokenBuckets buckets(1, 1, kSecond, 100);
  EXPECT_TRUE(buckets.Take("a", 0).allowed);
  EXPECT_FALSE(buckets.Take("a", 0).allowed);
  EXPECT_TRUE(buckets.Take("b", 0).allowed);
  auto result = buckets.Take("a", kSecond / 4);
  EXPECT_FALSE(result.allowed);
  EXPECT_EQ(result.reset_us, 3 * kSecond / 4);
}

TEST(KeyedTokenBucketsTest, HundredThousandKeysStayBounded) {
  StatsStore stats;
  Gauge& keys = stats.gauge("keys");
  KeyedTokenBuckets buckets(5, 1, kSecond, 1000, &keys);
  for (int i = 0; i < 100000; ++i) buckets.Take(absl::StrCat("client-", i), 0);
  EXPECT_LE(buckets.size(), 1000u);
  EXPECT_GE(buckets.size(), 900u);
  EXPECT_EQ(static_cast<size_t>(keys.Value()), buckets.size());
  // The most recent key is still remembered (its bucket was used once).
  EXPECT_EQ(buckets.Take("client-99999", 0).remaining, 3u);
}

TEST(KeyedTokenBucketsTest, SmallLimitsAreExact) {
  KeyedTokenBuckets buckets(1, 1, kSecond, 3);
  for (int i = 0; i < 50; ++i) buckets.Take(absl::StrCat(i), 0);
  EXPECT_EQ(buckets.size(), 3u);
}

}  // namespace
}  // namespace phoenix::filters
