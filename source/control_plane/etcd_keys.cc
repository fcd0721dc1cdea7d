#include "source/control_plane/etcd_keys.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/strings.h"

namespace phoenix::control_plane {
namespace {

std::string TwentyDigits(uint64_t n) { return absl::StrFormat("%020u", n); }

}  // namespace

std::string EtcdKeys::File(std::string_view path) const {
  return absl::StrCat(FilesPrefix(), AbslView(path));
}

std::optional<std::string> EtcdKeys::PathOfFile(std::string_view key) const {
  std::string files = FilesPrefix();
  if (!absl::StartsWith(AbslView(key), files) || key.size() == files.size()) return std::nullopt;
  return std::string(key.substr(files.size()));
}

std::string EtcdKeys::History(uint64_t version) const {
  return absl::StrCat(HistoryPrefix(), TwentyDigits(version));
}

std::optional<uint64_t> EtcdKeys::VersionOfHistory(std::string_view key) const {
  std::string history = HistoryPrefix();
  if (!absl::StartsWith(AbslView(key), history)) return std::nullopt;
  return DecodeVersion(key.substr(history.size()));
}

std::string EtcdKeys::Audit(absl::Time time, std::string_view replica, uint64_t sequence) const {
  int64_t nanos = absl::ToUnixNanos(time);
  return absl::StrCat(AuditPrefix(), TwentyDigits(nanos < 0 ? 0 : static_cast<uint64_t>(nanos)),
                      "-", AbslView(replica), "-", sequence);
}

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string EncodeVersion(uint64_t version) { return absl::StrCat(version); }

std::optional<uint64_t> DecodeVersion(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t version = 0;
  if (!absl::SimpleAtoi(AbslView(text), &version)) return std::nullopt;
  return version;
}

}  // namespace phoenix::control_plane
