#include "source/control_plane/directory_history.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

constexpr char kSuffix[] = ".files";
constexpr size_t kSuffixSize = sizeof(kSuffix) - 1;

absl::Status WritePrivateFile(const std::string& path, const std::string& content) {
  std::string temp = absl::StrCat(path, ".tmp", ::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
  ::fsync(fd);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(saved)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DirectoryHistory::PathOf(uint64_t version) const {
  return (fs::path(folder_) / absl::StrCat(version, kSuffix)).string();
}

std::vector<uint64_t> DirectoryHistory::Versions() const {
  std::vector<uint64_t> versions;
  std::error_code ec;
  for (fs::directory_iterator it(folder_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    uint64_t version = 0;
    if (!absl::EndsWith(name, kSuffix) ||
        !absl::SimpleAtoi(absl::string_view(name).substr(0, name.size() - kSuffixSize), &version)) {
      continue;
    }
    versions.push_back(version);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

uint64_t DirectoryHistory::Latest() const {
  std::vector<uint64_t> versions = Versions();
  return versions.empty() ? 0 : versions.back();
}

absl::Status DirectoryHistory::Keep(uint64_t version, const FileSet& files, size_t keep) {
  std::error_code ec;
  fs::create_directories(folder_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(folder_, ": ", ec.message()));
  if (auto s = WritePrivateFile(PathOf(version), EncodeFileSet(files)); !s.ok()) return s;
  std::vector<uint64_t> versions = Versions();
  for (size_t i = 0; i + keep < versions.size(); ++i) fs::remove(PathOf(versions[i]), ec);
  return absl::OkStatus();
}

absl::StatusOr<FileSet> DirectoryHistory::Files(uint64_t version) const {
  std::ifstream in(PathOf(version), std::ios::binary);
  if (!in) {
    std::vector<uint64_t> versions = Versions();
    return absl::NotFoundError(
        versions.empty()
            ? absl::StrCat("version ", version, " is not kept (no version is)")
            : absl::StrCat("version ", version, " is not kept: the last ", versions.size(),
                           " versions are (", versions.front(), " to ", versions.back(), ")"));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto files = DecodeFileSet(text.str());
  if (!files.ok()) {
    return absl::DataLossError(absl::StrCat(PathOf(version), ": ", files.status().message()));
  }
  return files;
}

}  // namespace phoenix::control_plane
