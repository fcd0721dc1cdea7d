#include "source/common/duration.h"

#include "gtest/gtest.h"

namespace phoenix {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

google::protobuf::Duration MakeDuration(int64_t seconds, int32_t nanos) {
  google::protobuf::Duration duration;
  duration.set_seconds(seconds);
  duration.set_nanos(nanos);
  return duration;
}

TEST(DurationTest, ConvertsAndTruncates) {
  EXPECT_EQ(ToMilliseconds(MakeDuration(2, 500000000)), milliseconds(2500));
  EXPECT_EQ(ToMilliseconds(MakeDuration(0, 999999)), milliseconds(0));
  EXPECT_EQ(ToMicroseconds(MakeDuration(1, 1999)), microseconds(1000001));
  EXPECT_EQ(ToMicroseconds(MakeDuration(0, 250000000)), microseconds(250000));
  // Negative durations carry the sign in both fields.
  EXPECT_EQ(ToMilliseconds(MakeDuration(-1, -500000000)), milliseconds(-1500));
  // The longest Duration (10,000 years) fits.
  EXPECT_EQ(ToMicroseconds(MakeDuration(315576000000, 0)).count(), 315576000000000000);
}

TEST(DurationTest, UnsetReadsAsZero) {
  google::protobuf::Duration unset;
  EXPECT_EQ(ToMilliseconds(unset), milliseconds(0));
  EXPECT_EQ(ToMicroseconds(unset), microseconds(0));
}

TEST(DurationTest, FallbackUnlessPositive) {
  EXPECT_EQ(ToMillisecondsOr(google::protobuf::Duration(), milliseconds(5000)), milliseconds(5000));
  EXPECT_EQ(ToMillisecondsOr(MakeDuration(0, 0), milliseconds(7)), milliseconds(7));
  EXPECT_EQ(ToMillisecondsOr(MakeDuration(-1, 0), milliseconds(7)), milliseconds(7));
  EXPECT_EQ(ToMillisecondsOr(MakeDuration(0, 100000), milliseconds(7)), milliseconds(7));  // 0.1ms
  EXPECT_EQ(ToMillisecondsOr(MakeDuration(0, 2000000), milliseconds(7)), milliseconds(2));
}

}  // namespace
}  // namespace phoenix
