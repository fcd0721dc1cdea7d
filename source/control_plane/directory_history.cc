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
#include "source/control_plane/atomic_file.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

constexpr char kSuffix[] = ".files";
constexpr size_t kSuffixSize = sizeof(kSuffix) - 1;

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
  if (auto s =
          WriteFileAtomically(PathOf(version), absl::StrCat(PathOf(version), ".tmp", ::getpid()),
                              EncodeFileSet(files), 0600);
      !s.ok())
    return s;
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
