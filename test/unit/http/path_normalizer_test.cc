#include "source/http/path_normalizer.h"

#include <ostream>
#include <string>

#include "gtest/gtest.h"

namespace phoenix::http {
namespace {

struct Case {
  const char* name;  // the test name suffix: [A-Za-z0-9_]
  const char* in;
  const char* out;  // nullptr: rejected
};

// Shown by --gtest_list_tests and in failures instead of the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) {
  *os << ::testing::PrintToString(std::string(c.in)) << " -> "
      << (c.out == nullptr ? "rejected" : ::testing::PrintToString(std::string(c.out)));
}

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
    ::testing::Values(
        Case{"Root", "/", "/"}, Case{"Plain", "/crash", "/crash"},
        Case{"LeadingDoubleSlash", "//crash", "/crash"},
        Case{"RepeatedSlashes", "///crash//", "/crash/"},
        Case{"EncodedLetter", "/%63rash", "/crash"},
        Case{"FullyEncoded", "/%63%72%61%73%68", "/crash"}, Case{"DotDot", "/a/../crash", "/crash"},
        Case{"TwoDotDots", "/a/b/../../crash", "/crash"},
        Case{"DotDotAboveRoot", "/../crash", "/crash"}, Case{"Dot", "/./crash", "/crash"},
        Case{"TrailingDot", "/crash/.", "/crash/"}, Case{"TrailingDotDot", "/crash/..", "/"},
        Case{"EncodedDotDot", "/%2e%2e/crash", "/crash"},
        Case{"UppercaseEncodedDotDot", "/a/%2E%2E/crash", "/crash"},
        Case{"QueryUntouched", "/crash?x=/../y", "/crash?x=/../y"},
        Case{"FragmentDropped", "/crash#frag", "/crash"},
        Case{"EncodedSpaceKept", "/a%20b", "/a%20b"}, Case{"EscapeUppercased", "/a%3cb", "/a%3Cb"},
        Case{"SemicolonKept", "/a;x/b", "/a;x/b"}, Case{"Asterisk", "*", "*"},
        // Dots inside a segment are not dot segments (gRPC's "/package.Service/Method").
        Case{"DotsInSegmentsKept", "/pkg.Svc/Get.v1", "/pkg.Svc/Get.v1"},
        Case{"DotPrefixedNamesKept", "/.well-known/a..b/...", "/.well-known/a..b/..."},
        Case{"DotDotBeforeDotted", "/a/../pkg.Svc/M", "/pkg.Svc/M"},
        Case{"DotAfterDotted", "/pkg.Svc/./M", "/pkg.Svc/M"},
        Case{"DottedThenDoubleSlash", "/pkg.Svc//M", "/pkg.Svc/M"},
        // Rejected:
        Case{"RejectsEncodedSlash", "/a%2Fcrash", nullptr},
        Case{"RejectsLowercaseEncodedSlash", "/a%2fcrash", nullptr},
        Case{"RejectsEncodedBackslash", "/a%5Ccrash", nullptr},
        Case{"RejectsBackslash", "/a\\crash", nullptr},
        Case{"RejectsInvalidEscape", "/%zz", nullptr},
        Case{"RejectsTruncatedEscape", "/%6", nullptr}, Case{"RejectsBarePercent", "/%", nullptr},
        Case{"RejectsDotDotWithParams", "/a/..;/crash", nullptr},
        Case{"RejectsDotWithParams", "/.;/crash", nullptr},
        Case{"RejectsDotDotWithParamsAfterDotted", "/pkg.Svc/..;x/crash", nullptr},
        Case{"RejectsNoLeadingSlash", "crash", nullptr}, Case{"RejectsEmpty", "", nullptr}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

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
