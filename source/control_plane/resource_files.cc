#include "source/control_plane/resource_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "source/config/yaml_loader.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

// The *.yaml regular files directly in `dir`, sorted; none when it does not exist.
std::vector<std::string> YamlFilesIn(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::string name = it->path().filename().string();
    if (absl::EndsWith(name, ".yaml") && name[0] != '.') files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The folders that hold scoped files: nodes/<id>, clusters/<c>, metadata/<k>=<v>.
constexpr const char* kScopeFolders[] = {"clusters", "metadata", "nodes"};

// The sub-folders of `dir`/`folder`, sorted.
std::vector<std::string> SubFoldersIn(const fs::path& dir, const char* folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir / folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Every file to read, with its scope ("" for all).
std::vector<std::pair<std::string, std::string>> ListFiles(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (auto& path : YamlFilesIn(dir)) files.emplace_back(std::move(path), "");
  for (const char* folder : kScopeFolders) {
    for (const auto& name : SubFoldersIn(dir, folder)) {
      auto scope = ScopeOfPath(absl::StrCat(folder, "/", name, "/x.yaml"));
      if (!scope.has_value()) continue;  // metadata/ without '=', nodes/@...: not read.
      for (auto& path : YamlFilesIn(fs::path(dir) / folder / name)) {
        files.emplace_back(std::move(path), *scope);
      }
    }
  }
  return files;
}

}  // namespace

std::optional<std::string> ScopeOfPath(std::string_view relative_path) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t slash = relative_path.find('/', start);
    parts.emplace_back(relative_path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 1) return "";
  if (parts.size() != 3 || parts[1].empty()) return std::nullopt;
  if (parts[0] == "nodes" && parts[1][0] != '@') return parts[1];
  if (parts[0] == "clusters") return "@cluster/" + parts[1];
  if (parts[0] == "metadata") {
    size_t equals = parts[1].find('=');
    if (equals == 0 || equals == std::string::npos) return std::nullopt;
    return "@metadata/" + parts[1];
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<ResourceFile>> LoadResourceFiles(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  }
  std::vector<ResourceFile> loaded;
  for (auto& [path, node] : ListFiles(dir)) {
    ResourceFile file;
    file.path = path;
    file.node = node;
    file.source_map = config::SourceMap(path);
    absl::Status status = config::LoadYamlFile(path, &file.resources, &file.source_map);
    if (!status.ok()) return status;
    loaded.push_back(std::move(file));
  }
  return loaded;
}

DirectoryFingerprint FingerprintResourceFiles(const std::string& dir) {
  DirectoryFingerprint fingerprint;
  for (const auto& [path, node] : ListFiles(dir)) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    fingerprint[path] = {mtime_ns, int64_t{st.st_size}};
  }
  return fingerprint;
}

}  // namespace phoenix::control_plane
