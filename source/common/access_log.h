#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace phoenix {

// An access log destination (a file, or /dev/stdout). Lines are buffered per thread and
// written by FlushThreadBuffers(), which each worker runs before its loop blocks: one
// write(2) per loop iteration rather than one per request.
class AccessLogFile {
 public:
  static absl::StatusOr<std::shared_ptr<AccessLogFile>> Open(const std::string& path);
  ~AccessLogFile();

  void Log(std::string_view line);
  const std::string& path() const { return path_; }

  static void FlushThreadBuffers();

 private:
  AccessLogFile(std::string path, int fd, bool owned)
      : path_(std::move(path)), fd_(fd), owned_(owned) {}
  std::string path_;
  int fd_;
  bool owned_;
};

}  // namespace phoenix
