#include "source/control_plane/resource_snapshot.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "source/control_plane/audit_log.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCluster = R"(clusters:
- name: NAME
  connect_timeout: 1s
  load_assignment:
    cluster_name: NAME
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: PORT}}}
)";

std::string Cluster(const std::string& name, int port) {
  std::string yaml = kCluster;
  for (size_t at; (at = yaml.find("NAME")) != std::string::npos;) yaml.replace(at, 4, name);
  yaml.replace(yaml.find("PORT"), 4, std::to_string(port));
  return yaml;
}

// A resource directory in a fresh temporary folder, removed at the end of the test.
class ResourceDir {
 public:
  ResourceDir() {
    char pattern[] = "/tmp/phoenix-cp-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~ResourceDir() { fs::remove_all(path_); }
  void Write(const std::string& relative, const std::string& text) {
    fs::path file = fs::path(path_) / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  void Remove(const std::string& relative) { fs::remove(fs::path(path_) / relative); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What the control plane does with a new state of the files: builds it as the next version
// and says what changed; a refused state leaves the last good one in force.
class Snapshots {
 public:
  enum class Kind { kAccepted, kUnchanged, kRefused };
  struct Outcome {
    Kind kind = Kind::kUnchanged;
    absl::Status error;
    std::vector<ResourceChange> changes;
  };
  Outcome Offer(const absl::StatusOr<std::vector<ResourceFile>>& files) {
    Outcome outcome;
    if (!files.ok()) return {Kind::kRefused, files.status(), {}};
    auto snapshot = BuildResourceSnapshot(*files, current_ ? current_->version() + 1 : 1);
    if (!snapshot.ok()) return {Kind::kRefused, snapshot.status(), {}};
    outcome.changes = DiffSnapshots(current_.get(), **snapshot);
    if (current_ && outcome.changes.empty()) return outcome;
    outcome.kind = Kind::kAccepted;
    current_ = *std::move(snapshot);
    return outcome;
  }
  std::shared_ptr<const ResourceSnapshot> current() const { return current_; }

 private:
  std::shared_ptr<const ResourceSnapshot> current_;
};
using Kind = Snapshots::Kind;

TEST(ResourceSnapshotTest, FirstStateIsVersionOneWithEverythingAdded) {
  ResourceDir dir;
  dir.Write("clusters.yaml", Cluster("app", 8080));
  Snapshots store;
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  ASSERT_EQ(outcome.kind, Kind::kAccepted) << outcome.error;
  EXPECT_EQ(store.current()->version(), 1u);
  ASSERT_EQ(outcome.changes.size(), 1u);
  EXPECT_EQ(outcome.changes[0], (ResourceChange{ResourceType::kCluster, "app", "added", ""}));
}

TEST(ResourceSnapshotTest, SameContentKeepsTheVersion) {
  ResourceDir dir;
  dir.Write("clusters.yaml", Cluster("app", 8080));
  Snapshots store;
  store.Offer(LoadResourceFiles(dir.path()));
  // Rewritten with the same content (and a comment): nothing to push.
  dir.Write("clusters.yaml", "# touched\n" + Cluster("app", 8080));
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  EXPECT_EQ(outcome.kind, Kind::kUnchanged);
  EXPECT_EQ(store.current()->version(), 1u);
}

TEST(ResourceSnapshotTest, ChangesBumpTheVersionAndSayWhat) {
  ResourceDir dir;
  dir.Write("a.yaml", Cluster("app", 8080));
  dir.Write("b.yaml", Cluster("db", 5432));
  Snapshots store;
  store.Offer(LoadResourceFiles(dir.path()));
  dir.Write("a.yaml", Cluster("app", 8081));
  dir.Remove("b.yaml");
  dir.Write("nodes/sidecar-1/c.yaml", Cluster("cache", 6379));
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  ASSERT_EQ(outcome.kind, Kind::kAccepted) << outcome.error;
  EXPECT_EQ(store.current()->version(), 2u);
  EXPECT_EQ(outcome.changes, (std::vector<ResourceChange>{
                                 {ResourceType::kCluster, "app", "changed", ""},
                                 {ResourceType::kCluster, "db", "removed", ""},
                                 {ResourceType::kCluster, "cache", "added", "sidecar-1"},
                             }));
}

TEST(ResourceSnapshotTest, NodeFilesGoToTheirNodeOnly) {
  ResourceDir dir;
  dir.Write("a.yaml", Cluster("app", 8080));
  dir.Write("nodes/sidecar-1/c.yaml", Cluster("cache", 6379));
  Snapshots store;
  ASSERT_EQ(store.Offer(LoadResourceFiles(dir.path())).kind, Kind::kAccepted);
  auto snapshot = store.current();
  EXPECT_EQ(snapshot->For("sidecar-1", ResourceType::kCluster).size(), 2u);
  auto other = snapshot->For("sidecar-2", ResourceType::kCluster);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other.begin()->first, "app");
}

TEST(ResourceSnapshotTest, InvalidStateIsRefusedWithItsLocationAndTheLastGoodStays) {
  ResourceDir dir;
  dir.Write("a.yaml", Cluster("app", 8080));
  Snapshots store;
  store.Offer(LoadResourceFiles(dir.path()));
  dir.Write("a.yaml", "clusters:\n- name: app\n  conect_timeout: 1s\n");
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  ASSERT_EQ(outcome.kind, Kind::kRefused);
  EXPECT_NE(outcome.error.message().find(dir.path() + "/a.yaml:3:3:"), std::string::npos)
      << outcome.error;
  EXPECT_EQ(store.current()->version(), 1u);
}

TEST(ResourceSnapshotTest, ValidationErrorsNameTheFileAndLine) {
  ResourceDir dir;
  // Parses, but the proxy's own validation refuses it: the error still names file and line.
  dir.Write("a.yaml", "clusters:\n- name: ''\n");
  Snapshots store;
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  ASSERT_EQ(outcome.kind, Kind::kRefused);
  EXPECT_NE(outcome.error.message().find(dir.path() + "/a.yaml:2:"), std::string::npos)
      << outcome.error;
}

TEST(ResourceSnapshotTest, DuplicateNamesAmongANodesFilesNameBothFiles) {
  ResourceDir dir;
  dir.Write("a.yaml", Cluster("app", 8080));
  dir.Write("nodes/sidecar-1/b.yaml", Cluster("app", 9090));
  Snapshots store;
  auto outcome = store.Offer(LoadResourceFiles(dir.path()));
  ASSERT_EQ(outcome.kind, Kind::kRefused);
  std::string error(outcome.error.message());
  EXPECT_NE(error.find(dir.path() + "/nodes/sidecar-1/b.yaml"), std::string::npos) << error;
  EXPECT_NE(error.find(dir.path() + "/a.yaml"), std::string::npos) << error;
}

TEST(AuditLogTest, AcceptedAndRefusedLines) {
  absl::Time time = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(AuditLog::AcceptedLine(time, "files", 3,
                                   {{ResourceType::kCluster, "app", "added", "sidecar-1"}}),
            R"({"time": "2023-11-14T22:13:20.000Z", "who": "files", "version": "3", )"
            R"("changes": [{"type": "Cluster", "name": "app", "action": "added", )"
            R"("node": "sidecar-1"}]})");
  EXPECT_EQ(AuditLog::RefusedLine(time, "files", "a.yaml:1:1: \"bad\""),
            R"({"time": "2023-11-14T22:13:20.000Z", "who": "files", )"
            R"("refused": "a.yaml:1:1: \"bad\""})");
}

}  // namespace
}  // namespace phoenix::control_plane
