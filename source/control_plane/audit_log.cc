#include "source/control_plane/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::control_plane {
namespace {

std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string Quoted(std::string_view text) { return absl::StrCat("\"", JsonEscape(text), "\""); }

}  // namespace

std::string AuditLog::AcceptedLine(absl::Time time, const std::string& who, uint64_t version,
                                   const std::vector<ResourceChange>& changes,
                                   const std::string& diff) {
  std::string line =
      absl::StrCat("{\"time\": ", Quoted(Rfc3339(time)), ", \"who\": ", Quoted(who),
                   ", \"version\": ", Quoted(absl::StrCat(version)), ", \"changes\": [");
  for (size_t i = 0; i < changes.size(); ++i) {
    const ResourceChange& change = changes[i];
    absl::StrAppend(&line, i ? ", " : "", "{\"type\": ", Quoted(config::TypeName(change.type)),
                    ", \"name\": ", Quoted(change.name), ", \"action\": ", Quoted(change.action),
                    ", \"node\": ", Quoted(change.node), "}");
  }
  line += "]";
  if (!diff.empty()) absl::StrAppend(&line, ", \"diff\": ", Quoted(diff));
  line += "}";
  return line;
}

std::string AuditLog::RefusedLine(absl::Time time, const std::string& who,
                                  const std::string& error) {
  return absl::StrCat("{\"time\": ", Quoted(Rfc3339(time)), ", \"who\": ", Quoted(who),
                      ", \"refused\": ", Quoted(error), "}");
}

std::string AuditLog::IssuedLine(absl::Time time, const std::string& who, const std::string& node,
                                 const std::string& identity, const std::string& serial,
                                 absl::Time not_after, const std::string& root_serial) {
  return absl::StrCat(
      "{\"time\": ", Quoted(Rfc3339(time)), ", \"who\": ", Quoted(who),
      ", \"node\": ", Quoted(node), ", \"issued\": {\"identity\": ", Quoted(identity),
      ", \"serial\": ", Quoted(serial), ", \"not_after\": ", Quoted(Rfc3339(not_after)),
      ", \"root\": ", Quoted(root_serial), "}}");
}

std::string AuditLog::IssueRefusedLine(absl::Time time, const std::string& who,
                                       const std::string& node, const std::string& identity,
                                       const std::string& error) {
  return absl::StrCat("{\"time\": ", Quoted(Rfc3339(time)), ", \"who\": ", Quoted(who),
                      ", \"node\": ", Quoted(node), ", \"identity\": ", Quoted(identity),
                      ", \"refused\": ", Quoted(error), "}");
}

absl::StatusOr<std::vector<std::string>> AuditLog::ReadLines() const {
  std::vector<std::string> lines;
  std::ifstream file(path_);
  if (!file) {
    if (errno == ENOENT) return lines;
    return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(errno)));
  }
  for (std::string line; std::getline(file, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

absl::Status AuditLog::Append(const std::string& line) {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(errno)));
  }
  std::string text = line + "\n";
  ssize_t written = ::write(fd, text.data(), text.size());  // One write: lines never mix.
  int write_errno = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(write_errno)));
  }
  return absl::OkStatus();
}

}  // namespace phoenix::control_plane
