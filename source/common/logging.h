#pragma once

#include <string_view>

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix {

// Process log (stderr). One write(2) per line, so lines from different threads never
// interleave. The level is process-wide and set once at startup.
enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

bool ParseLogLevel(std::string_view name, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view message);

}  // namespace phoenix

#define PHX_LOG(level, ...)                                                      \
  do {                                                                           \
    if (::phoenix::LogEnabled(::phoenix::LogLevel::level)) {                     \
      ::phoenix::LogLine(::phoenix::LogLevel::level, absl::StrCat(__VA_ARGS__)); \
    }                                                                            \
  } while (0)
