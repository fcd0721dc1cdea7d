"""Circuit breakers through the real binary: overflow is answered at once with 503, flag UO and
x-phoenix-overloaded, without touching the upstream; requests over max_connections wait as
pending up to max_pending_requests; gauges show the room left."""

import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import simple_config
from harness.process import free_port, wait_until


class CircuitBreakerTest(PhoenixTestCase):

    def start(self, breakers, concurrency=2):
        self.app = self.start_upstream("app")
        self.port = free_port()
        self.px = self.start_phoenix(simple_config(
            self.port, free_port(), [self.app.port],
            cluster_options={"circuit_breakers": breakers}), concurrency=concurrency)

    def background(self, path, results, key):
        t = threading.Thread(target=lambda: results.__setitem__(
            key, http_get(self.port, path, timeout=10)))
        t.start()
        return t

    def test_max_requests_overflow_is_immediate(self):
        self.start({"max_requests": 2})
        results = {}
        slow = [self.background("/slow?ms=1000", results, i) for i in range(2)]
        self.assertTrue(wait_until(lambda: self.app.request_count() == 2))
        self.assertEqual(self.px.stat("cluster.app.circuit_breakers.remaining_rq"), 0)
        start = time.monotonic()
        r = http_get(self.port, "/fast")
        elapsed = time.monotonic() - start
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("x-phoenix-overloaded"), "true")
        self.assertLess(elapsed, 0.2, "overflow must not wait")
        self.assertEqual(self.app.request_count(), 2, "the overflow reached the upstream")
        entry = self.px.wait_access_log(lambda e: e["path"] == "/fast")
        self.assertIn("UO", entry["flag_list"], entry)
        for t in slow:
            t.join()
        self.assertEqual([results[0].status, results[1].status], [200, 200])
        self.assertEqual(self.px.stat("cluster.app.circuit_breakers.remaining_rq"), 2)
        self.assertEqual(http_get(self.port, "/fast").status, 200)
        self.assertEqual(self.px.stat("cluster.app.upstream_rq_overflow"), 1)

    def test_pending_requests_wait_for_a_connection(self):
        # One worker, so the waiting request and the busy connection share one pool.
        self.start({"max_connections": 1, "max_pending_requests": 1}, concurrency=1)
        results = {}
        first = self.background("/slow?ms=600", results, "first")
        self.assertTrue(wait_until(lambda: self.app.request_count() == 1))
        second = self.background("/echo", results, "second")
        self.assertTrue(wait_until(
            lambda: self.px.stat("cluster.app.circuit_breakers.remaining_pending") == 0),
            "the second request never became pending")
        r = http_get(self.port, "/third")
        self.assertEqual(r.status, 503, "past max_pending_requests: overflow")
        first.join()
        second.join()
        self.assertEqual(results["first"].status, 200)
        self.assertEqual(results["second"].status, 200)
        self.assertEqual(self.app.accepted, 1, "the pending request reused the one connection")


if __name__ == "__main__":
    unittest.main()
