#include "source/control_plane/change_plan.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

std::string Cluster(const std::string& name, int port) {
  return "clusters:\n- name: " + name +
         "\n  connect_timeout: 1s\n  load_assignment:\n    cluster_name: " + name +
         "\n    endpoints:\n    - lb_endpoints:\n      - endpoint: {address: {socket_address: "
         "{address: 127.0.0.1, port_value: " +
         std::to_string(port) + "}}}\n";
}

// Whether `diff` has a line starting with `op` that contains `text`.
bool HasLine(const std::string& diff, char op, const std::string& text) {
  std::istringstream in(diff);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == op && line.find(text) != std::string::npos) return true;
  }
  return false;
}

class ChangePlanTest : public testing::Test {
 protected:
  ChangePlanTest() {
    char pattern[] = "/tmp/phoenix-plan-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    std::ofstream(fs::path(dir_) / "clusters.yaml") << Cluster("app", 8080);
    auto files = LoadResourceFiles(dir_);
    current_ = *BuildResourceSnapshot(*files, 1);
    in_force_ = *ReadIncomingFiles(dir_);
  }
  absl::StatusOr<ChangePlan> Plan(const std::vector<IncomingFile>& incoming) {
    return PlanChange(in_force_, incoming, dir_, current_.get(), 2);
  }
  ~ChangePlanTest() override { fs::remove_all(dir_); }

  std::string dir_;
  std::shared_ptr<const ResourceSnapshot> current_;
  std::vector<IncomingFile> in_force_;
};

TEST_F(ChangePlanTest, PathsMustStayInTheDirectory) {
  EXPECT_TRUE(CheckIncomingPath("routes.yaml").ok());
  EXPECT_TRUE(CheckIncomingPath("nodes/sidecar-1/secrets.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath("../etc/passwd.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath("/etc/x.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath("nodes/../x.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath(".hidden.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath("routes.json").ok());
  EXPECT_FALSE(CheckIncomingPath("a/b.yaml").ok());
  EXPECT_FALSE(CheckIncomingPath("nodes/x/y/z.yaml").ok());
}

TEST_F(ChangePlanTest, AChangedFileIsDiffedPerResource) {
  auto plan = Plan({{"clusters.yaml", Cluster("app", 9090) + Cluster("db", 5432).substr(10)}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->changes.size(), 2u);
  EXPECT_EQ(plan->changes[0], (ResourceChange{ResourceType::kCluster, "app", "changed", ""}));
  EXPECT_EQ(plan->changes[1], (ResourceChange{ResourceType::kCluster, "db", "added", ""}));
  EXPECT_EQ(plan->candidate->version(), 2u);
  auto diffs = DescribeChanges(current_.get(), *plan->candidate, plan->changes);
  ASSERT_EQ(diffs.size(), 2u);
  EXPECT_NE(diffs[0].diff.find("--- Cluster/app\n+++ Cluster/app\n"), std::string::npos)
      << diffs[0].diff;
  EXPECT_TRUE(HasLine(diffs[0].diff, '-', "port_value: 8080")) << diffs[0].diff;
  EXPECT_TRUE(HasLine(diffs[0].diff, '+', "port_value: 9090")) << diffs[0].diff;
  EXPECT_FALSE(HasLine(diffs[0].diff, '-', "connect_timeout")) << diffs[0].diff;
  EXPECT_NE(diffs[1].diff.find("--- /dev/null\n+++ Cluster/db\n"), std::string::npos);
}

TEST_F(ChangePlanTest, ErrorsNameTheFileAsSentWithLineAndColumn) {
  auto plan = Plan({{"more.yaml", "clusters:\n- name: x\n  conect_timeout: 1s\n"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(plan.status().message()).rfind("more.yaml:3:3:", 0), 0u) << plan.status();
}

TEST_F(ChangePlanTest, SameContentIsNoChange) {
  auto plan = Plan({{"clusters.yaml", Cluster("app", 8080)}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
}

TEST_F(ChangePlanTest, ThePlanHoldsTheWholeNewFileSet) {
  auto plan = Plan({{"nodes/n1/c.yaml", Cluster("n1-only", 1)}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->files.size(), 2u);
  EXPECT_EQ(plan->files[0].path, "clusters.yaml");
  EXPECT_EQ(plan->files[1].path, "nodes/n1/c.yaml");
  EXPECT_EQ(plan->candidate->per_node().at("n1").at(ResourceType::kCluster).at("n1-only").file,
            dir_ + "/nodes/n1/c.yaml");
}

TEST_F(ChangePlanTest, ErrorsInFilesInForceNameWhereTheyAreKept) {
  in_force_.push_back({"bad.yaml", "clusters:\n- name: x\n  conect_timeout: 1s\n"});
  auto plan = Plan({});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(std::string(plan.status().message()).rfind(dir_ + "/bad.yaml:3:3:", 0), 0u)
      << plan.status();
}

TEST_F(ChangePlanTest, WritesLandInTheDirectory) {
  ASSERT_TRUE(WriteIncomingFiles(dir_, {{"nodes/n1/c.yaml", Cluster("n1-only", 1)}}).ok());
  std::ifstream in(fs::path(dir_) / "nodes/n1/c.yaml");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), Cluster("n1-only", 1));
  EXPECT_FALSE(WriteIncomingFiles(dir_, {{"../escape.yaml", "x"}}).ok());
  EXPECT_FALSE(fs::exists(fs::path(dir_).parent_path() / "escape.yaml"));
}

}  // namespace
}  // namespace phoenix::control_plane
