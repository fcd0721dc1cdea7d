#include "source/common/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace phoenix {
namespace {

struct ThreadBuffer {
  int fd;
  std::string data;
};

thread_local std::vector<ThreadBuffer> thread_buffers;

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Logging must never take the proxy down.
    }
    data.remove_prefix(n);
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<AccessLogFile>> AccessLogFile::Open(const std::string& path) {
  if (path == "/dev/stdout") {
    return std::shared_ptr<AccessLogFile>(new AccessLogFile(path, STDOUT_FILENO, false));
  }
  if (path == "/dev/stderr") {
    return std::shared_ptr<AccessLogFile>(new AccessLogFile(path, STDERR_FILENO, false));
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open access log '", path, "': ", strerror(errno)));
  }
  return std::shared_ptr<AccessLogFile>(new AccessLogFile(path, fd, true));
}

AccessLogFile::~AccessLogFile() {
  // Buffers are flushed every loop iteration and at worker exit; close only what we opened.
  if (owned_) close(fd_);
}

void AccessLogFile::Log(std::string_view line) {
  for (auto& buffer : thread_buffers) {
    if (buffer.fd == fd_) {
      buffer.data.append(line);
      if (buffer.data.size() > 64 * 1024) {
        WriteAll(buffer.fd, buffer.data);
        buffer.data.clear();
      }
      return;
    }
  }
  thread_buffers.push_back({fd_, std::string(line)});
}

void AccessLogFile::FlushThreadBuffers() {
  for (auto& buffer : thread_buffers) {
    if (!buffer.data.empty()) {
      WriteAll(buffer.fd, buffer.data);
      buffer.data.clear();
    }
  }
}

}  // namespace phoenix
