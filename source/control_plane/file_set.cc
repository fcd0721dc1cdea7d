#include "source/control_plane/file_set.h"

#include <algorithm>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::control_plane {

FileSet SortedFileSet(std::vector<IncomingFile> files) {
  std::map<std::string, std::string> by_path;
  for (IncomingFile& file : files) by_path[file.path] = std::move(file.content);
  FileSet out;
  out.reserve(by_path.size());
  for (auto& [path, content] : by_path) out.push_back({path, std::move(content)});
  return out;
}

FileSet MergeFileSets(const FileSet& base, const std::vector<IncomingFile>& incoming) {
  std::vector<IncomingFile> all = base;
  all.insert(all.end(), incoming.begin(), incoming.end());
  return SortedFileSet(std::move(all));
}

bool SameFileSets(const FileSet& a, const FileSet& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const IncomingFile& x, const IncomingFile& y) {
                      return x.path == y.path && x.content == y.content;
                    });
}

std::string EncodeFileSet(const FileSet& files) {
  std::string out;
  for (const IncomingFile& file : files) {
    absl::StrAppend(&out, file.path, "\n", file.content.size(), "\n", file.content, "\n");
  }
  return out;
}

absl::StatusOr<FileSet> DecodeFileSet(std::string_view text) {
  FileSet files;
  auto bad = [](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a stored file set: ", AbslView(why)));
  };
  while (!text.empty()) {
    size_t end_of_path = text.find('\n');
    if (end_of_path == std::string_view::npos) return bad("a path without its length");
    std::string path(text.substr(0, end_of_path));
    text.remove_prefix(end_of_path + 1);
    size_t end_of_length = text.find('\n');
    size_t length = 0;
    if (end_of_length == std::string_view::npos ||
        !absl::SimpleAtoi(AbslView(text.substr(0, end_of_length)), &length)) {
      return bad(absl::StrCat("no length for ", path));
    }
    text.remove_prefix(end_of_length + 1);
    if (text.size() < length + 1 || text[length] != '\n') {
      return bad(absl::StrCat("the content of ", path, " is cut short"));
    }
    files.push_back({std::move(path), std::string(text.substr(0, length))});
    text.remove_prefix(length + 1);
  }
  return SortedFileSet(std::move(files));
}

}  // namespace phoenix::control_plane
