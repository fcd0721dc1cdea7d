"""The access_policy filter through the real binary: deny rules that path tricks cannot get
past, shadow mode, and a client address that x-forwarded-for cannot spoof."""

import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, raw_statuses
from harness.config import simple_config
from harness.process import free_port, wait_until

ROUTER = {"name": "phoenix.filters.http.router"}


def policy_filter(rules, default_action=None):
    config = {"@type": "type.googleapis.com/phoenix.config.v1.AccessPolicy", "rules": rules}
    if default_action:
        config["default_action"] = default_action
    return {"name": "phoenix.filters.http.access_policy", "typed_config": config}


DENY_CRASH = {"name": "deny_crash", "action": "DENY",
              "match": {"path": {"safe_regex": {"regex": "/crash([/;].*)?"},
                                 "ignore_case": True}}}


class ObviousDenyRuleTest(PhoenixTestCase):
    """The issue's case: `exact: /crash`, written the obvious way, holds for every form a
    case-insensitive app would route to its /crash handler."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(
            cls.port, free_port(), [cls.app.port],
            http_filters=[policy_filter([
                {"name": "no_crash", "action": "DENY", "match": {"path": {"exact": "/crash"}}},
                {"name": "strict_gen", "action": "DENY", "strict": True,
                 "match": {"path": {"exact": "/generatecert"}}},
                {"name": "ops_admin_only", "action": "DENY",
                 "match": {"path": {"prefix": "/admin/"},
                           "not_rule": {"principal": {
                               "exact": "spiffe://phoenix.test/ns/ops/sa/admin"}}}}]),
                ROUTER]))

    def setUp(self):
        self.app.reset()

    def test_every_form_of_the_path_is_denied(self):
        requests = [b"GET /CRASH HTTP/1.1", b"GET /crash/ HTTP/1.1", b"GET /crash/. HTTP/1.1",
                    b"HEAD /CRASH HTTP/1.1", b"GET http://host/CRASH HTTP/1.1",
                    b"GET /Crash;jsessionid=1 HTTP/1.1", b"GET /crash HTTP/1.1"]
        for request in requests:
            with self.subTest(request=request):
                head = request.startswith(b"HEAD")
                self.assertEqual(raw_statuses(
                    self.port, request + b"\r\nHost: app\r\nConnection: close\r\n\r\n",
                    heads=(0,) if head else ()), [403])
        self.assertEqual(self.app.requests_snapshot(), [], "a form of /crash reached the app")
        self.assertEqual(http_get(self.port, "/crashes").status, 200)

    def test_a_strict_rule_matches_only_as_written(self):
        self.assertEqual(http_get(self.port, "/generatecert").status, 403)
        self.assertEqual(http_get(self.port, "/GenerateCert").status, 200)

    def test_explain_takes_a_principal(self):
        status, body = self.px.admin_get("/policy/explain?path=/ADMIN/users")
        self.assertEqual(status, 200, body)
        self.assertIn("DENY by rule 'ops_admin_only'", body)
        status, body = self.px.admin_get(
            "/policy/explain?path=/admin/users&principal=spiffe://phoenix.test/ns/ops/sa/admin")
        self.assertEqual(status, 200, body)
        self.assertIn("principal spiffe://phoenix.test/ns/ops/sa/admin", body)
        self.assertIn("allow by the default action", body)

    def test_explain_names_the_folded_form(self):
        status, body = self.px.admin_get("/policy/explain?path=/CRASH/")
        self.assertEqual(status, 200, body)
        self.assertIn("matched the path in its folded form /crash (case, trailing slash)", body)


class DeclaredAppPathSemanticsTest(PhoenixTestCase):
    """A virtual host declares that its app matches paths case-insensitively and ignores a
    trailing slash: routes, allow rules, strict deny rules and rate limits all follow."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        limit = {"name": "gen", "match": {"path": {"exact": "/generatecert"}},
                 "token_bucket": {"max_tokens": 1, "fill_interval": "3600s"}}
        cls.px = cls.start_class_phoenix(simple_config(
            cls.port, free_port(), [cls.app.port],
            virtual_hosts=[{
                "name": "app", "domains": ["*"],
                "app_path_semantics": {"case_insensitive": True, "ignore_trailing_slash": True},
                "routes": [{"name": "report", "match": {"path": "/report"},
                            "route": {"cluster": "app"}},
                           {"name": "all", "match": {"prefix": "/"},
                            "route": {"cluster": "app"}}]}],
            http_filters=[
                policy_filter([
                    {"name": "strict_crash", "action": "DENY", "strict": True,
                     "match": {"path": {"exact": "/crash"}}},
                    {"name": "docs", "action": "ALLOW", "match": {"path": {"exact": "/docs"}}},
                    {"name": "report", "action": "ALLOW",
                     "match": {"path": {"exact": "/report"}}},
                    {"name": "gen", "action": "ALLOW",
                     "match": {"path": {"exact": "/generatecert"}}}],
                    default_action="DENY"),
                {"name": "phoenix.filters.http.local_ratelimit",
                 "typed_config": {"@type": "type.googleapis.com/phoenix.config.v1.LocalRateLimit",
                                  "limits": [limit]}},
                ROUTER]))

    def test_routes_and_rules_follow_the_declaration(self):
        self.assertEqual(http_get(self.port, "/CRASH/").status, 403)  # strict, yet declared
        self.assertEqual(http_get(self.port, "/DOCS").status, 200)    # allow covers /DOCS
        self.assertEqual(http_get(self.port, "/docs/").status, 200)
        self.assertEqual(http_get(self.port, "/other").status, 403)   # default deny
        self.assertEqual(http_get(self.port, "/REPORT/").status, 200)
        entry = self.px.wait_access_log(lambda e: e["path"] == "/REPORT/")
        self.assertEqual(entry["policy_rule"], "report")

    def test_a_rate_limit_cannot_be_dodged_by_case(self):
        statuses = [http_get(self.port, p).status
                    for p in ("/generatecert", "/GenerateCert", "/GENERATECERT/")]
        self.assertEqual(statuses, [200, 429, 429])

    def test_explain_says_the_declaration_decided(self):
        status, body = self.px.admin_get("/policy/explain?path=/Crash")
        self.assertEqual(status, 200, body)
        self.assertIn("DENY by rule 'strict_crash'", body)
        self.assertIn("as the virtual host's app_path_semantics declare the app serves it", body)


class DenyRuleTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(
            cls.port, free_port(), [cls.app.port],
            http_filters=[policy_filter([
                DENY_CRASH,
                {"name": "trial_new", "action": "DENY", "shadow": True,
                 "match": {"path": {"prefix": "/new"}}}]), ROUTER]))

    def setUp(self):
        self.app.reset()

    def statuses(self, raw, heads=()):
        return raw_statuses(self.port, raw, heads=heads)

    def test_no_spelling_of_crash_reaches_the_app(self):
        before = self.px.stat("http.ingress.access_policy.deny_crash.denied")
        paths = ["/crash", "/CRASH", "//crash", "/%63rash", "/a/../crash", "/./crash",
                 "/crash/", "/crash;x=1", "/%2e%2e/crash"]
        for path in paths:
            for method in ("GET", "HEAD"):
                with self.subTest(path=path, method=method):
                    self.assertEqual(self.statuses(
                        f"{method} {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
                        .encode(), heads=(0,) if method == "HEAD" else ()), [403])
        self.assertEqual(self.statuses(b"GET /crash HTTP/1.0\r\n\r\n"), [403])
        self.assertEqual(self.statuses(
            b"GET /ok HTTP/1.1\r\nHost: app\r\n\r\n"
            b"GET http://app/CRASH HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"),
            [200, 403])
        self.assertEqual([r["path"] for r in self.app.requests_snapshot()], ["/ok"])
        after = self.px.stat("http.ingress.access_policy.deny_crash.denied")
        self.assertEqual(after - before, len(paths) * 2 + 2)
        entry = self.px.wait_access_log(lambda e: e["path"] == "/%63rash")
        self.assertIsNotNone(entry)
        self.assertEqual(entry["status"], 403)
        self.assertIn("DENY", entry["flag_list"], entry)
        self.assertEqual(entry["policy_rule"], "deny_crash", "the log names the deciding rule")
        ok = self.px.wait_access_log(lambda e: e["path"] == "/ok")
        self.assertEqual(ok["policy_rule"], "-", ok)

    def test_policy_explain_endpoint(self):
        status, body = self.px.admin_get("/policy/explain?method=HEAD&path=%2F%2563RASH")
        self.assertEqual(status, 200, body)
        text = body.decode() if isinstance(body, bytes) else body
        self.assertIn("path: normalized to /cRASH", text)
        self.assertIn("access_policy: DENY by rule 'deny_crash'", text)
        self.assertIn("outcome: denied by deny_crash", text)
        status, body = self.px.admin_get("/policy/explain?path=/new/x")
        text = body.decode() if isinstance(body, bytes) else body
        self.assertIn("shadow rule 'trial_new' matches", text)
        self.assertIn("outcome: route", text)
        status, _ = self.px.admin_get("/policy/explain?bogus=1")
        self.assertEqual(status, 400)

    def test_other_paths_pass(self):
        self.assertEqual(http_get(self.port, "/").status, 200)
        self.assertEqual(http_get(self.port, "/crashes").status, 200)
        self.assertEqual(self.app.request_count(), 2)

    def test_shadow_rule_counts_without_blocking(self):
        before = self.px.stat("http.ingress.access_policy.trial_new.shadow_denied")
        for _ in range(3):
            self.assertEqual(http_get(self.port, "/new/feature").status, 200)
        self.assertEqual(self.app.request_count(), 3)
        self.assertEqual(
            self.px.stat("http.ingress.access_policy.trial_new.shadow_denied") - before, 3)
        # Operators see shadow matches at the default (info) level, with the rule's name.
        self.assertTrue(wait_until(
            lambda: "shadow rule 'trial_new' would deny GET /new/feature" in
            self.px.stderr_text()), "the shadow match is not in the log at info")


