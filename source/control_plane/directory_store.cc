#include "source/control_plane/directory_store.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {

DirectoryStore::DirectoryStore(std::string dir, std::string audit_log_path,
                               std::chrono::milliseconds poll_interval)
    : dir_(std::move(dir)),
      poll_interval_(poll_interval),
      audit_(std::move(audit_log_path)),
      history_((std::filesystem::path(dir_) / ".phoenix-cp" / "history").string()) {}

DirectoryStore::~DirectoryStore() { watcher_.reset(); }

absl::StatusOr<StoredState> DirectoryStore::Read() {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_, ec)) {
    return absl::NotFoundError(absl::StrCat(dir_, ": not a directory"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto files = ReadIncomingFiles(dir_);
  if (!files.ok()) return files.status();
  return StoredState{history_.Latest(), SortedFileSet(*std::move(files))};
}

absl::Status DirectoryStore::Commit(const StoredState& seen, const FileSet& next,
                                    const std::string& audit_line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (uint64_t latest = history_.Latest(); latest != seen.version) {
    return absl::AbortedError(absl::StrCat("version ", latest, " was committed meanwhile"));
  }
  auto now = ReadIncomingFiles(dir_);
  if (!now.ok()) return now.status();
  FileSet on_disk = SortedFileSet(*std::move(now));
  if (!SameFileSets(on_disk, seen.files)) {
    return absl::AbortedError(absl::StrCat(dir_, " was edited meanwhile"));
  }
  std::vector<IncomingFile> changed;
  for (const IncomingFile& file : next) {
    auto it = std::find_if(on_disk.begin(), on_disk.end(),
                           [&](const IncomingFile& f) { return f.path == file.path; });
    if (it == on_disk.end() || it->content != file.content) changed.push_back(file);
  }
  if (auto s = WriteIncomingFiles(dir_, changed); !s.ok()) return s;
  if (auto s = RemoveOtherFiles(dir_, next); !s.ok()) return s;
  if (auto s = history_.Keep(seen.version + 1, next, kKeptVersions); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("the files were written, but version ",
                                               seen.version + 1,
                                               " could not be kept: ", s.message()));
  }
  return audit_.Append(audit_line);
}

absl::StatusOr<FileSet> DirectoryStore::Version(uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  return history_.Files(version);
}

absl::Status DirectoryStore::AppendAudit(const std::string& line) { return audit_.Append(line); }

absl::StatusOr<std::vector<std::string>> DirectoryStore::AuditLines() { return audit_.ReadLines(); }

void DirectoryStore::Watch(std::function<void()> on_change) {
  watcher_ = std::make_unique<DirectoryWatcher>(dir_, FingerprintResourceFiles(dir_),
                                                poll_interval_, std::move(on_change));
}

}  // namespace phoenix::control_plane
