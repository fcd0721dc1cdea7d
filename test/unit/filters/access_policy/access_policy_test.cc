#include "source/filters/access_policy/access_policy.h"

#include "gtest/gtest.h"
#include "source/config/yaml_loader.h"

namespace phoenix::filters {
namespace {

class AccessPolicyTest : public ::testing::Test {
 protected:
  std::unique_ptr<AccessPolicy> Build(const std::string& yaml) {
    config::v1::AccessPolicy proto;
    absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
    EXPECT_TRUE(status.ok()) << status;
    auto policy = std::make_unique<AccessPolicy>(proto, stats_, "ingress", "policy", errors_);
    EXPECT_TRUE(errors_.empty()) << errors_.ToStatus();
    return policy;
  }

  static http::RequestHeaders Request(std::string method, std::string path) {
    http::RequestHeaders r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.authority = "app";
    return r;
  }

  // "DENY:rule", "ALLOW:rule", or "DENY:default" / "ALLOW:default".
  std::string Decide(const AccessPolicy& policy, const http::RequestHeaders& request,
                     const std::string& client = "127.0.0.1", std::string_view principal = {},
                     const http::PathSemantics* app_paths = nullptr) {
    auto d = policy.Evaluate(request, client, principal, app_paths);
    return std::string(d.deny ? "DENY:" : "ALLOW:") + (d.rule ? d.rule->name : "default");
  }

