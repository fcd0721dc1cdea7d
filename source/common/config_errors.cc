#include "source/common/config_errors.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/strings.h"

namespace phoenix::config {

void SourceMap::Record(std::string path, SourceLocation location) {
  locations_.insert_or_assign(std::move(path), location);
}

SourceMap SourceMap::WithPrefix(std::string_view prefix) const {
  SourceMap copy(filename_);
  for (const auto& [path, location] : locations_) {
    copy.locations_.emplace(absl::StrCat(AbslView(prefix), path), location);
  }
  return copy;
}

std::optional<SourceLocation> SourceMap::Find(std::string_view path) const {
  std::string_view p = path;
  while (true) {
    auto it = locations_.find(p);
    if (it != locations_.end()) return it->second;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string_view::npos || cut == 0) return std::nullopt;
    p = p.substr(0, cut);
  }
}

void ConfigErrors::Add(std::string_view path, std::string_view message) {
  if (source_map_ != nullptr) {
    if (auto location = source_map_->Find(path)) {
      AddAt(*location, path, message);
      return;
    }
    if (!source_map_->filename().empty()) {
      errors_.push_back(
          absl::StrCat(source_map_->filename(), ": ", AbslView(path), ": ", AbslView(message)));
      return;
    }
  }
  errors_.push_back(path.empty() ? std::string(message)
                                 : absl::StrCat(AbslView(path), ": ", AbslView(message)));
}

void ConfigErrors::AddAt(SourceLocation location, std::string_view path, std::string_view message) {
  std::string prefix = source_map_ != nullptr ? source_map_->filename() : "";
  errors_.push_back(absl::StrCat(prefix, ":", location.line, ":", location.column, ": ",
                                 AbslView(path), path.empty() ? "" : ": ", AbslView(message)));
}

absl::Status ConfigErrors::ToStatus() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
}

namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string NearestName(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t d = EditDistance(word, candidate);
    // A truncated or over-long name ("denied" for "denied_by") is a likely typo too.
    std::string_view c = candidate;
    if (word.size() >= 3 && c.size() >= 3 && (c.starts_with(word) || word.starts_with(c))) {
      d = std::min<size_t>(d, 1);
    }
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace phoenix::config
