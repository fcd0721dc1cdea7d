#include "source/control_plane/text_diff.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {
namespace {

constexpr size_t kMaxLines = 4000;

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

struct Edit {
  char op;  // ' ', '-', '+'
  std::string_view line;
  size_t old_index;  // Lines of `before` consumed before this one.
  size_t new_index;
};

// The edit script of a longest common subsequence.
std::vector<Edit> EditScript(const std::vector<std::string_view>& a,
                             const std::vector<std::string_view>& b) {
  std::vector<Edit> edits;
  if (a.size() > kMaxLines || b.size() > kMaxLines) {
    for (size_t i = 0; i < a.size(); ++i) edits.push_back({'-', a[i], i, 0});
    for (size_t j = 0; j < b.size(); ++j) edits.push_back({'+', b[j], a.size(), j});
    return edits;
  }
  const size_t n = a.size(), m = b.size();
  // lcs[i][j]: the length of the LCS of a[i..] and b[j..].
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      edits.push_back({' ', a[i], i, j});
      ++i, ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      edits.push_back({'-', a[i], i, j});  // Removals before additions, as diff(1) shows.
      ++i;
    } else {
      edits.push_back({'+', b[j], i, j});
      ++j;
    }
  }
  return edits;
}

}  // namespace

std::string UnifiedDiff(std::string_view before, std::string_view after, int context) {
  std::vector<Edit> edits = EditScript(Lines(before), Lines(after));
  std::string out;
  const size_t ctx = static_cast<size_t>(std::max(context, 0));
  size_t k = 0;
  while (k < edits.size()) {
    // The next change, and the hunk around it: changes closer than 2*context share one.
    size_t first = k;
    while (first < edits.size() && edits[first].op == ' ') ++first;
    if (first == edits.size()) break;
    size_t start = first >= ctx ? first - ctx : 0;
    size_t end = first;  // One past the last change of the hunk.
    size_t scan = first;
    while (scan < edits.size()) {
      if (edits[scan].op != ' ') {
        end = scan + 1;
        ++scan;
        continue;
      }
      size_t run = scan;
      while (run < edits.size() && edits[run].op == ' ') ++run;
      if (run == edits.size() || run - scan > 2 * ctx) break;
      scan = run;
    }
    size_t stop = std::min(edits.size(), end + ctx);
    size_t old_count = 0, new_count = 0;
    for (size_t e = start; e < stop; ++e) {
      if (edits[e].op != '+') ++old_count;
      if (edits[e].op != '-') ++new_count;
    }
    // Unified diff numbers lines from 1; an empty side starts at 0.
    size_t old_start = edits[start].old_index + (old_count ? 1 : 0);
    size_t new_start = edits[start].new_index + (new_count ? 1 : 0);
    absl::StrAppend(&out, "@@ -", old_start, ",", old_count, " +", new_start, ",", new_count,
                    " @@\n");
    for (size_t e = start; e < stop; ++e) {
      out.push_back(edits[e].op);
      out.append(edits[e].line);
      out.push_back('\n');
    }
    k = stop;
  }
  return out;
}

}  // namespace phoenix::control_plane