  StatsStore stats_;
  config::ConfigErrors errors_;
};

TEST_F(AccessPolicyTest, PhoenixAppPolicy) {
  auto policy = Build(R"(
rules:
- name: deny_crash
  action: DENY
  match:
    methods: [GET, POST]
    path: {safe_regex: {regex: "/crash([/;].*)?"}, ignore_case: true}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crash")), "DENY:deny_crash");
  EXPECT_EQ(Decide(*policy, Request("GET", "/CRASH/x?y=1")), "DENY:deny_crash");
  EXPECT_EQ(Decide(*policy, Request("HEAD", "/crash")), "DENY:deny_crash");
  EXPECT_EQ(Decide(*policy, Request("PUT", "/crash")), "ALLOW:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crashes")), "ALLOW:default");
  EXPECT_EQ(stats_.counter("http.ingress.access_policy.deny_crash.denied").Value(), 3u);
  EXPECT_EQ(stats_.counter("http.ingress.access_policy.denied").Value(), 3u);
}

TEST_F(AccessPolicyTest, ExactMethodsDoNotExtendToHead) {
  auto policy = Build(R"(
rules:
- {name: get_only, action: DENY, match: {methods: [GET], exact_methods: true}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/")), "DENY:get_only");
  EXPECT_EQ(Decide(*policy, Request("HEAD", "/")), "ALLOW:default");
}

TEST_F(AccessPolicyTest, FirstEnforcedMatchWinsAndDefaultDeny) {
  auto policy = Build(R"(
default_action: DENY
rules:
- {name: admins, action: ALLOW, match: {source_cidrs: ["10.0.0.0/8", "::1/128"]}}
- {name: public, action: ALLOW, match: {path: {prefix: /public/}}}
- {name: never, action: DENY, match: {path: {prefix: /public/}}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/admin"), "10.1.2.3"), "ALLOW:admins");
  EXPECT_EQ(Decide(*policy, Request("GET", "/admin"), "::1"), "ALLOW:admins");
  EXPECT_EQ(Decide(*policy, Request("GET", "/admin"), "11.0.0.1"), "DENY:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/public/x"), "11.0.0.1"), "ALLOW:public");
  EXPECT_EQ(Decide(*policy, Request("GET", "/admin"), "not-an-ip"), "DENY:default");
}

TEST_F(AccessPolicyTest, AndOrNotHeadersAndQuery) {
  auto policy = Build(R"(
rules:
- name: combo
  action: DENY
  match:
    or_rules:
    - headers: [{name: x-debug, present_match: true}]
    - query_parameters: [{name: debug, string_match: {exact: "1"}}]
    not_rule: {source_cidrs: ["192.168.0.0/16"]}
)");
  auto with_header = Request("GET", "/");
  with_header.headers.Add("x-debug", "yes");
  EXPECT_EQ(Decide(*policy, with_header), "DENY:combo");
  EXPECT_EQ(Decide(*policy, with_header, "192.168.1.1"), "ALLOW:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/?debug=1")), "DENY:combo");
  EXPECT_EQ(Decide(*policy, Request("GET", "/?debug=0")), "ALLOW:default");
}

TEST_F(AccessPolicyTest, ShadowRulesCountButNeverDecide) {
  auto policy = Build(R"(
rules:
- {name: trial, action: DENY, shadow: true, match: {path: {prefix: /new}}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/new/thing")), "ALLOW:default");
  EXPECT_EQ(stats_.counter("http.ingress.access_policy.trial.shadow_denied").Value(), 1u);
  EXPECT_EQ(stats_.counter("http.ingress.access_policy.denied").Value(), 0u);
}

// The issue's case: the obvious rule, written as a new security engineer would, in front of
// an app that routes case-insensitively (Express and many others).
TEST_F(AccessPolicyTest, AnObviousDenyCoversEveryFormTheAppServesAlike) {
  auto policy = Build(R"(
rules:
- {name: no_crash, action: DENY, match: {path: {exact: /crash}}}
- {name: no_admin, action: DENY, match: {path: {prefix: /admin/}}}
)");
  // What the normalizer leaves of /crash/. and of http://host/CRASH: /crash/ and /CRASH.
  for (const char* path : {"/crash", "/CRASH", "/crash/", "/Crash//", "/crash;jsessionid=1",
                           "/CRASH/;x", "/crash?x=1"}) {
    EXPECT_EQ(Decide(*policy, Request("GET", path)), "DENY:no_crash") << path;
  }
  EXPECT_EQ(Decide(*policy, Request("HEAD", "/CRASH")), "DENY:no_crash");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crashes")), "ALLOW:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crash/x")), "ALLOW:default");
  for (const char* path : {"/admin/", "/admin", "/ADMIN", "/Admin/users", "/admin;x/users"}) {
    EXPECT_EQ(Decide(*policy, Request("GET", path)), "DENY:no_admin") << path;
  }
  EXPECT_EQ(Decide(*policy, Request("GET", "/administrator")), "ALLOW:default");
}

TEST_F(AccessPolicyTest, AStrictDenyMatchesOnlyAsWritten) {
  auto policy = Build(R"(
rules:
- {name: no_crash, action: DENY, strict: true, match: {path: {exact: /crash}}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crash")), "DENY:no_crash");
  EXPECT_EQ(Decide(*policy, Request("GET", "/CRASH")), "ALLOW:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/crash/")), "ALLOW:default");
}

TEST_F(AccessPolicyTest, AnAllowIsNeverWidened) {
  auto policy = Build(R"(
default_action: DENY
rules:
- {name: public, action: ALLOW, match: {path: {exact: /public}}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/public")), "ALLOW:public");
  EXPECT_EQ(Decide(*policy, Request("GET", "/PUBLIC")), "DENY:default");
  EXPECT_EQ(Decide(*policy, Request("GET", "/public/")), "DENY:default");
}

// Widening must only ever make a rule fail closed: under a not_rule the polarity flips.
TEST_F(AccessPolicyTest, NotRulesWidenOnlyWhereThatFailsClosed) {
  auto deny = Build(R"(
rules:
- {name: only_public, action: DENY, match: {not_rule: {path: {prefix: /public/}}}}
)");
  EXPECT_EQ(Decide(*deny, Request("GET", "/public/x")), "ALLOW:default");
  // Widening the exception would let /PUBLIC/x through; it stays as written: denied.
  EXPECT_EQ(Decide(*deny, Request("GET", "/PUBLIC/x")), "DENY:only_public");
  auto allow = Build(R"(
default_action: DENY
rules:
- {name: all_but_admin, action: ALLOW, match: {not_rule: {path: {exact: /admin}}}}
)");
  EXPECT_EQ(Decide(*allow, Request("GET", "/page")), "ALLOW:all_but_admin");
  EXPECT_EQ(Decide(*allow, Request("GET", "/admin")), "DENY:default");
  // The exception to the allow is widened: /ADMIN is not allowed either.
  EXPECT_EQ(Decide(*allow, Request("GET", "/ADMIN/")), "DENY:default");
}

TEST_F(AccessPolicyTest, RegexDenyIsWidenedToo) {
  auto policy = Build(R"(
rules:
- {name: no_gen, action: DENY, match: {path: {safe_regex: {regex: "/generate[a-z]*"}}}}
)");
  EXPECT_EQ(Decide(*policy, Request("GET", "/GenerateCert")), "DENY:no_gen");
  EXPECT_EQ(Decide(*policy, Request("GET", "/generatecert/")), "DENY:no_gen");
  EXPECT_EQ(Decide(*policy, Request("GET", "/generate1")), "ALLOW:default");
}

TEST_F(AccessPolicyTest, ExplainSaysWhichFormMatched) {
  auto policy = Build(R"(
rules:
- {name: no_crash, action: DENY, match: {path: {exact: /crash}}}
)");
  http::PolicyExplanation explanation;
  policy->Explain(Request("GET", "/CRASH/"), "127.0.0.1", "", nullptr, explanation);
  ASSERT_FALSE(explanation.lines.empty());
  EXPECT_EQ(explanation.denied_by, "no_crash");
  EXPECT_EQ(explanation.lines.back(),
            "access_policy: rule 'no_crash' matched the path in its folded form /crash (case, "
            "trailing slash), as the app would serve it; strict: true matches only as written");
  http::PolicyExplanation as_written;
  policy->Explain(Request("GET", "/crash"), "127.0.0.1", "", nullptr, as_written);
  EXPECT_EQ(as_written.lines.back(), "access_policy: DENY by rule 'no_crash'");
}

TEST_F(AccessPolicyTest, DeclaredAppSemanticsApplyToAllowAndStrictRules) {
  auto policy = Build(R"(
default_action: DENY
rules:
- {name: strict_no_admin, action: DENY, strict: true, match: {path: {prefix: /admin}}}
- {name: open_docs, action: ALLOW, match: {path: {exact: /docs}}}
- {name: not_internal, action: ALLOW, match: {not_rule: {path: {prefix: /internal}}}}
)");
  // Undeclared: strict and allow rules match as written (the default-deny catches the rest).
  EXPECT_EQ(Decide(*policy, Request("GET", "/Admin")), "ALLOW:not_internal");
  EXPECT_EQ(Decide(*policy, Request("GET", "/DOCS")), "ALLOW:not_internal");
  // Declared case-insensitive: /Admin is /admin to the app, and so to every rule.
  http::PathSemantics ci{.case_insensitive = true};
  EXPECT_EQ(Decide(*policy, Request("GET", "/Admin"), "127.0.0.1", {}, &ci),
            "DENY:strict_no_admin");
  EXPECT_EQ(Decide(*policy, Request("GET", "/DOCS"), "127.0.0.1", {}, &ci), "ALLOW:open_docs");
  // Under a not_rule the declared form also holds: /INTERNAL is /internal, not an exception.
  EXPECT_EQ(Decide(*policy, Request("GET", "/INTERNAL/x"), "127.0.0.1", {}, &ci), "DENY:default");
  // Only what is declared: a trailing slash is still another path here.
  EXPECT_EQ(Decide(*policy, Request("GET", "/docs/"), "127.0.0.1", {}, &ci), "ALLOW:not_internal");
  http::PathSemantics slash{.ignore_trailing_slash = true, .ignore_path_params = true};
  EXPECT_EQ(Decide(*policy, Request("GET", "/docs/"), "127.0.0.1", {}, &slash), "ALLOW:open_docs");
  EXPECT_EQ(Decide(*policy, Request("GET", "/docs;v=1"), "127.0.0.1", {}, &slash),
            "ALLOW:open_docs");

  http::PolicyExplanation explanation;
  policy->Explain(Request("GET", "/ADMIN"), "127.0.0.1", "", &ci, explanation);
  EXPECT_EQ(explanation.lines.back(),
            "access_policy: rule 'strict_no_admin' matched the path in its folded form /admin "
            "(case), as the virtual host's app_path_semantics declare the app serves it");
}

TEST(FoldPathTest, OnlyWhatIsAsked) {
  EXPECT_EQ(matchers::FoldPath("/A;x/B/", {.case_insensitive = true}), "/a;x/b/");
  EXPECT_EQ(matchers::FoldPath("/A;x/B/", {.ignore_trailing_slash = true}), "/A;x/B");
  EXPECT_EQ(matchers::FoldPath("/A;x/B/", {.ignore_path_params = true}), "/A/B/");
  EXPECT_EQ(matchers::FoldPath("/A;x/B/"), "/a/b");
}

TEST(FoldPathTest, LowercaseWithoutParamsOrTrailingSlash) {
  EXPECT_EQ(matchers::FoldPath("/Crash;a=b/X;y/"), "/crash/x");
  EXPECT_EQ(matchers::FoldPath("/"), "/");
  EXPECT_EQ(matchers::FoldPath("//"), "/");
  EXPECT_EQ(matchers::DescribeFolding("/Crash;a/"), "case, ;params, trailing slash");
  EXPECT_EQ(matchers::DescribeFolding("/crash"), "");
}

TEST(CidrRangeTest, ParsesAndMatches) {
  matchers::CidrRange range;
  ASSERT_TRUE(matchers::CidrRange::Parse("10.1.0.0/16", &range));
  in6_addr a;
  ASSERT_TRUE(matchers::CidrRange::ParseAddress("10.1.200.3", &a));
  EXPECT_TRUE(range.Contains(a));
  ASSERT_TRUE(matchers::CidrRange::ParseAddress("10.2.0.1", &a));
  EXPECT_FALSE(range.Contains(a));
  ASSERT_TRUE(matchers::CidrRange::Parse("10.1.2.3/20", &range));  // Host bits are ignored.
  ASSERT_TRUE(matchers::CidrRange::ParseAddress("10.1.15.255", &a));
  EXPECT_TRUE(range.Contains(a));
  EXPECT_FALSE(matchers::CidrRange::Parse("10.0.0.0/33", &range));
  EXPECT_FALSE(matchers::CidrRange::Parse("nope/8", &range));
  EXPECT_FALSE(matchers::CidrRange::Parse("::/129", &range));
}

TEST(AccessPolicyConfigTest, ReportsBadRules) {
  config::v1::AccessPolicy proto;
  ASSERT_TRUE(config::LoadYamlString(R"(
rules:
- {action: DENY, match: {source_cidrs: ["1.2.3.4/99"]}}
- {name: a, match: {path: {safe_regex: {regex: "("}}}}
- {name: a}
)",
                                     &proto, nullptr)
                  .ok());
  StatsStore stats;
  config::ConfigErrors errors;
  AccessPolicy policy(proto, stats, "ingress", "p", errors);
  std::string all(errors.ToStatus().message());
  EXPECT_NE(all.find("p.rules[0].name"), std::string::npos) << all;
  EXPECT_NE(all.find("p.rules[0].match.source_cidrs[0]: '1.2.3.4/99' is not a CIDR range"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("p.rules[1].match.path.safe_regex.regex"), std::string::npos) << all;
  EXPECT_NE(all.find("p.rules[2].name: rule name 'a' is used twice"), std::string::npos) << all;
}

TEST_F(AccessPolicyTest, PrincipalRulesMatchTheVerifiedPeerOnly) {
  auto policy = Build(R"(
rules:
- name: admin_only
  action: ALLOW
  match:
    and_rules:
    - path: {prefix: /admin/}
    - principal: {exact: "spiffe://phoenix.local/ns/ops/sa/admin"}
- name: deny_admin
  action: DENY
  match: {path: {prefix: /admin/}}
)");
  auto admin = Request("GET", "/admin/users");
  EXPECT_EQ(Decide(*policy, admin, "127.0.0.1", "spiffe://phoenix.local/ns/ops/sa/admin"),
            "ALLOW:admin_only");
  EXPECT_EQ(Decide(*policy, admin, "127.0.0.1", "spiffe://phoenix.local/ns/default/sa/web"),
            "DENY:deny_admin");
  EXPECT_EQ(Decide(*policy, admin), "DENY:deny_admin");  // No certificate: no principal.
  EXPECT_EQ(Decide(*policy, Request("GET", "/")), "ALLOW:default");
}

}  // namespace
}  // namespace phoenix::filters
