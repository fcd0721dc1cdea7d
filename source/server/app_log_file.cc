#include "source/server/app_log_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace phoenix::server {

absl::StatusOr<std::unique_ptr<AppLogFile>> AppLogFile::Open(std::string path) {
  std::unique_ptr<AppLogFile> file(new AppLogFile(std::move(path)));
  if (absl::Status status = file->Reopen(); !status.ok()) return status;
  return file;
}

AppLogFile::~AppLogFile() {
  if (fd_ > STDERR_FILENO) close(fd_);
}

absl::Status AppLogFile::Reopen() {
  if (path_.empty()) {
    fd_ = STDERR_FILENO;
    return absl::OkStatus();
  }
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open ", path_, ": ", strerror(errno)));
  }
  if (fd_ > STDERR_FILENO) close(fd_);
  fd_ = fd;
  return absl::OkStatus();
}

void AppLogFile::Write(std::string_view data) {
  while (!data.empty() && fd_ >= 0) {
    ssize_t n = write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // A full disk loses app output, never phoenix.
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace phoenix::server
