#include "source/common/rotating_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/common/simulated_time_source.h"

namespace phoenix {
namespace {

using testing::ElementsAre;
using testing::SizeIs;

class RotatingFileTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/phoenix-rotating-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    for (const std::string& name : Names()) unlink((dir_ + "/" + name).c_str());
    rmdir(dir_.c_str());
  }

  // The directory's file names, sorted.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    DIR* dir = opendir(dir_.c_str());
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

  SimulatedTimeSource clock_;
  std::string dir_, path_;
};

TEST_F(RotatingFileTest, AppendsWithoutRotatingWithinPolicy) {
  auto file = RotatingFile::Open(path_, {.max_bytes = 100}, &clock_);
  ASSERT_TRUE(file.ok()) << file.status();
  (*file)->Write("one\n");
  (*file)->Write("two\n");
  EXPECT_THAT(Names(), ElementsAre("access.log"));
  EXPECT_EQ(Read("access.log"), "one\ntwo\n");
}

TEST_F(RotatingFileTest, RotatesBySizeBeforeTheWriteThatWouldPassIt) {
  auto file = RotatingFile::Open(path_, {.max_bytes = 10, .daily = false}, &clock_);
  ASSERT_TRUE(file.ok());
  (*file)->Write("12345678\n");
  (*file)->Write("abc\n");  // 9 + 4 > 10: rotate first.
  // 2024-01-01T00:00:00Z is the simulated clock's start.
  EXPECT_THAT(Names(), ElementsAre("access.log", "access.log.20240101-000000"));
  EXPECT_EQ(Read("access.log.20240101-000000"), "12345678\n");
  EXPECT_EQ(Read("access.log"), "abc\n");
  (*file)->Write("0123456789\n");  // Same second: the rotated name gets a counter.
  EXPECT_THAT(Names(), ElementsAre("access.log", "access.log.20240101-000000",
                                   "access.log.20240101-000000.1"));
}

TEST_F(RotatingFileTest, AWriteLargerThanTheLimitStillLandsWhole) {
  auto file = RotatingFile::Open(path_, {.max_bytes = 4, .daily = false}, &clock_);
  ASSERT_TRUE(file.ok());
  (*file)->Write("0123456789\n");
  EXPECT_THAT(Names(), ElementsAre("access.log"));  // An empty file is never rotated.
  EXPECT_EQ(Read("access.log"), "0123456789\n");
}

TEST_F(RotatingFileTest, RotatesWhenTheUtcDayChanges) {
  auto file = RotatingFile::Open(path_, {}, &clock_);
  ASSERT_TRUE(file.ok());
  (*file)->Write("day one\n");
  clock_.Advance(std::chrono::hours(23));
  (*file)->Write("still day one\n");
  EXPECT_THAT(Names(), ElementsAre("access.log"));
  clock_.Advance(std::chrono::hours(1) + std::chrono::seconds(5));
  (*file)->Write("day two\n");
  EXPECT_THAT(Names(), ElementsAre("access.log", "access.log.20240102-000005"));
  EXPECT_EQ(Read("access.log.20240102-000005"), "day one\nstill day one\n");
  EXPECT_EQ(Read("access.log"), "day two\n");
}

TEST_F(RotatingFileTest, DeletesRotatedFilesPastKeepDays) {
  auto file = RotatingFile::Open(path_, {.keep_days = 7}, &clock_);
  ASSERT_TRUE(file.ok());
  // Two rotated files of earlier runs: one 8 days old, one 6; and an unrelated file.
  auto age = [&](const std::string& name, int days) {
    std::ofstream(dir_ + "/" + name) << "old\n";
    int64_t now = clock_.SystemUs() / 1000000;
    timeval times[2] = {{now - days * 86400, 0}, {now - days * 86400, 0}};
    ASSERT_EQ(utimes((dir_ + "/" + name).c_str(), times), 0);
  };
  age("access.log.20231224-000000", 8);
  age("access.log.20231226-000000.gz", 6);
  age("access.log.keep", 30);
  (*file)->Write("x\n");
  ASSERT_TRUE((*file)->Rotate().ok());
  EXPECT_THAT(Names(), ElementsAre("access.log", "access.log.20231226-000000.gz",
                                   "access.log.20240101-000000", "access.log.keep"));
}

TEST_F(RotatingFileTest, CompressesRotatedFiles) {
  auto file = RotatingFile::Open(path_, {.compress = true}, &clock_);
  ASSERT_TRUE(file.ok());
  (*file)->Write("compress me\n");
  ASSERT_TRUE((*file)->Rotate().ok());
  (*file)->WaitForCompression();
  EXPECT_THAT(Names(), ElementsAre("access.log", "access.log.20240101-000000.gz"));
  std::string command = "gzip -dc " + dir_ + "/access.log.20240101-000000.gz";
  FILE* gunzip = popen(command.c_str(), "r");
  ASSERT_NE(gunzip, nullptr);
  char buffer[64] = {};
  size_t n = fread(buffer, 1, sizeof(buffer) - 1, gunzip);
  pclose(gunzip);
  EXPECT_EQ(std::string(buffer, n), "compress me\n");
}

TEST_F(RotatingFileTest, ReopenAllFollowsAnExternalRename) {
  auto file = RotatingFile::Open(path_, {}, &clock_);
  ASSERT_TRUE(file.ok());
  (*file)->Write("before\n");
  ASSERT_EQ(rename(path_.c_str(), (path_ + ".1").c_str()), 0);  // logrotate's move.
  (*file)->Write("still the old inode\n");
  RotatingFile::ReopenAll();
  (*file)->Write("after\n");
  EXPECT_EQ(Read("access.log.1"), "before\nstill the old inode\n");
  EXPECT_EQ(Read("access.log"), "after\n");
}

TEST_F(RotatingFileTest, OpenFailsWithTheReason) {
  auto file = RotatingFile::Open(dir_ + "/missing/dir/x.log", {}, &clock_);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), testing::HasSubstr("No such file"));
}

}  // namespace
}  // namespace phoenix
