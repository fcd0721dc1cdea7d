"""The local_ratelimit filter through the real binary: process-wide token buckets (exact across
workers), 429 with retry-after and x-ratelimit-* headers, keyed buckets bounded in number, and
an in-flight cap answered with 503 at once."""

import math
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, http_request
from harness.config import direct_response, route, simple_config
from harness.process import free_port, wait_until

ROUTER = {"name": "phoenix.filters.http.router"}


def ratelimit_filter(limits):
    return {"name": "phoenix.filters.http.local_ratelimit",
            "typed_config": {"@type": "type.googleapis.com/phoenix.config.v1.LocalRateLimit",
                             "limits": limits}}


class RateLimitTest(PhoenixTestCase):

    def start(self, limits, concurrency=2):
        self.app = self.start_upstream("app")
        self.port = free_port()
        self.admin_port = free_port()
        self.px = self.start_phoenix(simple_config(
            self.port, self.admin_port, [self.app.port],
            http_filters=[ratelimit_filter(limits), ROUTER]), concurrency=concurrency)

    def hammer(self, path, seconds, threads=6, headers_for=None):
        """Fresh connections (so both workers take part) from several threads."""
        statuses, lock = [], threading.Lock()
        stop = time.monotonic() + seconds

        def run(n):
            i = 0
            while time.monotonic() < stop:
                headers = headers_for(n, i) if headers_for else None
                status = http_get(self.port, path, headers=headers, timeout=5).status
                with lock:
                    statuses.append(status)
                i += 1

        start = time.monotonic()
        workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return statuses, time.monotonic() - start

    def test_a_reload_keeps_an_unchanged_limits_bucket(self):
        limits = [{"name": "gen", "match": {"path": {"prefix": "/gen"}},
                   "token_bucket": {"max_tokens": 2, "tokens_per_fill": 2,
                                    "fill_interval": "60s"}}]
        self.start(limits)
        self.assertEqual([http_get(self.port, "/gen").status for _ in range(3)], [200, 200, 429])
        version = self.px.config_version()
        # Another route: the listener's filters are built again, the limit is the same.
        self.px.reload_with(simple_config(
            self.port, self.admin_port, [self.app.port],
            routes=[route({"path": "/dr"}, direct_response=direct_response(200, "v2\n")),
                    route({"prefix": "/"}, cluster="app")],
            http_filters=[ratelimit_filter(limits), ROUTER]))
        self.assertTrue(wait_until(lambda: http_get(self.port, "/dr").body == b"v2\n"),
                        "the reload was not applied")
        self.assertGreater(self.px.config_version(), version)
        self.assertEqual(http_get(self.port, "/gen").status, 429, "the reload refilled the bucket")
        # A changed limit starts afresh.
        limits[0]["token_bucket"]["max_tokens"] = 3
        self.px.reload_with(simple_config(
            self.port, self.admin_port, [self.app.port],
            http_filters=[ratelimit_filter(limits), ROUTER]))
        self.assertTrue(wait_until(lambda: http_get(self.port, "/dr").status == 200 and
                                   http_get(self.port, "/dr").body != b"v2\n"))
        self.assertEqual(http_get(self.port, "/gen").status, 200)

    def test_limit_is_exact_across_workers(self):
        # 10 tokens to start, 10 more every 100 ms: 100 requests/s after the first burst.
        self.start([{"name": "gen", "match": {"path": {"prefix": "/generatecert"}},
                     "token_bucket": {"max_tokens": 10, "tokens_per_fill": 10,
                                      "fill_interval": "0.1s"}}])
        statuses, elapsed = self.hammer("/generatecert", 3.0)
        allowed, limited = statuses.count(200), statuses.count(429)
        self.assertEqual(allowed + limited, len(statuses), set(statuses))
        self.assertGreater(limited, allowed, "the load did not exceed the limit")
        fills = elapsed / 0.1
        low, high = 10 + 10 * (math.floor(fills) - 1), 10 + 10 * math.ceil(fills)
        self.assertTrue(low <= allowed <= high, f"{allowed} allowed in {elapsed:.2f}s, "
                        f"expected {low}..{high}")
        self.assertEqual(self.app.request_count(), allowed)
        self.assertEqual(self.px.stat("http.ingress.local_ratelimit.gen.limited"), limited)
        self.assertEqual(http_get(self.port, "/other").status, 200, "unmatched paths are free")

    def test_429_carries_rate_limit_headers(self):
        self.start([{"name": "one", "token_bucket": {"max_tokens": 1, "fill_interval": "60s"}}])
        self.assertEqual(http_get(self.port, "/").status, 200)
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 429)
        self.assertEqual(r.header("x-ratelimit-limit"), "1")
        self.assertEqual(r.header("x-ratelimit-remaining"), "0")
        self.assertTrue(1 <= int(r.header("retry-after")) <= 60, r.headers)
        self.assertEqual(r.header("retry-after"), r.header("x-ratelimit-reset"))
        entry = self.px.wait_access_log(lambda e: e["status"] == 429)
        self.assertIsNotNone(entry)
        self.assertIn("RL", entry["flag_list"], entry)

    def test_keyed_buckets_are_separate_and_bounded(self):
        self.start([{"name": "per_user", "key": {"header": "x-user"}, "max_keys": 50,
                     "token_bucket": {"max_tokens": 2, "fill_interval": "60s"}}])
        alice = {"x-user": "alice"}
        self.assertEqual([http_get(self.port, "/", headers=alice).status for _ in range(3)],
                         [200, 200, 429])
        self.assertEqual(http_get(self.port, "/", headers={"x-user": "bob"}).status, 200)
        statuses, _ = self.hammer("/", 1.5, headers_for=lambda n, i: {"x-user": f"u{n}-{i}"})
        self.assertEqual(set(statuses), {200}, "every new key starts with a full bucket")
        self.assertGreater(len(statuses), 100)
        self.assertLessEqual(self.px.stat("http.ingress.local_ratelimit.per_user.keys"), 50)

    def test_in_flight_cap_answers_503_at_once(self):
        self.start([{"name": "slow_cap", "match": {"path": {"prefix": "/slow"}},
                     "max_concurrent_requests": 2}])
        results = []
        slow = [threading.Thread(target=lambda: results.append(
            http_get(self.port, "/slow?ms=1500").status)) for _ in range(2)]
        for t in slow:
            t.start()
        self.assertTrue(wait_until(lambda: self.app.request_count() == 2),
                        "the two slow requests never reached the upstream")
        start = time.monotonic()
        r = http_get(self.port, "/slow?ms=10&overflow")
        self.assertEqual(r.status, 503)
        self.assertLess(time.monotonic() - start, 0.5, "the overflow was not answered at once")
        self.assertEqual(r.header("retry-after"), "1")
        entry = self.px.wait_access_log(lambda e: e["path"] == "/slow?ms=10&overflow")
        self.assertIsNotNone(entry, "the overflow is not in the access log")
        self.assertEqual((entry["status"], entry["flag_list"]), (503, ["UO"]), entry)
        self.assertEqual(http_get(self.port, "/fast").status, 200, "other paths are not capped")
        for t in slow:
            t.join()
        self.assertEqual(results, [200, 200])
        self.assertEqual(http_get(self.port, "/slow?ms=10").status, 200, "slots were released")


    def test_queued_requests_wait_for_a_slot(self):
        self.start([{"name": "one_at_a_time", "max_concurrent_requests": 1,
                     "max_queued_requests": 2, "queue_timeout": "5s"}])
        results = {}

        def call(name, method="GET", path="/slow?ms=800", body=None):
            results[name] = http_request(self.port, method, path, body=body, timeout=10)

        first = threading.Thread(target=call, args=("first",))
        first.start()
        self.assertTrue(wait_until(lambda: self.app.request_count() == 1))
        body = b"x" * 100000  # Arrives while the request waits; must reach the app intact.
        queued = [threading.Thread(target=call, args=("second", "POST", "/echo", body)),
                  threading.Thread(target=call, args=("third", "GET", "/slow?ms=10"))]
        for t in queued:
            t.start()
        self.assertTrue(wait_until(
            lambda: self.px.stat("http.ingress.downstream_rq_active") >= 3),
            "the two queued requests never arrived")
        start = time.monotonic()
        overflow = http_get(self.port, "/x")
        self.assertEqual(overflow.status, 503, "a full queue refuses at once")
        self.assertLess(time.monotonic() - start, 0.5)
        for t in [first] + queued:
            t.join()
        self.assertEqual(results["first"].status, 200)
        self.assertEqual(results["third"].status, 200)
        self.assertEqual(results["second"].status, 200)
        self.assertEqual(results["second"].json()["body_len"], len(body))
        # All three reached the app, one after another; the overflow did not.
        self.assertEqual(self.app.request_count(), 3)

    def test_queue_timeout_answers_503(self):
        self.start([{"name": "cap", "max_concurrent_requests": 1, "max_queued_requests": 5,
                     "queue_timeout": "0.3s"}])
        slow = threading.Thread(target=lambda: http_get(self.port, "/slow?ms=1500"))
        slow.start()
        self.assertTrue(wait_until(lambda: self.app.request_count() == 1))
        start = time.monotonic()
        r = http_get(self.port, "/fast?queued")
        waited = time.monotonic() - start
        self.assertEqual(r.status, 503)
        self.assertTrue(0.25 <= waited < 1.4, f"waited {waited:.2f}s")
        self.assertEqual(r.header("retry-after"), "1")
        entry = self.px.wait_access_log(lambda e: e["path"] == "/fast?queued")
        self.assertIsNotNone(entry, "the queue timeout is not in the access log")
        self.assertEqual((entry["status"], entry["flag_list"]), (503, ["QT"]), entry)
        slow.join()
        self.assertEqual(self.app.request_count(), 1, "the timed-out request reached the app")
        self.assertEqual(http_get(self.port, "/fast").status, 200, "the slot was released")


if __name__ == "__main__":
    unittest.main()
