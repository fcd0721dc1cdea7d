#include "source/common/logging.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

#include "absl/strings/str_format.h"

namespace phoenix {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error", "off"};

}  // namespace

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  for (int i = 0; i < 6; ++i) {
    if (kNames[i] == name) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  if (name == "warning") {
    *level = LogLevel::kWarn;
    return true;
  }
  return false;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void LogLine(LogLevel level, std::string_view message) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[40];
  size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string prefix(stamp, n);
  prefix += absl::StrFormat(".%03dZ [%s] ", ts.tv_nsec / 1000000, kNames[static_cast<int>(level)]);
  // Every line of a multi-line message carries the stamp and level, so that log tools that
  // read line by line (grep, journald) never see an orphan line.
  std::string line;
  line.reserve(prefix.size() + message.size() + 1);
  while (true) {
    size_t end = message.find('\n');
    line += prefix;
    line.append(message.substr(0, end));
    line.push_back('\n');
    if (end == std::string_view::npos) break;
    message.remove_prefix(end + 1);
    if (message.empty()) break;
  }
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace phoenix
