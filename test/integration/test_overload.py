"""The overload manager through the real binary: past a shed threshold new requests get 503
with flag OL and their connections close; a notice threshold logs a CPU peak and POSTs to the
webhook; a reload that drops the section stops shedding; config errors name the field."""

import http.server
import json
import threading
import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn, http_get
from harness.config import simple_config
from harness.process import free_port, wait_until


class WebhookSink:
    """An HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self):
        self.events = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                sink.events.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def kinds(self, resource):
        return [e["event"] for _, e in self.events if e["resource"] == resource]


class OverloadTest(PhoenixTestCase):

    def start(self, overload):
        self.sink = WebhookSink()
        self.addCleanup(self.sink.close)
        overload = dict(overload, notice_webhook=f"http://127.0.0.1:{self.sink.port}/hook")
        self.app = self.start_upstream("app")
        self.port = free_port()
        self.config = simple_config(self.port, free_port(), [self.app.port])
        self.config["overload_manager"] = overload
        self.px = self.start_phoenix(self.config)

    def test_memory_past_shed_answers_503_ol_and_closes(self):
        # 1 MiB of resident memory is far below what phoenix needs: it sheds at once.
        self.start({"refresh_interval": "0.05s", "max_rss_mb": 1,
                    "memory": {"notice": 0.4, "shed": 0.5}})
        self.px.wait_for_stat("overload.shedding", lambda v: v == 1)
        with ClientConn(self.port) as conn:
            conn.request("GET", "/shed-me")
            response = conn.read_response()
            self.assertEqual(response.status, 503)
            self.assertEqual(response.header("retry-after"), "1")
            self.assertEqual(response.header("connection"), "close")
            self.assertTrue(conn.wait_closed())
        entry = self.px.wait_access_log(lambda e: e["path"] == "/shed-me")
        self.assertEqual(entry["flag_list"], ["OL"])
        self.assertEqual(self.px.stat("http.ingress.downstream_rq_overload"), 1)
        self.assertEqual(len(self.app.requests), 0)
        # One POST at a time, in order.
        self.assertTrue(wait_until(lambda: self.sink.kinds("memory") == ["notice", "shed_start"]),
                        self.sink.events)
        path, event = self.sink.events[0]
        self.assertEqual(path, "/hook")
        self.assertEqual(event["node"], "phoenix-it")
        self.assertIn("memory peak", self.px.stderr_text())
        self.assertIn("overload: shedding load", self.px.stderr_text())
        self.assertEqual(self.px.stat("overload.webhook_sent"), 2)

        # A reload without the section stops shedding.
        del self.config["overload_manager"]
        self.px.reload_with(self.config)
        self.px.wait_for_stat("overload.shedding", lambda v: v == 0)
        self.assertEqual(http_get(self.port, "/after").status, 200)
        self.assertTrue(wait_until(lambda: self.sink.kinds("memory")[-2:] ==
                                   ["shed_end", "notice_end"]), self.sink.events)

    def test_cpu_notice_is_a_peak_that_sheds_nothing(self):
        self.start({"refresh_interval": "0.05s", "cpu": {"notice": 0.000001}})

        def busy():
            for _ in range(20):
                self.assertEqual(http_get(self.port, "/work").status, 200)
            return self.sink.kinds("cpu")

        self.assertTrue(wait_until(busy, 15.0), self.px.logs())
        self.assertEqual(self.sink.kinds("cpu")[0], "notice")
        self.assertIn("CPU peak: phoenix CPU", self.px.stderr_text())
        self.assertGreaterEqual(self.px.stat("overload.cpu.notice"), 1)
        self.assertEqual(self.px.stat("overload.shedding"), 0)

    def test_an_unreachable_webhook_is_counted_and_changes_nothing(self):
        self.app = self.start_upstream("app")
        self.port = free_port()
        config = simple_config(self.port, free_port(), [self.app.port])
        config["overload_manager"] = {"refresh_interval": "0.05s", "max_rss_mb": 1,
                                      "memory": {"notice": 0.5},
                                      "notice_webhook": f"http://127.0.0.1:{free_port()}/"}
        self.px = self.start_phoenix(config)
        self.px.wait_for_stat("overload.webhook_failed", lambda v: v >= 1)
        self.assertEqual(http_get(self.port, "/").status, 200)


class OverloadConfigErrorTest(PhoenixTestCase):

    def test_memory_thresholds_need_a_limit(self):
        rc, path, out = self.validate_config(
            "overload_manager:\n"
            "  memory: {shed: 0.9}\n"
            "  notice_webhook: https://hooks.example/x\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("overload_manager.max_rss_mb: memory thresholds need max_rss_mb", out)
        self.assertIn(f"{path}:3:3: overload_manager.notice_webhook: "
                      "'https://hooks.example/x' is not an http:// URL", out)


if __name__ == "__main__":
    unittest.main()
