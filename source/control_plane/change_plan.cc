#include "source/control_plane/change_plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/strings.h"
#include "source/config/yaml_loader.h"
#include "source/control_plane/atomic_file.h"
#include "source/control_plane/file_set.h"
#include "source/control_plane/resource_text.h"
#include "source/control_plane/text_diff.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The parts of `path` split at '/'.
std::vector<std::string> Parts(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    parts.push_back(
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

const Resource* FindResource(const ResourceSnapshot* snapshot, const ResourceChange& change) {
  if (snapshot == nullptr) return nullptr;
  const ResourcesByType* set = &snapshot->common();
  if (!change.node.empty()) {
    auto node = snapshot->per_node().find(change.node);
    if (node == snapshot->per_node().end()) return nullptr;
    set = &node->second;
  }
  auto type = set->find(change.type);
  if (type == set->end()) return nullptr;
  auto it = type->second.find(change.name);
  return it == type->second.end() ? nullptr : &it->second;
}

absl::Status WriteOne(const fs::path& target, const std::string& content) {
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat(target.parent_path().string(), ": ", ec.message()));
  fs::path temp =
      target.parent_path() / absl::StrCat(".", target.filename().string(), ".tmp", ::getpid());
  // A file that exists keeps its mode (one holding keys may be 0600).
  struct stat existing;
  mode_t mode = ::stat(target.c_str(), &existing) == 0 ? (existing.st_mode & 0777) : 0644;
  return WriteFileAtomically(target.string(), temp.string(), content, mode);
}

// Parses one file; errors and source locations name it `name`.
absl::StatusOr<ResourceFile> ParseOne(const IncomingFile& file, const std::string& name) {
  ResourceFile parsed;
  parsed.path = name;
  parsed.node = ScopeOfPath(file.path).value_or("");
  parsed.source_map = config::SourceMap(name);
  if (auto status = config::LoadYamlString(file.content, &parsed.resources, &parsed.source_map);
      !status.ok()) {
    return status;
  }
  return parsed;
}

}  // namespace

absl::Status CheckIncomingPath(const std::string& path) {
  auto refuse = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", AbslView(why)));
  };
  if (!EndsWith(path, ".yaml")) return refuse("a resource file's name ends in .yaml");
  std::vector<std::string> parts = Parts(path);
  constexpr std::string_view kLayout =
      "want <name>.yaml, nodes/<node id>/<name>.yaml, clusters/<node cluster>/<name>.yaml or "
      "metadata/<key>=<value>/<name>.yaml";
  for (const std::string& part : parts) {
    if (part.empty() || part[0] == '.') {
      return refuse(absl::StrCat(AbslView(kLayout), " (no '..', nothing hidden)"));
    }
  }
  if (ScopeOfPath(path).has_value()) return absl::OkStatus();
  return refuse(kLayout);
}

std::string JoinRoot(const std::string& root, const std::string& path) {
  if (root.empty()) return path;
  return (fs::path(root) / path).string();
}

absl::StatusOr<std::vector<ResourceFile>> ParseResourceFiles(const std::vector<IncomingFile>& files,
                                                             const std::string& root) {
  std::vector<ResourceFile> parsed;
  for (const IncomingFile& file : files) {
    auto one = ParseOne(file, JoinRoot(root, file.path));
    if (!one.ok()) return one.status();
    parsed.push_back(*std::move(one));
  }
  return parsed;
}

absl::StatusOr<ChangePlan> PlanChange(const std::vector<IncomingFile>& base,
                                      const std::vector<IncomingFile>& incoming,
                                      const std::string& root, const ResourceSnapshot* current,
                                      uint64_t version,
                                      const std::vector<config::v1::Secret>& provided) {
  std::vector<std::string> errors;
  for (const IncomingFile& sent : incoming) {
    if (auto status = CheckIncomingPath(sent.path); !status.ok()) {
      errors.emplace_back(status.message());
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));

  ChangePlan plan;
  plan.files = MergeFileSets(base, incoming);
  std::vector<ResourceFile> parsed;
  for (const IncomingFile& file : plan.files) {
    bool sent = std::any_of(incoming.begin(), incoming.end(),
                            [&](const IncomingFile& f) { return f.path == file.path; });
    // Errors name a file sent as it was sent, one already in force where it is kept.
    auto one = ParseOne(file, sent ? file.path : JoinRoot(root, file.path));
    if (!one.ok()) {
      errors.emplace_back(one.status().message());
      continue;
    }
    one->path = JoinRoot(root, file.path);
    parsed.push_back(*std::move(one));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));

  auto candidate = BuildResourceSnapshot(parsed, version, provided);
  if (!candidate.ok()) return candidate.status();
  plan.changes = DiffSnapshots(current, **candidate);
  plan.candidate = *std::move(candidate);
  return plan;
}

std::vector<ResourceDiffText> DescribeChanges(const ResourceSnapshot* before,
                                              const ResourceSnapshot& after,
                                              const std::vector<ResourceChange>& changes) {
  std::vector<ResourceDiffText> out;
  for (const ResourceChange& change : changes) {
    const Resource* old_resource = FindResource(before, change);
    const Resource* new_resource = FindResource(&after, change);
    std::string old_text =
        old_resource ? RenderResource(*old_resource, change.type, TextFormat::kYaml) : "";
    std::string new_text =
        new_resource ? RenderResource(*new_resource, change.type, TextFormat::kYaml) : "";
    std::string label =
        absl::StrCat(change.node.empty() ? "" : absl::StrCat("nodes/", change.node, "/"),
                     AbslView(config::TypeName(change.type)), "/", change.name);
    ResourceDiffText text{change, absl::StrCat("--- ", old_resource ? label : "/dev/null", "\n",
                                               "+++ ", new_resource ? label : "/dev/null", "\n")};
    std::string hunks = UnifiedDiff(old_text, new_text);
    if (hunks.empty()) hunks = "# only redacted content (a private key) changed\n";
    text.diff += hunks;
    out.push_back(std::move(text));
  }
  return out;
}

std::string JoinDiffs(const std::vector<ResourceDiffText>& diffs) {
  std::string out;
  for (const ResourceDiffText& diff : diffs) out += diff.diff;
  return out;
}

absl::Status WriteIncomingFiles(const std::string& dir, const std::vector<IncomingFile>& files) {
  for (const IncomingFile& file : files) {
    if (auto status = CheckIncomingPath(file.path); !status.ok()) return status;
    if (auto status = WriteOne(fs::path(dir) / file.path, file.content); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace phoenix::control_plane

namespace phoenix::control_plane {

absl::StatusOr<std::vector<IncomingFile>> ReadIncomingFiles(const std::string& dir) {
  std::vector<IncomingFile> files;
  for (const auto& [path, stat] : FingerprintResourceFiles(dir)) {
    std::ifstream in(path);
    if (!in) return absl::UnavailableError(absl::StrCat(path, ": cannot read it"));
    std::stringstream text;
    text << in.rdbuf();
    files.push_back({fs::relative(path, dir).string(), text.str()});
  }
  return SortedFileSet(std::move(files));
}

absl::Status RemoveOtherFiles(const std::string& dir, const std::vector<IncomingFile>& keep) {
  for (const auto& [path, stat] : FingerprintResourceFiles(dir)) {
    std::string relative = fs::relative(path, dir).string();
    bool kept = std::any_of(keep.begin(), keep.end(),
                            [&](const IncomingFile& f) { return f.path == relative; });
    std::error_code ec;
    if (!kept && !fs::remove(path, ec) && ec) {
      return absl::UnavailableError(absl::StrCat(path, ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace phoenix::control_plane
