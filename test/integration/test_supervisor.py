"""The supervisor (bootstrap `supervisor`): phoenix starts a small app (apps/supervised_app.py)
as instances that are endpoints of a SUPERVISED cluster once ready; restarts a crashed one after
its back-off; detects a crash loop; leaves no orphan when SIGKILLed; stops instances gracefully
on drain; and scales on load. Every wait is on an observable state (/apps, /stats, a pid), with
a deadline."""

import json
import os
import signal
import sys
import tempfile
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import make_config, make_listener, route, virtual_host
from harness.process import free_port, free_port_range, wait_until

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "supervised_app.py")


def pid_gone(pid):
    """True once `pid` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class SupervisorTest(PhoenixTestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="phoenix-sup-")
        self.log_path = os.path.join(self.tmp, "app.log")

    def app(self, **overrides):
        ports = overrides.pop("ports", 4)
        base = free_port_range(ports)
        app = {
            "name": "web",
            "command": sys.executable,
            "args": [APP],
            "env": {"PYTHONUNBUFFERED": "1"},
            "port_range": {"start": base, "end": base + ports - 1},
            "readiness": {"http_path": "/healthz", "interval": "0.05s"},
            "cluster": "app",
            "restart_back_off": {"initial": "0.5s", "max": "2s"},
            "stop_grace_period": "2s",
            "log_path": self.log_path,
        }
        app.update(overrides)
        return app

    def start(self, app, drain_timeout=None):
        self.port, admin = free_port(), free_port()
        cfg = make_config(admin, [make_listener("ingress", self.port, [
            virtual_host("v", ["*"], [route({"prefix": "/"}, "app")])])],
            [{"name": "app", "type": "SUPERVISED", "connect_timeout": "1s"}],
            drain_timeout=drain_timeout)
        cfg["supervisor"] = {"apps": [app]}
        return self.start_phoenix(cfg)

    def apps(self, px):
        status, body = px.admin_get("/apps")
        self.assertEqual(status, 200, body)
        return json.loads(body)["apps"][0]

    def wait_instances(self, px, predicate, timeout=10.0, what="instances"):
        """Polls /apps until predicate(instances); returns them."""
        last = []

        def check():
            last[:] = self.apps(px)["instances"]
            return predicate(last)

        if not wait_until(check, timeout, interval=0.05):
            self.fail(f"{what}: not within {timeout}s; /apps instances: {last}\n"
                      f"{px.logs() if hasattr(px, 'logs') else ''}")
        return list(last)

    def ready(self, instances, n=1):
        return sum(1 for i in instances if i["state"] == "READY") == n

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def test_a_cpu_peak_of_the_instances_is_noticed(self):
        app = self.app()
        self.port, admin = free_port(), free_port()
        cfg = make_config(admin, [make_listener("ingress", self.port, [
            virtual_host("v", ["*"], [route({"prefix": "/"}, "app")])])],
            [{"name": "app", "type": "SUPERVISED", "connect_timeout": "1s"}])
        cfg["supervisor"] = {"apps": [app]}
        # 5% of the host's cores: one instance burning a core crosses it, phoenix alone not.
        cfg["overload_manager"] = {"refresh_interval": "0.1s", "app_cpu": {"notice": 0.05}}
        px = self.start_phoenix(cfg)
        self.wait_instances(px, self.ready, what="one ready instance")

        def burn():
            self.assertEqual(http_get(self.port, "/burn?ms=300").status, 200)
            return px.stat("overload.app_cpu.notice") >= 1

        self.assertTrue(wait_until(burn, 15.0), px.logs())
        self.assertIn("CPU peak: app instances' CPU", px.stderr_text())
        self.assertEqual(px.stat("overload.shedding"), 0)

    def test_instance_becomes_an_endpoint_and_answers_through_phoenix(self):
        px = self.start(self.app())
        [instance] = self.wait_instances(px, self.ready, what="one ready instance")
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 200)
        self.assertIn(f"pid {instance['pid']} port {instance['port']}".encode(), r.body)
        self.assertEqual(px.stat("supervisor.web.instances_ready"), 1)
        self.assertIn(f"pid {instance['pid']} listening", self.log_text())
        _, prometheus = px.admin_get("/stats/prometheus")
        self.assertIn('phoenix_supervisor_instances_ready{app="web"} 1', prometheus)

    def test_restart_after_a_crash_within_the_back_off(self):
        px = self.start(self.app(restart_back_off={"initial": "0.5s", "max": "2s"}))
        [first] = self.wait_instances(px, self.ready, what="one ready instance")
        crashed_at = time.monotonic()
        try:
            http_get(first["port"], "/crash", timeout=2)  # Straight to the instance.
        except OSError:
            pass
        [second] = self.wait_instances(
            px, lambda i: self.ready(i) and i[0]["pid"] != first["pid"], timeout=5,
            what="a new ready instance")
        back = time.monotonic() - crashed_at
        # Started after its 0.5 s back-off, and ready well within a second of that.
        self.assertGreaterEqual(back, 0.5)
        self.assertLess(back, 2.5)
        self.assertEqual(second["restarts"], 1)
        self.assertEqual(second["port"], first["port"])
        self.assertTrue(pid_gone(first["pid"]))
        self.assertEqual(px.stat("supervisor.web.restarts"), 1)
        self.assertEqual(px.stat("supervisor.web.crashes"), 1)
        self.assertEqual(http_get(self.port, "/").status, 200)
        with open(px.stderr_path) as f:
            log = f.read()
        self.assertIn("exited with status 3", log)
        self.assertIn("restarting it in 500 ms", log)

    def test_crash_loop_is_detected_and_backs_off_to_the_maximum(self):
        app = self.app(args=["-c", "import sys; print('starting'); sys.exit(7)"],
                       restart_back_off={"initial": "0.05s", "max": "3s"},
                       crash_loop={"max_crashes": 3, "interval": "10s"})
        px = self.start(app)
        px.wait_for_stat("supervisor.web.crash_loops", lambda v: v == 1, timeout=10)
        self.assertEqual(px.stat("supervisor.web.in_crash_loop"), 1)
        crashes = px.stat("supervisor.web.crashes")
        self.assertEqual(crashes, 3)
        with open(px.stderr_path) as f:
            log = f.read()
        self.assertIn("crash loop: 3 crashes within 10000 ms; restarts now wait 3000 ms", log)
        self.assertIn("restarting it in 3000 ms", log)
        # The back-off before the loop doubled: 50 ms, then 100 ms.
        self.assertIn("restarting it in 50 ms", log)
        self.assertIn("restarting it in 100 ms", log)
        # And in the loop, the instance waits out the maximum: no fourth start yet.
        self.assertEqual(px.stat("supervisor.web.starts"), 3)
        self.assertEqual(self.apps(px)["instances"][0]["state"], "WAITING_RESTART")
        self.assertIn("starting", self.log_text())
        self.assertTrue(self.apps(px)["in_crash_loop"])

    def test_readiness_gates_traffic(self):
        not_ready = os.path.join(self.tmp, "not-ready")
        open(not_ready, "w").close()
        app = self.app()
        app["env"]["NOT_READY_FILE"] = not_ready
        px = self.start(app)
        # Running and answering its port, but not ready: no endpoint, so phoenix has no host.
        [instance] = self.wait_instances(
            px, lambda i: len(i) == 1 and i[0]["pid"] != 0, what="a started instance")
        wait_until(lambda: self._answers(instance["port"]), 5)
        self.assertEqual(http_get(instance["port"], "/healthz").status, 503)
        self.assertEqual(self.apps(px)["instances"][0]["state"], "STARTING")
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 503, "a not-ready instance got traffic")
        self.assertEqual(px.stat("cluster.app.membership_hosts"), 0)
        os.unlink(not_ready)
        self.wait_instances(px, self.ready, what="ready once /healthz answers 200")
        self.assertEqual(http_get(self.port, "/").status, 200)
        self.assertEqual(px.stat("cluster.app.membership_hosts"), 1)

    @staticmethod
    def _answers(port):
        try:
            http_get(port, "/healthz", timeout=1)
            return True
        except OSError:
            return False

    def test_no_orphans_when_phoenix_is_killed(self):
        app = self.app(min_instances=2, max_instances=2, ports=2)
        px = self.start(app)
        instances = self.wait_instances(px, lambda i: self.ready(i, 2), what="two ready instances")
        pids = [i["pid"] for i in instances]
        px.proc.send_signal(signal.SIGKILL)
        px.proc.wait(timeout=5)
        gone = wait_until(lambda: all(pid_gone(p) for p in pids), timeout=5)
        self.assertTrue(gone, f"instances {pids} outlived a SIGKILLed phoenix")

    def test_graceful_stop_on_drain(self):
        px = self.start(self.app(), drain_timeout="2s")
        [instance] = self.wait_instances(px, self.ready, what="one ready instance")
        self.assertEqual(px.stop(signal.SIGTERM, timeout=10), 0)
        self.assertTrue(pid_gone(instance["pid"]))
        self.assertIn(f"pid {instance['pid']}: got SIGTERM", self.log_text())
        with open(px.stderr_path) as f:
            log = f.read()
        self.assertIn("stopped: exited with status 0", log)
        self.assertIn("every instance stopped", log)

    def test_an_instance_that_ignores_sigterm_is_killed_after_the_grace_period(self):
        app = self.app(stop_grace_period="0.5s")
        app["env"]["IGNORE_SIGTERM"] = "1"
        px = self.start(app, drain_timeout="2s")
        [instance] = self.wait_instances(px, self.ready, what="one ready instance")
        started = time.monotonic()
        self.assertEqual(px.stop(signal.SIGTERM, timeout=10), 0)
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertTrue(pid_gone(instance["pid"]))
        with open(px.stderr_path) as f:
            log = f.read()
        self.assertIn("still running after 500 ms: SIGKILL", log)
        self.assertIn("stopped: was killed by signal 9", log)

    def test_scales_up_above_the_target_and_down_when_idle(self):
        app = self.app(min_instances=1, max_instances=3, ports=3, stop_grace_period="8s",
                       autoscaling={"target_rps_per_instance": 10, "scale_up_window": "1s",
                                    "scale_down_window": "2s", "sample_interval": "0.25s"})
        px = self.start(app)
        self.wait_instances(px, self.ready, what="one ready instance")
        stop = threading.Event()
        failures = []

        def load():  # ~40 requests per second.
            while not stop.is_set():
                try:
                    if http_get(self.port, "/", timeout=5).status != 200:
                        failures.append("status")
                except OSError as e:
                    failures.append(repr(e))
                time.sleep(0.025)

        t = threading.Thread(target=load)
        t.start()
        try:
            self.wait_instances(px, lambda i: self.ready(i, 2) or self.ready(i, 3), timeout=15,
                                what="a second instance under 40 rps")
        finally:
            stop.set()
            t.join()
        self.assertGreaterEqual(px.stat("supervisor.web.scale_up"), 1)
        self.assertEqual(failures, [])
        # Idle but for slow requests on both instances (each worker's round robin alternates,
        # and one of them gets at least two of these): the instance scaled down drains them
        # before it is stopped.
        self.wait_instances(px, lambda i: self.ready(i, 2) or self.ready(i, 3), timeout=5)
        slow = []

        def slow_request():
            try:
                slow.append(http_get(self.port, "/slow?ms=4000", timeout=15).status)
            except OSError as e:
                slow.append(repr(e))

        threads = [threading.Thread(target=slow_request) for _ in range(4)]
        for t in threads:
            t.start()
        draining = self.wait_instances(
            px, lambda i: any(x["state"] == "DRAINING" for x in i), timeout=10,
            what="an instance draining its requests in flight")
        self.assertTrue(any(x["state"] == "DRAINING" for x in draining))
        for t in threads:
            t.join()
        self.assertEqual(slow, [200] * 4, "a request in flight on a drained instance failed")
        self.wait_instances(px, lambda i: len(i) == 1 and self.ready(i), timeout=15,
                            what="back to one instance when idle")
        self.assertGreaterEqual(px.stat("supervisor.web.scale_down"), 1)
        with open(px.stderr_path) as f:
            log = f.read()
        self.assertIn("scale up to 2 instances", log)
        self.assertIn("scale down to 1 instances", log)


if __name__ == "__main__":
    unittest.main()
