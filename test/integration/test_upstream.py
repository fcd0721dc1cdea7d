"""Upstream failures and load balancing."""

import collections
import unittest
import uuid

from harness.base import PhoenixTestCase
from harness.client import ClientConn, http_get
from harness.config import route, simple_config
from harness.process import free_port


class UpstreamFailureTest(PhoenixTestCase):

    def test_connect_refused_503_uf(self):
        dead_port = free_port()  # nothing listens there
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [dead_port]))
        path = f"/refused-{uuid.uuid4().hex}"
        r = http_get(port, path)
        self.assertEqual(r.status, 503, r)
        entry = px.wait_access_log(lambda e: e["path"] == path)
        self.assertIsNotNone(entry, f"no access log line for {path}")
        self.assertEqual(entry["status"], 503)
        self.assertIn("UF", entry["flag_list"], entry)
        value = px.wait_for_stat("cluster.app.upstream_cx_connect_fail", lambda v: v > 0)
        self.assertIsNotNone(value, "stat cluster.app.upstream_cx_connect_fail missing")
        self.assertGreater(value, 0)
        self.assertAlive(px)

    def test_upstream_closes_mid_request_5xx_uc(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        r = http_get(port, "/close")
        self.assertIn(r.status, (502, 503), r)
        self.assertEqual(app.request_count(), 1, "the request should have reached the upstream")
        entry = px.wait_access_log(lambda e: e["path"] == "/close")
        self.assertIsNotNone(entry, "no access log line for /close")
        self.assertIn(entry["status"], (502, 503))
        self.assertIn("UC", entry["flag_list"], entry)
        # the proxy keeps working afterwards
        r = http_get(port, "/echo")
        self.assertEqual(r.status, 200)
        self.assertAlive(px)

    def test_route_timeout_504_ut(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port], routes=[
            route({"prefix": "/"}, route={"cluster": "app", "timeout": "0.3s"})]))
        r = http_get(port, "/slow?ms=3000", timeout=10)
        self.assertEqual(r.status, 504, r)
        entry = px.wait_access_log(lambda e: e["path"] == "/slow?ms=3000")
        self.assertIsNotNone(entry, "no access log line for the timed-out request")
        self.assertIn("UT", entry["flag_list"], entry)
        self.assertLess(int(entry["duration"]), 2000, entry)
        # A fast request on the same route still works.
        self.assertEqual(http_get(port, "/echo").status, 200)
        self.assertAlive(px)

    def test_upstream_garbage_response_502(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        r = http_get(port, "/garbage")
        self.assertEqual(r.status, 502, r)
        self.assertNotIn(b"THIS IS NOT HTTP", r.body, "garbage passed through to the client")
        entry = px.wait_access_log(lambda e: e["path"] == "/garbage")
        self.assertIsNotNone(entry)
        self.assertNotEqual(entry["flags"], "-", "an upstream protocol error should be flagged")
        self.assertEqual(http_get(port, "/echo").status, 200)

    def test_malformed_upstream_status_lines_are_502_upe(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        for path in ("/one-digit-status", "/two-spaces-status"):
            r = http_get(port, path)
            self.assertEqual(r.status, 502, (path, r))
            self.assertNotIn(b"bad", r.body, f"{path}: the upstream's body was relayed")
            entry = px.wait_access_log(lambda e, path=path: e["path"] == path)
            self.assertIsNotNone(entry, f"no access log line for {path}")
            self.assertEqual(entry["status"], 502, entry)
            self.assertIn("UPE", entry["flag_list"], entry)
        self.assertEqual(http_get(port, "/echo").status, 200)

    def test_upstream_5xx_passed_through(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        before = px.stat("http.ingress.downstream_rq_5xx")
        r = http_get(port, "/status/500")
        self.assertEqual((r.status, r.body), (500, b"status 500\n"))
        entry = px.wait_access_log(lambda e: e["path"] == "/status/500")
        self.assertIsNotNone(entry)
        self.assertEqual(entry["flags"], "-", "an upstream 500 is not a proxy failure")
        value = px.wait_for_stat("http.ingress.downstream_rq_5xx", lambda v: v > before)
        self.assertEqual(value, before + 1)


class LoadBalancingTest(PhoenixTestCase):

    def setUp(self):
        self.ups = [self.start_upstream(f"u{i}") for i in range(3)]

    def run_requests(self, lb_policy, n, concurrency):
        port = free_port()
        self.start_phoenix(simple_config(port, free_port(), [u.port for u in self.ups],
                                         lb_policy=lb_policy),
                           concurrency=concurrency)
        counts = collections.Counter()
        with ClientConn(port) as c:
            for i in range(n):
                c.request("GET", f"/lb?i={i}")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                counts[r.header("x-upstream-name")] += 1
        for u in self.ups:
            self.assertEqual(u.request_count(), counts[u.name], (u.name, counts))
        return counts

    def test_round_robin_spreads_evenly(self):
        # One keep-alive client connection on one worker: round robin gives 10 each.
        counts = self.run_requests("ROUND_ROBIN", 30, concurrency=1)
        for u in self.ups:
            self.assertTrue(8 <= counts[u.name] <= 12, f"round robin uneven: {dict(counts)}")

    def test_default_policy_is_round_robin(self):
        counts = self.run_requests(None, 30, concurrency=1)
        for u in self.ups:
            self.assertTrue(8 <= counts[u.name] <= 12, f"round robin uneven: {dict(counts)}")

    def test_least_request_reaches_every_upstream(self):
        counts = self.run_requests("LEAST_REQUEST", 60, concurrency=2)
        for u in self.ups:
            self.assertGreater(counts[u.name], 0, f"LEAST_REQUEST never picked {u.name}: {counts}")

    def test_random_reaches_every_upstream(self):
        counts = self.run_requests("RANDOM", 60, concurrency=2)
        for u in self.ups:
            self.assertGreater(counts[u.name], 0, f"RANDOM never picked {u.name}: {counts}")


if __name__ == "__main__":
    unittest.main()
