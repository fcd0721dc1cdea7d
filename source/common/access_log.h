#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "source/common/rotating_file.h"

namespace phoenix {

// An access log destination (a file, or /dev/stdout, /dev/stderr). Lines are buffered per
// thread and written by FlushThreadBuffers(), which each worker runs before its loop blocks:
// one write(2) per loop iteration rather than one per request. Every config that names one
// path shares one AccessLogFile (and its RotatingFile), so a reload neither reopens the file
// nor has two rotators racing over it.
class AccessLogFile : public std::enable_shared_from_this<AccessLogFile> {
 public:
  // The file at `path`, shared with every other holder of that path; `rotation` applies to
  // it from now on (the last config applied wins). Ignored for /dev/stdout and /dev/stderr.
  static absl::StatusOr<std::shared_ptr<AccessLogFile>> Open(const std::string& path,
                                                             const RotationPolicy& rotation = {});
  ~AccessLogFile();

  void Log(std::string_view line);
  const std::string& path() const { return path_; }
  // The rotating file behind a path other than stdout/stderr; null for those.
  RotatingFile* file() const { return file_.get(); }

  static void FlushThreadBuffers();

 private:
  AccessLogFile(std::string path, int fd, std::unique_ptr<RotatingFile> file)
      : path_(std::move(path)), fd_(fd), file_(std::move(file)) {}
  void WriteNow(std::string_view data);

  std::string path_;
  int fd_;  // stdout / stderr; -1 for a file.
  std::unique_ptr<RotatingFile> file_;
};

}  // namespace phoenix
