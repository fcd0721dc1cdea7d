"""Host health through the real binary: outlier ejection on consecutive 5xx, active HTTP and TCP
health checks taking hosts out of rotation and back, and priority failover and fail-back."""

import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import (make_cluster, make_config, make_listener, route, simple_config,
                            socket_address, virtual_host)
from harness.process import free_port, wait_until


def hosts_with_flag(px, flag):
    _, body = px.admin_get("/clusters")
    text = body.decode() if isinstance(body, bytes) else body
    return [line.split("::")[1] for line in text.splitlines()
            if "::health_flags::" in line and flag in line]


class OutlierDetectionTest(PhoenixTestCase):

    def test_consecutive_5xx_ejects_the_host(self):
        good, bad = self.start_upstream("good"), self.start_upstream("bad")
        bad.fail_next(1000, status=503)
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [good.port, bad.port],
                                              cluster_options={"outlier_detection": {
                                                  "consecutive_5xx": 3,
                                                  "base_ejection_time": "30s",
                                                  "max_ejection_percent": 50}}))
        statuses = [http_get(port, f"/n{i}").status for i in range(30)]
        self.assertEqual(bad.request_count(), 3, "the bad host kept getting traffic")
        self.assertEqual(statuses.count(503), 3)
        self.assertEqual(px.stat("cluster.app.outlier_detection.ejections_total"), 1)
        self.assertEqual(hosts_with_flag(px, "failed_outlier_check"), [f"127.0.0.1:{bad.port}"])


    def test_success_rate_outlier_is_ejected(self):
        hosts = [self.start_upstream(f"h{i}") for i in range(3)]
        bad = hosts[2]
        bad.fail_next(100000, status=500)
        port = free_port()
        px = self.start_phoenix(simple_config(
            port, free_port(), [h.port for h in hosts],
            cluster_options={"outlier_detection": {
                "consecutive_5xx": 0, "consecutive_gateway_failure": 0,  # success rate only
                "interval": "0.3s", "success_rate_request_volume": 5,
                "success_rate_minimum_hosts": 3, "success_rate_stdev_factor": 1000,
                "base_ejection_time": "30s", "max_ejection_percent": 50}}))

        def ejected():
            for i in range(6):
                http_get(port, f"/sr{i}")
            return px.stat("cluster.app.outlier_detection.ejections_total") > 0

        self.assertTrue(wait_until(ejected, timeout=10), "no success-rate ejection")
        self.assertEqual(hosts_with_flag(px, "failed_outlier_check"), [f"127.0.0.1:{bad.port}"])
        before = bad.request_count()
        self.assertEqual([http_get(port, f"/after{i}").status for i in range(10)], [200] * 10)
        self.assertEqual(bad.request_count(), before)


class ActiveHealthCheckTest(PhoenixTestCase):

    def test_failing_checks_take_a_host_out_and_back(self):
        a, b = self.start_upstream("a"), self.start_upstream("b")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [a.port, b.port],
                                              cluster_options={"health_checks": [{
                                                  "interval": "0.05s", "timeout": "0.5s",
                                                  "unhealthy_threshold": 2,
                                                  "healthy_threshold": 1,
                                                  "http_health_check": {"path": "/healthz"}}]}))
        b.fail_next(100000, status=500)
        self.assertTrue(wait_until(lambda: hosts_with_flag(px, "failed_active_hc"), timeout=5),
                        "b was never marked unhealthy")
        before = b.request_count()
        for i in range(10):
            self.assertEqual(http_get(port, f"/x{i}").status, 200)
        proxied = [r for r in b.requests_snapshot()[before:] if r["path"] != "/healthz"]
        self.assertEqual(proxied, [], "an unhealthy host got traffic")
        b.clear_failures()
        self.assertTrue(wait_until(lambda: not hosts_with_flag(px, "failed_active_hc"),
                                   timeout=5), "b never came back")
        b.reset()
        for i in range(10):
            http_get(port, f"/y{i}")
        self.assertTrue(any(r["path"].startswith("/y") for r in b.requests_snapshot()))
        self.assertGreater(px.stat("cluster.app.health_check.failure"), 0)


class PriorityFailoverTest(PhoenixTestCase):

    def test_failover_to_secondary_and_back(self):
        primary_port = free_port()  # nothing listens yet
        secondary = self.start_upstream("secondary")
        port, admin = free_port(), free_port()
        cluster = make_cluster("app", [primary_port], health_checks=[{
            "interval": "0.05s", "timeout": "0.3s", "unhealthy_threshold": 1,
            "healthy_threshold": 1, "tcp_health_check": {}}])
        cluster["load_assignment"]["endpoints"][0]["priority"] = 0
        cluster["load_assignment"]["endpoints"].append({
            "priority": 1, "lb_endpoints": [{"endpoint": {"address": socket_address(
                secondary.port)}}]})
        px = self.start_phoenix(make_config(admin, listeners=[make_listener(
            "ingress", port, [virtual_host("all", ["*"], [route({"prefix": "/"},
                                                                  cluster="app")])])],
            clusters=[cluster]))
        self.assertTrue(wait_until(lambda: hosts_with_flag(px, "failed_active_hc")))
        statuses = [http_get(port, f"/f{i}").status for i in range(10)]
        self.assertEqual(statuses, [200] * 10, "no failover to priority 1")
        self.assertEqual(secondary.request_count(), 10)
        primary = self.start_upstream("primary", port=primary_port)
        self.assertTrue(wait_until(lambda: not hosts_with_flag(px, "failed_active_hc")),
                        "the primary never came back")
        for i in range(10):
            self.assertEqual(http_get(port, f"/b{i}").status, 200)
        self.assertEqual(primary.request_count(), 10, "no fail-back to priority 0")


class ReadinessTest(PhoenixTestCase):

    def test_healthcheck_fail_and_ok_toggle_ready(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        self.assertEqual(px.admin_get("/ready")[0], 200)
        self.assertEqual(px.admin_post("/healthcheck/fail")[0], 200)
        self.assertEqual(px.admin_get("/ready")[0], 503)
        self.assertEqual(http_get(port, "/").status, 200, "traffic still flows while failing")
        self.assertEqual(px.admin_post("/healthcheck/ok")[0], 200)
        self.assertEqual(px.admin_get("/ready")[0], 200)
        # Operator actions are in the log.
        self.assertTrue(wait_until(lambda: "[info] admin: /healthcheck/ok" in px.stderr_text()))
        self.assertIn("[info] admin: /healthcheck/fail", px.stderr_text())


if __name__ == "__main__":
    unittest.main()
