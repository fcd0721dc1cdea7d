"""Path normalization through the real binary: no spelling of /crash reaches an upstream that
records every request, and the upstream sees the normalized path."""

import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn, raw_statuses
from harness.config import direct_response, route, simple_config
from harness.process import free_port

# The Phoenix-app rule: deny /crash, anything under it and ;params, whatever the case.
DENY_CRASH = route({"safe_regex": {"regex": "/crash([/;].*)?"}, "case_sensitive": False},
                   name="deny_crash", direct_response=direct_response(403, "forbidden\n"))


class PathNormalizationTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(
            cls.port, free_port(), [cls.app.port],
            routes=[DENY_CRASH, route({"prefix": "/"}, cluster="app")]))

    def setUp(self):
        self.app.reset()

    def status_of(self, raw, heads=()):
        return raw_statuses(self.port, raw, heads=heads)

    def test_no_variant_of_crash_reaches_the_app(self):
        denied = ["/crash", "/CRASH", "/Crash", "//crash", "///crash", "/%63rash", "/%63RASH",
                  "/%43rash", "/cr%61sh", "/a/../crash", "/a/b/../../crash", "/./crash",
                  "/../crash", "/%2e%2e/crash", "/%2E/crash", "/crash/", "/crash/x",
                  "/crash;jsessionid=1", "/crash?x=1", "/crash#top", "/CRASH/../crash"]
        for path in denied:
            for method in ("GET", "HEAD"):
                with self.subTest(path=path, method=method):
                    statuses = self.status_of(
                        f"{method} {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
                        .encode(), heads=(0,) if method == "HEAD" else ())
                    self.assertEqual(statuses, [403])
        # Rejected outright (400): spellings some servers decode into a separator.
        for path in ["/a%2fcrash", "/%2Fcrash", "/a%5ccrash", "/a\\crash", "/x/..;/crash",
                     "/%zzcrash"]:
            with self.subTest(path=path):
                self.assertEqual(self.status_of(
                    f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode()),
                    [400])
        self.assertEqual(self.app.request_count(), 0,
                         [r["path"] for r in self.app.requests_snapshot()])

    def test_absolute_form_http10_and_pipelining_are_denied(self):
        self.assertEqual(self.status_of(
            b"GET http://app/%63rash HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"), [403])
        self.assertEqual(self.status_of(b"GET /CRASH HTTP/1.0\r\n\r\n"), [403])
        statuses = self.status_of(
            b"GET /ok HTTP/1.1\r\nHost: app\r\n\r\n"
            b"GET //%63rash HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        self.assertEqual(statuses, [200, 403])
        self.assertEqual([r["path"] for r in self.app.requests_snapshot()], ["/ok"])

    def test_upstream_receives_the_normalized_path(self):
        conn = ClientConn(self.port)
        conn.request("GET", "//a/./b/../%7Euser/%63?q=/../x")
        self.assertEqual(conn.read_response().status, 200)
        self.assertEqual(self.app.requests_snapshot()[0]["target"], "/a/~user/c?q=/../x")


if __name__ == "__main__":
    unittest.main()
