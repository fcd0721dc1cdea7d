#include "source/http/path_normalizer.h"

#include "gtest/gtest.h"

namespace phoenix::http {
namespace {

struct Case {
  const char* in;
  const char* out;  // nullptr: rejected
};

class NormalizePathTest : public ::testing::TestWithParam<Case> {};

TEST_P(NormalizePathTest, Defaults) {
  std::string target = GetParam().in;
  bool ok = NormalizePath(target, PathNormalizationOptions());
  if (GetParam().out == nullptr) {
    EXPECT_FALSE(ok) << GetParam().in << " -> " << target;
  } else {
    ASSERT_TRUE(ok) << GetParam().in;
    EXPECT_EQ(target, GetParam().out) << GetParam().in;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TrickyPaths, NormalizePathTest,
    ::testing::Values(Case{"/", "/"}, Case{"/crash", "/crash"}, Case{"//crash", "/crash"},
                      Case{"///crash//", "/crash/"}, Case{"/%63rash", "/crash"},
                      Case{"/%63%72%61%73%68", "/crash"}, Case{"/a/../crash", "/crash"},
                      Case{"/a/b/../../crash", "/crash"}, Case{"/../crash", "/crash"},
                      Case{"/./crash", "/crash"}, Case{"/crash/.", "/crash/"},
                      Case{"/crash/..", "/"}, Case{"/%2e%2e/crash", "/crash"},
                      Case{"/a/%2E%2E/crash", "/crash"}, Case{"/crash?x=/../y", "/crash?x=/../y"},
                      Case{"/crash#frag", "/crash"}, Case{"/a%20b", "/a%20b"},
                      Case{"/a%3cb", "/a%3Cb"}, Case{"/a;x/b", "/a;x/b"}, Case{"*", "*"},
                      // Rejected:
                      Case{"/a%2Fcrash", nullptr}, Case{"/a%2fcrash", nullptr},
                      Case{"/a%5Ccrash", nullptr}, Case{"/a\\crash", nullptr},
                      Case{"/%zz", nullptr}, Case{"/%6", nullptr}, Case{"/%", nullptr},
                      Case{"/a/..;/crash", nullptr}, Case{"/.;/crash", nullptr},
                      Case{"crash", nullptr}, Case{"", nullptr}));

TEST(NormalizePathOptionsTest, KeepEscapedSlashesUndecoded) {
  PathNormalizationOptions options;
  options.reject_escaped_slashes = false;
  std::string target = "/a%2fb/%63";
  ASSERT_TRUE(NormalizePath(target, options));
  EXPECT_EQ(target, "/a%2Fb/c");
}

TEST(NormalizePathOptionsTest, EverythingOff) {
  PathNormalizationOptions options{
      .normalize = false, .merge_slashes = false, .reject_escaped_slashes = true};
  std::string target = "//a/../%63";
  ASSERT_TRUE(NormalizePath(target, options));
  EXPECT_EQ(target, "//a/../%63");
}

}  // namespace
}  // namespace phoenix::http
