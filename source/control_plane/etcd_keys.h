#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace phoenix::control_plane {

// The key layout of the etcd store under its prefix (default "/phoenix/"):
//   <prefix>version                 the version in force ("7")
//   <prefix>files/<path>            each file of that version: files/common.yaml,
//                                   files/nodes/<node id>/x.yaml (the directory's layout)
//   <prefix>history/<version>       each kept version's files (EncodeFileSet); the version
//                                   zero-padded to 20 digits, so keys sort as numbers
//   <prefix>audit/<time>-<replica>-<n>  one audit record (its JSON line); the time in
//                                   nanoseconds, 20 digits, so keys sort in time order
//   <prefix>shared/<name>           the records replicas share (SharedRecords): shared/ca/...
// One job: naming keys, and reading names back.
class EtcdKeys {
 public:
  explicit EtcdKeys(std::string prefix) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }
  std::string Version() const { return prefix_ + "version"; }
  std::string FilesPrefix() const { return prefix_ + "files/"; }
  std::string File(std::string_view path) const;
  // The path of a file key; nullopt for any other key.
  std::optional<std::string> PathOfFile(std::string_view key) const;
  std::string HistoryPrefix() const { return prefix_ + "history/"; }
  std::string History(uint64_t version) const;
  // The version of a history key; nullopt for any other key.
  std::optional<uint64_t> VersionOfHistory(std::string_view key) const;
  std::string AuditPrefix() const { return prefix_ + "audit/"; }
  std::string SharedPrefix() const { return prefix_ + "shared/"; }
  // `replica` tells apart records two replicas make in the same nanosecond; `sequence` those
  // one replica makes.
  std::string Audit(absl::Time time, std::string_view replica, uint64_t sequence) const;

 private:
  std::string prefix_;
};

// The range_end that makes a range (or a watch) cover every key starting with `prefix`: the
// prefix with its last byte below 0xff plus one (etcd's convention; "\0" when every byte is
// 0xff: to the end).
std::string PrefixRangeEnd(std::string_view prefix);

// A version as the version key holds it, and back (nullopt unless a plain decimal number).
std::string EncodeVersion(uint64_t version);
std::optional<uint64_t> DecodeVersion(std::string_view text);

}  // namespace phoenix::control_plane
