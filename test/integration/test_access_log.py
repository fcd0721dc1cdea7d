"""Access logs through the real binary: Envoy %OPERATOR% text formats and JSON lines, files
that rotate by size and keep their path, SIGUSR1 reopening after an external logrotate, a
reload that keeps writing to the same file, and format errors at file:line:column."""

import glob
import gzip
import json
import os
import shutil
import signal
import tempfile
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, http_request
from harness.config import simple_config
from harness.process import free_port, wait_until


class AccessLogFileTest(PhoenixTestCase):

    def start(self, access_log, concurrency=2):
        self.app = self.start_upstream("app")
        self.port = free_port()
        config = simple_config(self.port, free_port(), [self.app.port])
        self.hcm = config["static_resources"]["listeners"][0]["http_connection_manager"]
        self.hcm["access_log"] = access_log
        self.config = config
        self.px = self.start_phoenix(config, concurrency=concurrency)
        return self.px

    def lines(self, path):
        try:
            with open(path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_lines(self, path, count):
        lines = wait_until(lambda: len(self.lines(path)) >= count and self.lines(path), 5.0)
        self.assertTrue(lines, f"{path} never had {count} lines: {self.lines(path)}")
        return self.lines(path)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="phoenix-accesslog-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_text_format_with_request_and_response_headers(self):
        path = os.path.join(self.tmp, "access.log")
        self.start([{"path": path, "format":
                     '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESP(CONTENT-TYPE)% '
                     '%REQ(USER-AGENT)% %REQ(X-MISSING?USER-AGENT):3% %PROTOCOL% 100%%\n'}])
        response = http_request(self.port, "GET", "/hello?x=1", headers={"User-Agent": "itest"})
        self.assertEqual(response.status, 200)
        lines = self.wait_lines(path, 1)
        self.assertEqual(lines[0], "GET /hello?x=1 200 text/plain itest ite HTTP/1.1 100%")

    def test_json_lines(self):
        path = os.path.join(self.tmp, "access.json")
        self.start([{"path": path, "json_format": {
            "status": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%", "flags": "%RESPONSE_FLAGS%",
            "ua": "%REQ(USER-AGENT)%", "upstream": "%UPSTREAM_HOST%",
            "bytes": "%BYTES_SENT%"}}])
        http_request(self.port, "GET", "/json", headers={"User-Agent": 'quote " back \\'})
        http_get(self.port, "/json2")
        lines = self.wait_lines(path, 2)
        first = json.loads(lines[0])
        self.assertEqual(first["status"], 200)
        self.assertEqual(first["path"], "/json")
        self.assertIsNone(first["flags"])
        self.assertEqual(first["ua"], 'quote " back \\')
        self.assertEqual(first["upstream"], f"127.0.0.1:{self.app.port}")
        self.assertIsInstance(first["bytes"], int)
        self.assertEqual(list(first), sorted(first))

    def test_rotates_by_size_and_keeps_the_path(self):
        path = os.path.join(self.tmp, "big.log")
        # 8 KiB per line: 1 MiB in ~130 requests.
        self.start([{"path": path, "format": "%REQ(X-PAD)%\n",
                     "rotation": {"max_size_mb": 1, "compress": True}}], concurrency=1)
        pad = "p" * 8000
        for _ in range(200):
            response = http_request(self.port, "GET", "/", headers={"X-Pad": pad})
            self.assertEqual(response.status, 200)
        # A rotated file is gzipped in the background: done once the plain one is gone.
        def compressed():
            names = glob.glob(path + ".*")
            return names and all(name.endswith(".gz") for name in names) and names
        rotated = wait_until(compressed, 10.0)
        self.assertTrue(rotated, os.listdir(self.tmp))
        self.assertLessEqual(os.path.getsize(path), 1024 * 1024)
        # Every line landed whole in one file or the other.
        total = 0
        for name in rotated:
            with gzip.open(name, "rt") as f:
                content = f.read().splitlines()
            self.assertTrue(all(line == pad for line in content))
            total += len(content)
        wait_until(lambda: total + len(self.lines(path)) >= 200, 5.0)
        self.assertEqual(total + len(self.lines(path)), 200)

    def test_sigusr1_reopens_after_an_external_rename(self):
        path = os.path.join(self.tmp, "access.log")
        self.start([{"path": path, "format": "%REQ(:PATH)%\n"}])
        http_get(self.port, "/before")
        self.wait_lines(path, 1)
        os.rename(path, path + ".old")
        self.px.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(wait_until(lambda: "log files reopened" in self.px.stderr_text()),
                        self.px.logs())
        http_get(self.port, "/after")
        self.assertEqual(self.wait_lines(path, 1), ["/after"])
        self.assertEqual(self.lines(path + ".old"), ["/before"])

    def test_reload_keeps_one_writer_per_file(self):
        path = os.path.join(self.tmp, "access.log")
        self.start([{"path": path, "format": "%REQ(:PATH)%\n"}])
        http_get(self.port, "/one")
        self.wait_lines(path, 1)
        self.hcm["access_log"] = [{"path": path, "format": "v2 %REQ(:PATH)%\n"}]
        self.px.reload_with(self.config)
        # Workers take the new config a moment after the main thread: ask until one has.
        sent = ["/one"]

        def reloaded():
            sent.append(f"/two-{len(sent)}")
            self.assertEqual(http_get(self.port, sent[-1]).status, 200)
            return any(line.startswith("v2 ") for line in self.lines(path))

        self.assertTrue(wait_until(reloaded, 5.0))
        lines = self.wait_lines(path, len(sent))
        # Every request logged exactly once, through the one file both configs share.
        self.assertEqual(sorted(line.removeprefix("v2 ") for line in lines), sorted(sent))


class AccessLogConfigErrorTest(PhoenixTestCase):

    HEAD = ("static_resources:\n"
            "  listeners:\n"
            "  - name: l\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 18080}}\n"
            "    http_connection_manager:\n"
            "      route_config: {virtual_hosts: [{name: v, domains: ['*'], routes: "
            "[{match: {prefix: /}, direct_response: {status: 200}}]}]}\n"
            "      access_log:\n")

    def test_unknown_operator_is_named_at_its_field(self):
        rc, path, out = self.validate_config(
            self.HEAD + "      - {path: /dev/stdout, format: '%START_TIME% %NOPE%'}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:8:29: static_resources.listeners[0].http_connection_manager"
                      ".access_log[0].format: unknown access log operator %NOPE%", out)

    def test_json_format_error_names_the_key(self):
        rc, path, out = self.validate_config(
            self.HEAD + "      - path: /dev/stdout\n"
                        "        json_format: {when: '%START_TIME%', bad: '50% off'}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("access_log[0].json_format: key 'bad': unterminated", out)

    def test_both_formats_is_an_error(self):
        rc, _, out = self.validate_config(
            self.HEAD + "      - {path: /dev/stdout, format: x, json_format: {a: b}}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("set either format or json_format, not both", out)


if __name__ == "__main__":
    unittest.main()
