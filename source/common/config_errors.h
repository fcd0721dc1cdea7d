#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace phoenix::config {

struct SourceLocation {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

// Remembers where in the source file each field path ("static_resources.clusters[0].name")
// was written, so errors found after parsing (validation) can still name file:line:column.
class SourceMap {
 public:
  explicit SourceMap(std::string filename = "") : filename_(std::move(filename)) {}

  void Record(std::string path, SourceLocation location);
  // The location of `path`, or of its nearest recorded ancestor.
  std::optional<SourceLocation> Find(std::string_view path) const;
  const std::string& filename() const { return filename_; }
  // A copy whose every path starts with `prefix` ("static_resources."): for a message loaded
  // on its own and then validated inside a larger one.
  SourceMap WithPrefix(std::string_view prefix) const;

 private:
  std::string filename_;
  std::map<std::string, SourceLocation, std::less<>> locations_;
};

// Collects every error in a config rather than stopping at the first, each formatted as
// "file:line:column: field.path: message" (or "field.path: message" without a source map).
class ConfigErrors {
 public:
  explicit ConfigErrors(const SourceMap* source_map = nullptr) : source_map_(source_map) {}

  void Add(std::string_view path, std::string_view message);
  void AddAt(SourceLocation location, std::string_view path, std::string_view message);

  bool empty() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  // All errors, one per line; OK when there are none.
  absl::Status ToStatus() const;

 private:
  const SourceMap* source_map_;
  std::vector<std::string> errors_;
};

// The candidate closest to `word` by edit distance, or "" when none is close enough to be
// a plausible typo.
std::string NearestName(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace phoenix::config
