#pragma once

#include <chrono>

#include "google/protobuf/duration.pb.h"

namespace phoenix {

// A google.protobuf.Duration (how the config writes every duration) in the unit the code
// counts in, truncated toward zero. An unset field reads as zero.
inline std::chrono::milliseconds ToMilliseconds(const google::protobuf::Duration& duration) {
  return std::chrono::milliseconds(duration.seconds() * 1000 + duration.nanos() / 1000000);
}

inline std::chrono::microseconds ToMicroseconds(const google::protobuf::Duration& duration) {
  return std::chrono::microseconds(duration.seconds() * 1000000 + duration.nanos() / 1000);
}

// ToMilliseconds(duration) if positive, else `fallback`: for settings where unset (or zero)
// means the default.
inline std::chrono::milliseconds ToMillisecondsOr(const google::protobuf::Duration& duration,
                                                  std::chrono::milliseconds fallback) {
  std::chrono::milliseconds value = ToMilliseconds(duration);
  return value.count() > 0 ? value : fallback;
}

}  // namespace phoenix
