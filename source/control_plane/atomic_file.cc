#include "source/control_plane/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {

absl::Status WriteFileAtomically(const std::string& path, const std::string& temp,
                                 const std::string& content, mode_t mode) {
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(temp, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return absl::UnavailableError(absl::StrCat(temp, ": ", std::strerror(saved)));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::fsync(fd);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(saved)));
  }
  return absl::OkStatus();
}

}  // namespace phoenix::control_plane
