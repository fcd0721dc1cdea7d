#include "source/common/access_log.h"

#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace phoenix {
namespace {

// One thread's pending lines for one file. `hold` keeps the file alive while lines wait, so a
// reload that drops the last config naming it cannot free it under the buffer.
struct ThreadBuffer {
  const AccessLogFile* file;
  std::shared_ptr<AccessLogFile> hold;
  std::string data;
};

thread_local std::vector<ThreadBuffer> thread_buffers;

std::mutex& OpenFilesMutex() {
  static std::mutex mu;
  return mu;
}
// Path -> the AccessLogFile open on it, while any config holds it.
std::unordered_map<std::string, std::weak_ptr<AccessLogFile>>& OpenFiles() {
  static auto* files = new std::unordered_map<std::string, std::weak_ptr<AccessLogFile>>();
  return *files;
}

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

absl::StatusOr<std::shared_ptr<AccessLogFile>> AccessLogFile::Open(const std::string& path,
                                                                   const RotationPolicy& rotation) {
  if (path == "/dev/stdout") {
    return std::shared_ptr<AccessLogFile>(new AccessLogFile(path, STDOUT_FILENO, nullptr));
  }
  if (path == "/dev/stderr") {
    return std::shared_ptr<AccessLogFile>(new AccessLogFile(path, STDERR_FILENO, nullptr));
  }
  std::lock_guard lock(OpenFilesMutex());
  auto& slot = OpenFiles()[path];
  if (auto open = slot.lock()) {
    open->file_->set_policy(rotation);
    return open;
  }
  auto file = RotatingFile::Open(path, rotation);
  if (!file.ok()) {
    OpenFiles().erase(path);
    return file.status();
  }
  std::shared_ptr<AccessLogFile> log(new AccessLogFile(path, -1, *std::move(file)));
  slot = log;
  return log;
}

AccessLogFile::~AccessLogFile() {
  if (file_ == nullptr) return;
  std::lock_guard lock(OpenFilesMutex());
  auto it = OpenFiles().find(path_);
  if (it != OpenFiles().end() && it->second.expired()) OpenFiles().erase(it);
}

void AccessLogFile::WriteNow(std::string_view data) {
  if (file_ != nullptr) {
    file_->Write(data);
  } else {
    WriteAll(fd_, data);
  }
}

void AccessLogFile::Log(std::string_view line) {
  for (auto& buffer : thread_buffers) {
    if (buffer.file != this) continue;
    if (buffer.hold == nullptr) buffer.hold = shared_from_this();
    buffer.data.append(line);
    if (buffer.data.size() > 64 * 1024) {
      WriteNow(buffer.data);
      buffer.data.clear();
    }
    return;
  }
  thread_buffers.push_back({this, shared_from_this(), std::string(line)});
}

void AccessLogFile::FlushThreadBuffers() {
  for (auto& buffer : thread_buffers) {
    if (!buffer.data.empty()) {
      buffer.hold->WriteNow(buffer.data);
      buffer.data.clear();
    }
    buffer.hold.reset();
  }
}

}  // namespace phoenix
