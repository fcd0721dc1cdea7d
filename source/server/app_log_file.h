#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace phoenix::server {

// Where a supervised app's instances' stdout and stderr go: a file opened for appending, or
// phoenix's stderr for "". The shape of common's RotatingFile (Open / Write / Reopen), which
// takes its place when it lands (then the file also rotates).
class AppLogFile {
 public:
  static absl::StatusOr<std::unique_ptr<AppLogFile>> Open(std::string path);
  ~AppLogFile();
  // Appends `data` whole (main loop; small writes of pipe reads).
  void Write(std::string_view data);
  // Opens the path again (after logrotate moved it away).
  absl::Status Reopen();

 private:
  explicit AppLogFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace phoenix::server
