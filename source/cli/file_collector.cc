#include "source/cli/file_collector.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace phoenix::cli {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsYaml(const fs::path& path) {
  std::string name = path.filename().string();
  return name.size() > 5 && name[0] != '.' && name.compare(name.size() - 5, 5, ".yaml") == 0;
}

// The *.yaml files directly in `dir`, sorted.
std::vector<fs::path> YamlIn(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && IsYaml(it->path())) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<service::admin::v1::ResourceFile>> CollectFiles(
    const std::vector<std::string>& paths, const std::string& node) {
  std::vector<service::admin::v1::ResourceFile> files;
  auto add = [&](const fs::path& path, const std::string& relative) -> absl::Status {
    auto content = ReadFile(path);
    if (!content.ok()) return content.status();
    auto& file = files.emplace_back();
    file.set_path(relative);
    file.set_content(*std::move(content));
    return absl::OkStatus();
  };
  for (const std::string& given : paths) {
    fs::path path(given);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (!node.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            given, ": --node is for a single file; a directory says nodes/<id>/ itself"));
      }
      size_t before = files.size();
      for (const fs::path& file : YamlIn(path)) {
        if (auto s = add(file, file.filename().string()); !s.ok()) return s;
      }
      std::vector<fs::path> node_dirs;
      for (fs::directory_iterator it(path / "nodes", ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        if (it->is_directory(type_ec)) node_dirs.push_back(it->path());
      }
      std::sort(node_dirs.begin(), node_dirs.end());
      for (const fs::path& node_dir : node_dirs) {
        for (const fs::path& file : YamlIn(node_dir)) {
          std::string relative =
              absl::StrCat("nodes/", node_dir.filename().string(), "/", file.filename().string());
          if (auto s = add(file, relative); !s.ok()) return s;
        }
      }
      if (files.size() == before) {
        return absl::NotFoundError(absl::StrCat(given, ": no *.yaml files in it"));
      }
    } else if (fs::exists(path, ec)) {
      if (!IsYaml(path)) {
        return absl::InvalidArgumentError(
            absl::StrCat(given, ": a resource file's name ends in .yaml"));
      }
      std::string name = path.filename().string();
      if (auto s = add(path, node.empty() ? name : absl::StrCat("nodes/", node, "/", name));
          !s.ok()) {
        return s;
      }
    } else {
      return absl::NotFoundError(absl::StrCat(given, ": no such file or directory"));
    }
  }
  return files;
}

}  // namespace phoenix::cli
