"""config/phoenix-app.yaml in front of the real demo app (tools/demo_app), which phoenix's
supervisor runs: the demo's promises hold — the page is served, /crash is denied in every
spelling and the app survives, a crashed app is restarted while requests wait, and
/generatecert works, over HTTP and over HTTPS."""

import json
import os
import shutil
import tempfile
import threading
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, raw_request
from harness.http1 import parse_responses
from harness.process import REPO_ROOT, demo_app_bin, free_port, free_port_range, wait_until
from harness.tls import certs, https_get


class DemoConfigTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.port, cls.admin_port = free_port(), free_port()
        cls.tls_port = free_port()
        # The app's instances take ports from a range of four.
        app_ports = free_port_range(4)
        cls.tmp = tempfile.mkdtemp(prefix="phoenix-demo-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        with open(os.path.join(REPO_ROOT, "config", "phoenix-app.yaml")) as f:
            text = f.read()
        for old, new in (("port_value: 8080", f"port_value: {cls.port}"),
                         ("port_value: 9901", f"port_value: {cls.admin_port}"),
                         ("port_value: 8443", f"port_value: {cls.tls_port}"),
                         ("start: 8081, end: 8084",
                          f"start: {app_ports}, end: {app_ports + 3}"),
                         ("command: build/phoenix-demo-app", f"command: {demo_app_bin()}"),
                         ("log_path: .demo/app.log",
                          f"log_path: {os.path.join(cls.tmp, 'app.log')}")):
            assert old in text, f"config/phoenix-app.yaml no longer has '{old}'"
            text = text.replace(old, new)
        # The HTTPS listener's certificates: tools/demo.sh makes them in .demo/certs (relative
        # to phoenix's working directory); here, the demo PKI of harness.tls.
        assert ".demo/certs/" in text, "config/phoenix-app.yaml no longer has '.demo/certs/'"
        text = text.replace(".demo/certs/", certs() + "/")
        cls.px = cls.start_class_phoenix(text, admin_port=cls.admin_port)
        wait_until(lambda: sum(i["state"] == "READY" for i in cls.instances()) == 2, 15)
        cls.instance = cls.wait_ready_instance()

    @classmethod
    def instances(cls):
        status, body = cls.px.admin_get("/apps")
        assert status == 200, body
        return json.loads(body)["apps"][0]["instances"]

    @classmethod
    def wait_ready_instance(cls, not_pid=None):
        """The app's one ready instance (another than `not_pid`), once there is one."""
        found = wait_until(lambda: [i for i in cls.instances()
                                    if i["state"] == "READY" and i["pid"] != not_pid], 15)
        assert found, f"no ready instance: {cls.instances()}\n{cls.px.logs()}"
        return found[0]

    def assertAppSurvived(self):
        self.assertEqual(self.px.stat("supervisor.phoenix_app.crashes"), self.crashes_expected,
                         "the demo app crashed: a /crash got through")

    crashes_expected = 0

    def test_page_crash_and_generatecert(self):
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"Phoenix app", r.body)
        for path in ["/crash", "/CRASH", "//crash", "/%63rash", "/a/../crash", "/crash/"]:
            with self.subTest(path=path):
                res = raw_request(self.port, f"GET {path} HTTP/1.1\r\nHost: app\r\n"
                                  "Connection: close\r\n\r\n".encode(), timeout=5)
                self.assertEqual([x.status for x in parse_responses(res)], [403])
        self.assertAppSurvived()
        r = http_get(self.port, "/generatecert?ms=20")
        self.assertEqual(r.status, 200)
        self.assertIn(b"certificate generated", r.body)

    def test_a_request_while_the_app_restarts_is_served(self):
        # As in tools/demo.sh: the app is crashed directly, and phoenix's supervisor restarts it.
        crashed = type(self).instance
        raw_request(crashed["port"], b"GET /crash HTTP/1.1\r\nHost: app\r\n\r\n", timeout=5)
        type(self).crashes_expected += 1
        self.px.wait_for_stat("supervisor.phoenix_app.crashes",
                              lambda v: v == self.crashes_expected, timeout=5)
        result = {}

        def request():
            result["response"] = http_get(self.port, "/", timeout=15)

        # Sent while the instance waits out its back-off (0.25 s): the other instance serves it
        # (min_instances: 2), or, if it went to the crashed one, a retry does.
        t = threading.Thread(target=request)
        t.start()
        t.join(timeout=20)
        # And the crashed one comes back, on its port.
        wait_until(lambda: [i for i in self.instances() if i["state"] == "READY"
                            and i["port"] == crashed["port"] and i["pid"] != crashed["pid"]], 10)
        self.assertEqual(sum(i["state"] == "READY" for i in self.instances()), 2,
                         self.instances())
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
        self.assertAppSurvived()


if __name__ == "__main__":
    unittest.main()