class ClientAddressTest(PhoenixTestCase):
    """Only 10.0.0.0/8 may pass. x-forwarded-for is trusted for exactly one hop."""

    def start(self, trusted_hops):
        self.app = self.start_upstream("app")
        self.port = free_port()
        options = {"xff_num_trusted_hops": trusted_hops} if trusted_hops else {}
        self.start_phoenix(simple_config(
            self.port, free_port(), [self.app.port], **options,
            http_filters=[policy_filter(
                [{"name": "internal", "action": "ALLOW",
                  "match": {"source_cidrs": ["10.0.0.0/8"]}}], default_action="DENY"),
                ROUTER]))

    def test_one_trusted_hop_uses_the_rightmost_entry(self):
        self.start(trusted_hops=1)
        self.assertEqual(http_get(self.port, "/", headers={
            "X-Forwarded-For": "203.0.113.7, 10.0.0.5"}).status, 200)
        # A client that writes an internal address first is still the rightmost entry.
        self.assertEqual(http_get(self.port, "/", headers={
            "X-Forwarded-For": "10.0.0.1, 203.0.113.7"}).status, 403)
        self.assertEqual(http_get(self.port, "/").status, 403)  # peer 127.0.0.1

    def test_without_trusted_hops_the_header_is_ignored(self):
        self.start(trusted_hops=0)
        self.assertEqual(http_get(self.port, "/", headers={
            "X-Forwarded-For": "10.0.0.5"}).status, 403)
        self.assertEqual(self.app.request_count(), 0)


if __name__ == "__main__":
    unittest.main()
