#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "source/common/time_source.h"

namespace phoenix::server {

// One resource the overload manager watches, read as a fraction of its limit (1.0: at the
// limit; CPU: every core of the host busy). Read() is called on the main thread once per
// refresh interval; nullopt when it cannot tell (no baseline yet, /proc unreadable).
class ResourceMonitor {
 public:
  virtual ~ResourceMonitor() = default;
  virtual std::optional<double> Read() = 0;
};

// CPU time used per wall-clock time, of all the host's cores, between two readings.
class CpuTimeRate {
 public:
  CpuTimeRate(TimeSource& clock, int cores) : clock_(clock), cores_(cores) {}
  // The rate since the previous call, given the CPU seconds used so far; nullopt the first
  // time.
  std::optional<double> Next(double cpu_seconds);

 private:
  TimeSource& clock_;
  int cores_;
  std::optional<double> last_cpu_;
  MonotonicTime last_time_;
};

// Phoenix's own CPU (every thread), from getrusage.
class ProcessCpuMonitor : public ResourceMonitor {
 public:
  ProcessCpuMonitor(TimeSource& clock, int cores) : rate_(clock, cores) {}
  std::optional<double> Read() override;

 private:
  CpuTimeRate rate_;
};

// Phoenix's resident set size, of `limit_bytes`, from /proc/self/statm.
class ResidentMemoryMonitor : public ResourceMonitor {
 public:
  explicit ResidentMemoryMonitor(uint64_t limit_bytes) : limit_bytes_(limit_bytes) {}
  std::optional<double> Read() override;

 private:
  uint64_t limit_bytes_;
};

// The CPU of a changing set of processes together (the supervised apps' instances), from
// /proc/<pid>/stat. A process seen for the first time counts from then on; one that exited
// is dropped.
class ProcessesCpuMonitor : public ResourceMonitor {
 public:
  using PidSource = std::function<std::vector<pid_t>()>;
  ProcessesCpuMonitor(TimeSource& clock, int cores, PidSource pids);
  std::optional<double> Read() override;

 private:
  TimeSource& clock_;
  int cores_;
  PidSource pids_;
  std::map<pid_t, double> last_cpu_seconds_;
  MonotonicTime last_time_;
  bool has_baseline_ = false;
};

// The CPU seconds (user + system) `pid` has used, from /proc/<pid>/stat; nullopt if gone.
std::optional<double> ProcessCpuSeconds(pid_t pid);

}  // namespace phoenix::server
