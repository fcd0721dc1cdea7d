#include "source/server/resource_monitor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace phoenix::server {
namespace {

double Seconds(MonotonicTime from, MonotonicTime to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

std::optional<double> CpuTimeRate::Next(double cpu_seconds) {
  MonotonicTime now = clock_.MonotonicNow();
  std::optional<double> rate;
  if (last_cpu_) {
    double wall = Seconds(last_time_, now);
    if (wall > 0) rate = (cpu_seconds - *last_cpu_) / (wall * cores_);
  }
  last_cpu_ = cpu_seconds;
  last_time_ = now;
  return rate;
}

std::optional<double> ProcessCpuMonitor::Read() {
  rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return std::nullopt;
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return rate_.Next(seconds(usage.ru_utime) + seconds(usage.ru_stime));
}

std::optional<double> ResidentMemoryMonitor::Read() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages) || limit_bytes_ == 0) return std::nullopt;
  return static_cast<double>(resident_pages * sysconf(_SC_PAGESIZE)) / limit_bytes_;
}

std::optional<double> ProcessCpuSeconds(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields resume after
  // the last ')'. utime and stime are fields 14 and 15, 11 and 12 after the state.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  uint64_t utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

ProcessesCpuMonitor::ProcessesCpuMonitor(TimeSource& clock, int cores, PidSource pids)
    : clock_(clock), cores_(cores), pids_(std::move(pids)) {}

std::optional<double> ProcessesCpuMonitor::Read() {
  MonotonicTime now = clock_.MonotonicNow();
  double used = 0;
  std::map<pid_t, double> seen;
  for (pid_t pid : pids_()) {
    std::optional<double> cpu = ProcessCpuSeconds(pid);
    if (!cpu) continue;
    auto last = last_cpu_seconds_.find(pid);
    if (last != last_cpu_seconds_.end()) used += *cpu - last->second;
    seen[pid] = *cpu;
  }
  last_cpu_seconds_ = std::move(seen);
  bool had_baseline = has_baseline_;
  double wall = Seconds(last_time_, now);
  last_time_ = now;
  has_baseline_ = true;
  if (!had_baseline || wall <= 0) return std::nullopt;
  return used / (wall * cores_);
}

}  // namespace phoenix::server
