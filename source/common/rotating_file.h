#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source/common/time_source.h"

namespace phoenix {

// When a log file is rotated and what is kept of it.
struct RotationPolicy {
  // Rotate once the file holds this many bytes; 0: no size limit.
  uint64_t max_bytes = 0;
  // Rotate when the UTC day changes.
  bool daily = true;
  // Rotated files older than this many days are deleted; 0: kept forever.
  uint32_t keep_days = 7;
  // Rotated files are gzipped (on a background thread) to <name>.gz.
  bool compress = false;

  bool operator==(const RotationPolicy&) const = default;
};

// An append-only log file that rotates itself: the live file keeps its path, and a rotated
// one is renamed to <path>.<UTC yyyymmdd-hhmmss>[.<n>] (gzipped if the policy says), and
// rotated files past keep_days are deleted. Reopen() follows an external logrotate (SIGUSR1).
// Why it exists: access logs and the logs of supervised apps must not fill the disk, and a
// host with no logrotate still keeps 7 days. Thread-safe: any thread may Write.
class RotatingFile {
 public:
  // Opens (creating, appending) `path`. `clock` (default: the real clocks) decides days and
  // rotated names; it must outlive the file.
  static absl::StatusOr<std::unique_ptr<RotatingFile>> Open(std::string path, RotationPolicy policy,
                                                            TimeSource* clock = nullptr);
  ~RotatingFile();

  // Appends `data` whole (one write(2) unless interrupted), rotating first if it is due.
  // Never fails the caller: a write error is counted and dropped, as logging must not take
  // the process down.
  void Write(std::string_view data);
  // Closes and opens the path again: after a logrotate that renamed the file, new lines go
  // to a new file at the path.
  absl::Status Reopen();
  // Rotates now, whatever the policy says.
  absl::Status Rotate();
  void set_policy(const RotationPolicy& policy);

  const std::string& path() const { return path_; }
  uint64_t write_errors() const;
  // Waits for background compressions (tests, shutdown).
  void WaitForCompression();

  // Every RotatingFile alive: SIGUSR1 reopens them all.
  static void ReopenAll();

 private:
  RotatingFile(std::string path, RotationPolicy policy, TimeSource* clock);
  absl::Status OpenLocked();
  absl::Status RotateLocked();
  bool RotationDueLocked(size_t incoming, int64_t day) const;
  void DeleteExpiredLocked();
  int64_t UtcDay() const;

  const std::string path_;
  TimeSource* const clock_;
  mutable std::mutex mu_;
  RotationPolicy policy_;
  int fd_ = -1;
  uint64_t size_ = 0;
  int64_t day_ = 0;
  uint64_t write_errors_ = 0;
  // Gzips of rotated files in flight; finished ones are joined at the next rotation.
  struct Compression {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Compression> compressions_;
};

}  // namespace phoenix
