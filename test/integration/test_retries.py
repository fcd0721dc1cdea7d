"""Retries through the real binary: on connect failure, reset and 5xx, to another host, with
x-phoenix-attempt-count; a body over the replay limit is neither retried nor cut; exhausted
retries answer with the last response or 503 URX."""

import threading
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get, http_request
from harness.config import route, simple_config
from harness.process import free_port


def retry_route(policy, timeout=None):
    action = {"cluster": "app", "retry_policy": policy}
    if timeout:
        action["timeout"] = timeout
    return [route({"prefix": "/"}, route=action)]


class RetryTest(PhoenixTestCase):

    def start(self, policy, upstream_ports, **options):
        self.port = free_port()
        self.px = self.start_phoenix(simple_config(
            self.port, free_port(), upstream_ports, routes=retry_route(policy), **options))

    def test_connect_failure_retried_on_another_host(self):
        good = self.start_upstream("good")
        dead = free_port()  # nothing listens: every connect there fails
        self.start({"retry_on": "connect-failure", "num_retries": 2,
                    "retry_back_off": {"base_interval": "0.001s"}}, [dead, good.port])
        statuses = [http_get(self.port, f"/r{i}").status for i in range(20)]
        self.assertEqual(statuses, [200] * 20)
        retried = self.px.stat("cluster.app.upstream_rq_retry")
        self.assertGreater(retried, 0, "round robin never picked the dead host?")
        attempts = [dict((k.lower(), v) for k, v in r["headers"])["x-phoenix-attempt-count"]
                    for r in good.requests_snapshot()]
        self.assertEqual(attempts.count("2"), retried, attempts)

    def test_5xx_retried_then_succeeds(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "5xx", "num_retries": 2,
                    "retry_back_off": {"base_interval": "0.001s"}}, [app.port])
        app.fail_next(2, status=503)
        r = http_get(self.port, "/echo")
        self.assertEqual(r.status, 200)
        headers = {k: v for k, v in r.json()["headers"]}
        self.assertEqual(headers.get("x-phoenix-attempt-count"), "3", headers)
        self.assertEqual(app.request_count(), 3)
        self.assertEqual(self.px.stat("cluster.app.upstream_rq_retry"), 2)

    def test_exhausted_status_retries_return_the_last_response(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "5xx", "num_retries": 1,
                    "retry_back_off": {"base_interval": "0.001s"}}, [app.port])
        app.fail_next(5, status=502)
        r = http_get(self.port, "/x")
        self.assertEqual(r.status, 502, "the last upstream answer is passed on")
        self.assertEqual(app.request_count(), 2)

    def test_exhausted_resets_answer_503_urx(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "reset", "num_retries": 2,
                    "retry_back_off": {"base_interval": "0.001s"}}, [app.port])
        app.fail_next(3, close=True)
        r = http_get(self.port, "/reset-me")
        self.assertEqual(r.status, 503)
        self.assertEqual(app.request_count(), 3)
        entry = self.px.wait_access_log(lambda e: e["path"] == "/reset-me")
        self.assertIsNotNone(entry)
        self.assertIn("URX", entry["flag_list"], entry)
        self.assertIn("UC", entry["flag_list"], entry)

    def test_not_retried_when_not_configured_for_it(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "connect-failure", "num_retries": 3}, [app.port])
        app.fail_next(1, status=503)
        self.assertEqual(http_get(self.port, "/x").status, 503)
        self.assertEqual(app.request_count(), 1)

    def test_body_replayed_intact_and_oversized_body_not_retried(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "5xx", "num_retries": 1, "max_buffered_body_bytes": 4096,
                    "retry_back_off": {"base_interval": "0.001s"}}, [app.port])
        small = b"s" * 3000
        app.fail_next(1, status=503)
        r = http_request(self.port, "POST", "/echo", body=small)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_len"], len(small), "the replayed body was not intact")
        app.reset()
        big = b"b" * 200000
        app.fail_next(1, status=503)
        r = http_request(self.port, "POST", "/echo", body=big)
        self.assertEqual(r.status, 503, "a body over the replay limit must not be retried")
        self.assertEqual(app.request_count(), 1)
        self.assertEqual(app.requests_snapshot()[0]["body_len"], len(big),
                         "the upstream must get the whole body, never a truncated one")

    def test_per_try_timeout_retries_a_hanging_upstream(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "gateway-error", "num_retries": 1, "per_try_timeout": "0.2s",
                    "retry_back_off": {"base_interval": "0.001s"}}, [app.port])
        r = http_get(self.port, "/slow?ms=3000", timeout=10)
        self.assertEqual(r.status, 504)
        self.assertEqual(app.request_count(), 2, "the timed-out attempt was retried once")
        entry = self.px.wait_access_log(lambda e: e["path"] == "/slow?ms=3000")
        self.assertIn("UT", entry["flag_list"], entry)
        self.assertLess(int(entry["duration"]), 1500, entry)


    def test_retry_budget_holds_a_retry_storm(self):
        app = self.start_upstream("app")
        self.start({"retry_on": "5xx", "num_retries": 3,
                    "retry_back_off": {"base_interval": "0.1s"}}, [app.port],
                   cluster_options={"circuit_breakers": {"retry_budget": {
                       "budget_percent": 0, "min_retry_concurrency": 1}}})
        app.fail_next(1000, status=503)
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            http_get(self.port, "/storm").status)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [503] * 6)
        # Without the budget: 6 x (1 + 3) = 24 upstream requests.
        self.assertLessEqual(app.request_count(), 12, "the budget did not hold the storm")
        self.assertGreaterEqual(self.px.stat("cluster.app.upstream_rq_retry_overflow"), 3)


if __name__ == "__main__":
    unittest.main()
