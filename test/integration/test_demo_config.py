"""config/phoenix-app.yaml in front of the real demo app (tools/demo_app): the demo's promises
hold — the page is served, /crash is denied in every spelling and the app survives, and
/generatecert works, over HTTP and over HTTPS."""

import os
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, raw_request
from harness.http1 import parse_responses
from harness.process import REPO_ROOT, free_port
from harness.tls import certs, https_get
from harness.upstream import start_demo_app


class DemoConfigTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app_port, cls.port, cls.admin_port = free_port(), free_port(), free_port()
        cls.tls_port = free_port()
        cls.app = start_demo_app(cls.app_port, "t")
        cls.addClassCleanup(cls.app.kill)
        with open(os.path.join(REPO_ROOT, "config", "phoenix-app.yaml")) as f:
            text = f.read()
        for old, new in (("port_value: 8080", cls.port), ("port_value: 8081", cls.app_port),
                         ("port_value: 9901", cls.admin_port),
                         ("port_value: 8443", cls.tls_port)):
            assert old in text, f"config/phoenix-app.yaml no longer has '{old}'"
            text = text.replace(old, f"port_value: {new}")
        # The HTTPS listener's certificates: tools/demo.sh makes them in .demo/certs (relative
        # to phoenix's working directory); here, the demo PKI of harness.tls.
        assert ".demo/certs/" in text, "config/phoenix-app.yaml no longer has '.demo/certs/'"
        text = text.replace(".demo/certs/", certs() + "/")
        cls.px = cls.start_class_phoenix(text, admin_port=cls.admin_port)

    def test_page_crash_and_generatecert(self):
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"Phoenix app", r.body)
        for path in ["/crash", "/CRASH", "//crash", "/%63rash", "/a/../crash", "/crash/"]:
            with self.subTest(path=path):
                res = raw_request(self.port, f"GET {path} HTTP/1.1\r\nHost: app\r\n"
                                  "Connection: close\r\n\r\n".encode(), timeout=5)
                self.assertEqual([x.status for x in parse_responses(res)], [403])
        self.assertIsNone(self.app.poll(), "the demo app died: a /crash got through")
        r = http_get(self.port, "/generatecert?ms=20")
        self.assertEqual(r.status, 200)
        self.assertIn(b"certificate generated", r.body)

    def test_a_request_while_the_app_restarts_is_served(self):
        # As in tools/demo.sh: the app is crashed directly, and its supervisor restarts it.
        raw_request(self.app_port, b"GET /crash HTTP/1.1\r\nHost: app\r\n\r\n", timeout=5)
        self.app.wait(timeout=5)
        result = {}

        def request():
            result["response"] = http_get(self.port, "/", timeout=15)

        t = threading.Thread(target=request)
        t.start()
        # The supervisor, on this thread (the app dies with the thread that started it): the
        # demo's restart back-off, then the new app.
        time.sleep(0.3)
        type(self).app = start_demo_app(self.app_port, "t2")
        self.addClassCleanup(type(self).app.kill)
        t.join(timeout=20)
        r = result.get("response")
        self.assertIsNotNone(r, "no answer")
        self.assertEqual(r.status, 200, "Phoenix did not keep serving while the app restarted")
        self.assertIn(b"Phoenix app", r.body)

    def test_https_serves_the_same_policies(self):
        status, body = https_get(self.tls_port, "/")
        self.assertEqual(status, 200)
        self.assertIn(b"Phoenix app", body)
        for path in ["/crash", "/CRASH", "/%63rash"]:
            with self.subTest(path=path):
                self.assertEqual(https_get(self.tls_port, path)[0], 403)
        self.assertIsNone(self.app.poll(), "the demo app died: a /crash got through")


if __name__ == "__main__":
    unittest.main()
