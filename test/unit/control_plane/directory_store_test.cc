#include "source/control_plane/directory_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace phoenix::control_plane {
namespace {

namespace fs = std::filesystem;

class DirectoryStoreTest : public testing::Test {
 protected:
  DirectoryStoreTest() {
    char pattern[] = "/tmp/phoenix-store-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    audit_ = dir_ + "/audit.jsonl";
  }
  ~DirectoryStoreTest() override { fs::remove_all(dir_); }

  std::unique_ptr<DirectoryStore> NewStore() {
    return std::make_unique<DirectoryStore>(dir_, audit_, std::chrono::milliseconds(10));
  }
  void Write(const std::string& relative, const std::string& text) {
    fs::create_directories((fs::path(dir_) / relative).parent_path());
    std::ofstream(fs::path(dir_) / relative) << text;
  }

  std::string dir_;
  std::string audit_;
};

TEST_F(DirectoryStoreTest, ANewDirectoryHasNoVersionYet) {
  Write("a.yaml", "x");
  auto state = NewStore()->Read();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->version, 0u);
  EXPECT_TRUE(SameFileSets(state->files, FileSet{{"a.yaml", "x"}}));
}

TEST_F(DirectoryStoreTest, ACommitWritesTheFilesKeepsTheVersionAndAudits) {
  Write("a.yaml", "a");
  Write("b.yaml", "b");
  auto store = NewStore();
  StoredState seen = *store->Read();
  FileSet next = {{"a.yaml", "A"}, {"nodes/n1/c.yaml", "c"}};
  ASSERT_TRUE(store->Commit(seen, next, R"({"who": "alice"})").ok());
  auto state = store->Read();
  EXPECT_EQ(state->version, 1u);
  EXPECT_TRUE(SameFileSets(state->files, next));  // b.yaml removed.
  EXPECT_TRUE(SameFileSets(*store->Version(1), next));
  EXPECT_EQ(*store->AuditLines(), std::vector<std::string>{R"({"who": "alice"})"});
  // History is hidden from the resource loader, and private (it may hold keys).
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/.phoenix-cp/history/1.files").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(FingerprintResourceFiles(dir_).size(), 2u);
}

TEST_F(DirectoryStoreTest, VersionsAndHistorySurviveANewStore) {
  Write("a.yaml", "1");
  {
    auto store = NewStore();
    StoredState seen = *store->Read();
    ASSERT_TRUE(store->Commit(seen, {{"a.yaml", "1"}}, "{}").ok());
    seen = *store->Read();
    ASSERT_TRUE(store->Commit(seen, {{"a.yaml", "2"}}, "{}").ok());
  }
  auto store = NewStore();
  auto state = store->Read();
  EXPECT_EQ(state->version, 2u);
  EXPECT_TRUE(SameFileSets(*store->Version(1), FileSet{{"a.yaml", "1"}}));
  EXPECT_EQ(store->AuditLines()->size(), 2u);
}

TEST_F(DirectoryStoreTest, ACommitOverAStaleViewIsAborted) {
  Write("a.yaml", "1");
  auto store = NewStore();
  StoredState seen = *store->Read();
  ASSERT_TRUE(store->Commit(seen, {{"a.yaml", "2"}}, "{}").ok());
  // Committed over version 0 again: another commit came first.
  EXPECT_EQ(store->Commit(seen, {{"a.yaml", "3"}}, "{}").code(), absl::StatusCode::kAborted);
  // Edited by hand since it was read: the edit is not overwritten unseen.
  StoredState now = *store->Read();
  Write("a.yaml", "by hand");
  EXPECT_EQ(store->Commit(now, {{"a.yaml", "4"}}, "{}").code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(SameFileSets(store->Read()->files, FileSet{{"a.yaml", "by hand"}}));
}

TEST_F(DirectoryStoreTest, KeepsTheLastVersionsOnly) {
  auto store = NewStore();
  for (uint64_t v = 1; v <= ResourceStore::kKeptVersions + 2; ++v) {
    StoredState seen = *store->Read();
    ASSERT_TRUE(store->Commit(seen, {{"a.yaml", std::to_string(v)}}, "{}").ok());
  }
  EXPECT_EQ(store->Version(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(store->Version(2).status().message().find("(3 to 52)"), std::string::npos)
      << store->Version(2).status();
  EXPECT_TRUE(SameFileSets(*store->Version(3), FileSet{{"a.yaml", "3"}}));
}

}  // namespace
}  // namespace phoenix::control_plane
