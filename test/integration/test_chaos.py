"""Resilience under chaos, through the real binary: three demo-app instances behind one
cluster, one killed with SIGKILL every ~0.6 s (and restarted) while clients keep sending
requests. With retries, outlier detection and health checks on, at least 99.9% succeed."""

import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn
from harness.config import route, simple_config
from harness.process import free_port
from harness.upstream import start_demo_app


class ChaosTest(PhoenixTestCase):

    def test_killing_instances_under_load(self):
        ports = [free_port() for _ in range(3)]
        apps = {p: start_demo_app(p, str(p), timeout=5) for p in ports}
        self.addCleanup(lambda: [a.kill() for a in apps.values()])
        port = free_port()
        px = self.start_phoenix(simple_config(
            port, free_port(), ports, connect_timeout="0.25s",
            routes=[route({"prefix": "/"}, route={
                "cluster": "app", "timeout": "5s",
                "retry_policy": {"retry_on": "5xx,reset,connect-failure", "num_retries": 3,
                                 "per_try_timeout": "1s",
                                 "retry_back_off": {"base_interval": "0.005s",
                                                    "max_interval": "0.05s"}}})],
            cluster_options={
                "outlier_detection": {"consecutive_gateway_failure": 2,
                                      "base_ejection_time": "1s", "max_ejection_percent": 67},
                "health_checks": [{"interval": "0.1s", "timeout": "0.2s",
                                   "unhealthy_threshold": 1, "healthy_threshold": 1,
                                   "http_health_check": {"path": "/healthz"}}]}))

        stop = threading.Event()
        outcomes, lock = [], threading.Lock()

        def client():
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = ClientConn(port, timeout=5)
                    conn.request("GET", "/")
                    status = conn.read_response().status
                except Exception:  # the proxy closed on us: that is a failure too
                    status, conn = -1, None
                with lock:
                    outcomes.append(status)

        clients = [threading.Thread(target=client) for _ in range(4)]
        for c in clients:
            c.start()
        kills = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            victim = ports[kills % 3]
            apps[victim].kill()
            apps[victim].wait()
            kills += 1
            time.sleep(0.3)  # the chaos schedule: down for a moment, then restarted
            apps[victim] = start_demo_app(victim, str(victim), timeout=5)
            time.sleep(0.3)
        stop.set()
        for c in clients:
            c.join()

        total, ok = len(outcomes), outcomes.count(200)
        self.assertGreater(total, 500, "too little load to judge")
        self.assertGreaterEqual(ok / total, 0.999,
                                f"{total - ok} of {total} failed: {set(outcomes)}")
        self.assertGreater(px.stat("cluster.app.upstream_rq_retry"), 0, "no retries happened?")
        print(f"\nchaos: {kills} kills, {total} requests, {total - ok} failed, "
              f"{px.stat('cluster.app.upstream_rq_retry')} retries, "
              f"{px.stat('cluster.app.outlier_detection.ejections_total')} ejections")


if __name__ == "__main__":
    unittest.main()
