#include "source/common/rotating_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace phoenix {
namespace {

constexpr int64_t kSecondsPerDay = 24 * 60 * 60;

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::unordered_set<RotatingFile*>& Registry() {
  static auto* files = new std::unordered_set<RotatingFile*>();
  return *files;
}

TimeSource& DefaultClock() {
  static RealTimeSource clock;
  return clock;
}

// Copies `from` into `from`.gz and removes `from`; on any failure the uncompressed file stays.
void GzipAndRemove(const std::string& from) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return;
  std::string to = from + ".gz";
  gzFile out = gzopen(to.c_str(), "wb6");
  bool ok = out != nullptr;
  char buffer[64 * 1024];
  while (ok) {
    ssize_t n = read(in, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    ok = gzwrite(out, buffer, static_cast<unsigned>(n)) == n;
  }
  close(in);
  if (out != nullptr && gzclose(out) != Z_OK) ok = false;
  unlink(ok ? from.c_str() : to.c_str());
}

std::pair<std::string, std::string> SplitDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RotatingFile>> RotatingFile::Open(std::string path,
                                                                 RotationPolicy policy,
                                                                 TimeSource* clock) {
  std::unique_ptr<RotatingFile> file(
      new RotatingFile(std::move(path), policy, clock != nullptr ? clock : &DefaultClock()));
  {
    std::lock_guard lock(file->mu_);
    if (absl::Status status = file->OpenLocked(); !status.ok()) return status;
  }
  std::lock_guard lock(RegistryMutex());
  Registry().insert(file.get());
  return file;
}

RotatingFile::RotatingFile(std::string path, RotationPolicy policy, TimeSource* clock)
    : path_(std::move(path)), clock_(clock), policy_(policy) {}

RotatingFile::~RotatingFile() {
  {
    std::lock_guard lock(RegistryMutex());
    Registry().erase(this);
  }
  WaitForCompression();
  if (fd_ >= 0) close(fd_);
}

int64_t RotatingFile::UtcDay() const {
  int64_t seconds = clock_->SystemUs() / 1000000;
  return seconds / kSecondsPerDay;
}

absl::Status RotatingFile::OpenLocked() {
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open log file '", path_, "': ", strerror(errno)));
  }
  struct stat st;
  size_ = fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // A file left from an earlier day is rotated at the first write, as if it had been then.
  int64_t file_day = size_ > 0 ? st.st_mtime / kSecondsPerDay : UtcDay();
  day_ = std::min(file_day, UtcDay());
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  return absl::OkStatus();
}

bool RotatingFile::RotationDueLocked(size_t incoming, int64_t day) const {
  if (size_ == 0) return false;  // Never rotate an empty file.
  if (policy_.daily && day != day_) return true;
  return policy_.max_bytes > 0 && size_ + incoming > policy_.max_bytes;
}

void RotatingFile::Write(std::string_view data) {
  std::lock_guard lock(mu_);
  int64_t day = policy_.daily ? UtcDay() : day_;
  if (RotationDueLocked(data.size(), day)) {
    if (!RotateLocked().ok()) ++write_errors_;
  }
  day_ = day;
  while (!data.empty() && fd_ >= 0) {
    ssize_t n = write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ++write_errors_;
      return;
    }
    size_ += n;
    data.remove_prefix(n);
  }
}

absl::Status RotatingFile::Reopen() {
  std::lock_guard lock(mu_);
  return OpenLocked();
}

absl::Status RotatingFile::Rotate() {
  std::lock_guard lock(mu_);
  return RotateLocked();
}

absl::Status RotatingFile::RotateLocked() {
  time_t now = clock_->SystemUs() / 1000000;
  tm utc;
  gmtime_r(&now, &utc);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &utc);
  std::string rotated = absl::StrCat(path_, ".", stamp);
  for (int n = 1; Exists(rotated) || Exists(rotated + ".gz"); ++n) {
    rotated = absl::StrCat(path_, ".", stamp, ".", n);
  }
  if (rename(path_.c_str(), rotated.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rotate '", path_, "': ", strerror(errno)));
  }
  if (absl::Status status = OpenLocked(); !status.ok()) return status;
  day_ = UtcDay();
  std::erase_if(compressions_, [](Compression& c) {
    if (!c.done->load()) return false;
    c.thread.join();
    return true;
  });
  if (policy_.compress) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    compressions_.push_back({std::thread([rotated, done] {
                               GzipAndRemove(rotated);
                               done->store(true);
                             }),
                             done});
  }
  DeleteExpiredLocked();
  return absl::OkStatus();
}

// Deletes this file's rotated copies (<name>.<digit>...) last modified over keep_days ago.
void RotatingFile::DeleteExpiredLocked() {
  if (policy_.keep_days == 0) return;
  auto [directory, name] = SplitDirectory(path_);
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return;
  int64_t cutoff = clock_->SystemUs() / 1000000 - int64_t{policy_.keep_days} * kSecondsPerDay;
  std::string prefix = name + ".";
  while (dirent* entry = readdir(dir)) {
    std::string_view candidate = entry->d_name;
    if (!candidate.starts_with(prefix) || candidate.size() == prefix.size() ||
        !absl::ascii_isdigit(candidate[prefix.size()])) {
      continue;
    }
    std::string full = absl::StrCat(directory, "/", entry->d_name);
    struct stat st;
    if (stat(full.c_str(), &st) == 0 && st.st_mtime < cutoff) unlink(full.c_str());
  }
  closedir(dir);
}

void RotatingFile::set_policy(const RotationPolicy& policy) {
  std::lock_guard lock(mu_);
  policy_ = policy;
}

uint64_t RotatingFile::write_errors() const {
  std::lock_guard lock(mu_);
  return write_errors_;
}

void RotatingFile::WaitForCompression() {
  std::vector<Compression> running;
  {
    std::lock_guard lock(mu_);
    running.swap(compressions_);
  }
  for (auto& compression : running) compression.thread.join();
}

void RotatingFile::ReopenAll() {
  std::lock_guard lock(RegistryMutex());
  for (RotatingFile* file : Registry()) file->Reopen().IgnoreError();
}

}  // namespace phoenix
