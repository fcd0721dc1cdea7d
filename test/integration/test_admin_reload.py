"""Admin endpoints, hot reload (SIGHUP and POST /reload), reload under load, graceful drain."""

import http.client
import json
import re
import shutil
import signal
import subprocess
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn, http_get
from harness.config import direct_response, make_cluster, route, simple_config
from harness.process import connect_refused, free_port, wait_until

# One exposition-format sample line: name, optional labels, value, optional timestamp.
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
PROM_SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?:' + _LABEL + r'(?:,' + _LABEL + r')*,?)?\})?'
    r' (?P<value>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)'
    r'(?: -?[0-9]+)?$')
PROM_TYPE_RE = re.compile(
    r'^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$')
PROM_HELP_RE = re.compile(r'^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$')


def reload_config(port, admin_port, upstream_ports, body, **kw):
    routes = [
        route({"path": "/dr"}, direct_response=direct_response(200, body)),
        route({"prefix": "/"}, cluster="app"),
    ]
    return simple_config(port, admin_port, upstream_ports, routes=routes, **kw)


def find_named(obj, name):
    """True if some dict inside ``obj`` has "name": ``name``."""
    if isinstance(obj, dict):
        if obj.get("name") == name:
            return True
        return any(find_named(v, name) for v in obj.values())
    if isinstance(obj, list):
        return any(find_named(v, name) for v in obj)
    return False


def slow_request(port, path, result):
    """A thread body that GETs ``path`` and records response, error and completion time."""
    def run():
        try:
            result["response"] = http_get(port, path, timeout=10)
        except Exception as e:
            result["error"] = repr(e)
        result["done_at"] = time.monotonic()
    return run


class AdminTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = [cls.start_class_upstream("app0"), cls.start_class_upstream("app1")]
        cls.port = free_port()
        # A second cluster whose name is not a valid Prometheus identifier as is.
        cls.px = cls.start_class_phoenix(reload_config(
            cls.port, free_port(), [u.port for u in cls.ups], "v0\n",
            extra_clusters=[make_cluster("my-app.v2", [cls.ups[0].port])]))

    def test_ready(self):
        status, body = self.px.admin_get("/ready")
        self.assertEqual(status, 200)
        self.assertIn("LIVE", body)

    def test_stats_count_requests(self):
        before = self.px.stats()
        for _ in range(3):
            self.assertEqual(http_get(self.port, "/echo").status, 200)
        self.assertEqual(http_get(self.port, "/dr").status, 200)

        def grown(name, n):
            return self.px.wait_for_stat(name, lambda v: v >= before.get(name, 0) + n)

        self.assertEqual(grown("http.ingress.downstream_rq_total", 4),
                         before.get("http.ingress.downstream_rq_total", 0) + 4)
        self.assertEqual(grown("http.ingress.downstream_rq_2xx", 4),
                         before.get("http.ingress.downstream_rq_2xx", 0) + 4)
        self.assertEqual(grown("cluster.app.upstream_rq_total", 3),
                         before.get("cluster.app.upstream_rq_total", 0) + 3)
        self.assertGreaterEqual(grown("http.ingress.downstream_cx_total", 4),
                                before.get("http.ingress.downstream_cx_total", 0) + 4)
        self.assertGreaterEqual(self.px.stat("cluster.app.upstream_cx_total"), 1)

    def test_stats_prometheus(self):
        http_get(self.port, "/echo")
        status, body = self.px.admin_get("/stats/prometheus")
        self.assertEqual(status, 200)
        lines = [l for l in body.splitlines() if l.strip()]
        self.assertTrue(lines, "empty exposition")
        typed = {}
        samples = 0
        for line in lines:
            if line.startswith("#"):
                m = PROM_TYPE_RE.match(line)
                if m:
                    self.assertNotIn(m.group("name"), typed, f"duplicate TYPE: {line}")
                    typed[m.group("name")] = samples
                elif not PROM_HELP_RE.match(line):
                    self.fail(f"bad comment line: {line!r}")
                continue
            m = PROM_SAMPLE_RE.match(line)
            self.assertIsNotNone(m, f"invalid exposition line: {line!r}")
            name = m.group("name")
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] in typed:
                    family = name[:-len(suffix)]
            self.assertIn(family, typed, f"sample without a preceding '# TYPE': {line!r}")
            samples += 1
        self.assertTrue(typed, "no '# TYPE' lines")
        self.assertGreater(samples, 0)
        self.assertTrue(any("downstream_rq_total" in l for l in lines if not l.startswith("#")),
                        "downstream_rq_total missing from /stats/prometheus")
        helped = {PROM_HELP_RE.match(l).group(0).split()[2] for l in lines
                  if PROM_HELP_RE.match(l)}
        self.assertEqual(set(typed), helped, "every family needs one # HELP and one # TYPE")
        # Dynamic names are labels of one family, whatever characters they hold.
        for cluster in ("app", "my-app.v2"):
            self.assertTrue(
                any(l.startswith(f'phoenix_cluster_upstream_rq_total{{cluster_name="{cluster}"}} ')
                    for l in lines), f"cluster {cluster} is not a label of upstream_rq_total")
        self.assertIn("phoenix_http_downstream_rq_xx_total", typed)
        self.assertIn("phoenix_cluster_upstream_rq_time_seconds", typed)
        self.assertFalse([n for n in typed if "my_app" in n or "ingress" in n],
                         "a dynamic name leaked into a metric name")

    def test_stats_prometheus_passes_promtool(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: tools/setup.sh installs it (prometheus)")
        http_get(self.port, "/echo")
        status, body = self.px.admin_get("/stats/prometheus")
        self.assertEqual(status, 200)
        check = subprocess.run([promtool, "check", "metrics"], input=body.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0,
                         (check.stdout + check.stderr).decode(errors="replace")[:2000])

    def test_stats_filter_usedonly_and_json(self):
        self.assertEqual(http_get(self.port, "/echo").status, 200)
        self.px.wait_for_stat("cluster.app.upstream_rq_total", lambda v: v >= 1)
        status, body = self.px.admin_get("/stats?filter=%5Ecluster%5C.app%5C.upstream_rq_")
        self.assertEqual(status, 200)
        names = [l.split(":")[0] for l in body.splitlines()]
        self.assertIn("cluster.app.upstream_rq_total", names)
        self.assertTrue(all(n.startswith("cluster.app.upstream_rq_") for n in names), names)
        status, body = self.px.admin_get("/stats?usedonly")
        self.assertEqual(status, 200)
        values = dict(l.split(": ", 1) for l in body.splitlines())
        self.assertIn("cluster.app.upstream_rq_total", values)
        self.assertNotIn("cluster.app.upstream_cx_connect_timeout", values)
        status, body = self.px.admin_get("/stats?format=json&filter=server%5C.live")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"stats": [{"name": "server.live", "value": 1}]})
        status, body = self.px.admin_get("/stats/prometheus?filter=upstream_rq_total&usedonly")
        self.assertEqual(status, 200)
        samples = [l for l in body.splitlines() if not l.startswith("#")]
        self.assertTrue(samples)
        self.assertTrue(all(l.startswith("phoenix_cluster_upstream_rq_total{") for l in samples),
                        samples)
        status, body = self.px.admin_get("/stats?filter=%28")
        self.assertEqual((status, body.split(":")[0]), (400, "filter"))
        status, body = self.px.admin_get("/stats?verbose=1")
        self.assertEqual(status, 400)
        self.assertIn("filter=<regex>", body)

    def test_clusters(self):
        status, body = self.px.admin_get("/clusters")
        self.assertEqual(status, 200)
        self.assertTrue(any(l.startswith(f"my-app.v2::127.0.0.1:{self.ups[0].port}::")
                            for l in body.splitlines()), body[:2000])
        for u in self.ups:
            self.assertTrue(any(l.startswith(f"app::127.0.0.1:{u.port}::")
                                for l in body.splitlines()),
                            f"host 127.0.0.1:{u.port} missing from /clusters:\n{body[:2000]}")

    def test_config_dump(self):
        status, body = self.px.admin_get("/config_dump")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertIn("version", doc)
        self.assertTrue(find_named(doc, "app"), "cluster 'app' not in /config_dump")
        self.assertTrue(find_named(doc, "ingress"), "listener 'ingress' not in /config_dump")
        self.assertNotIn('"lb_policy"', body)  # unset: not shown by default

    def test_config_dump_with_defaults_and_pretty(self):
        status, body = self.px.admin_get("/config_dump?include_defaults&pretty")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        cluster = [c for c in doc["bootstrap"]["static_resources"]["clusters"]
                   if c["name"] == "app"][0]
        self.assertEqual(cluster["lb_policy"], "ROUND_ROBIN")
        self.assertIn('\n "version": ', body)  # indented
        self.assertEqual(json.loads(self.px.admin_get("/config_dump")[1])["version"],
                         doc["version"])

    def test_server_info(self):
        status, body = self.px.admin_get("/server_info")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertIn("version", doc)
        self.assertIn("state", doc)
        self.assertTrue(str(doc["version"]), "empty version")

    def test_unknown_admin_path_404(self):
        status, _ = self.px.admin_get("/no-such-admin-endpoint")
        self.assertEqual(status, 404)

    def test_root_and_help_list_the_endpoints(self):
        for path in ("/", "/help"):
            status, body = self.px.admin_get(path)
            self.assertEqual(status, 200, body)
            self.assertIn("GET /config_dump", body)
            self.assertIn("POST /reload", body)


class ReloadTest(PhoenixTestCase):

    def setUp(self):
        self.app = self.start_upstream("app")
        self.port = free_port()
        self.admin = free_port()
        self.px = self.start_phoenix(self.config("v0\n"))

    def config(self, body, **kw):
        return reload_config(self.port, self.admin, [self.app.port], body, **kw)

    def dr_body(self):
        return http_get(self.port, "/dr").body

    def wait_body(self, body, timeout=5.0):
        got = wait_until(lambda: self.dr_body() == body, timeout)
        self.assertTrue(got, f"new config not served within {timeout}s "
                             f"(still {self.dr_body()!r})")

    def wait_version_above(self, version, timeout=5.0):
        got = wait_until(lambda: (self.px.config_version() or 0) > version, timeout)
        self.assertTrue(got, f"config version still {self.px.config_version()} "
                             f"(was {version})")
        return self.px.config_version()

    def test_reload_counters_read_zero_before_the_first_reload(self):
        stats = self.px.stats()
        self.assertEqual(stats.get("server.config_reload_success"), 0)
        self.assertEqual(stats.get("server.config_reload_failure"), 0)
        status, body = self.px.admin_get("/stats/prometheus?filter=config_reload")
        self.assertEqual(status, 200)
        self.assertIn("phoenix_server_config_reload_success_total 0\n", body)
        self.assertIn("phoenix_server_config_reload_failure_total 0\n", body)

    def test_sighup_reload(self):
        self.assertEqual(self.dr_body(), b"v0\n")
        v0 = self.px.config_version()
        self.assertIsInstance(v0, int)
        gauge0 = self.px.stat("server.config_version")
        success0 = self.px.stat("server.config_reload_success")
        pid = self.px.pid
        self.px.reload_with(self.config("v1\n"))
        self.wait_body(b"v1\n")
        v1 = self.wait_version_above(v0)
        self.assertGreater(v1, v0)
        self.assertGreater(self.px.wait_for_stat("server.config_reload_success",
                                                 lambda v: v > success0), success0)
        self.assertGreater(self.px.wait_for_stat("server.config_version",
                                                 lambda v: v > gauge0), gauge0)
        self.assertEqual(self.px.pid, pid)
        self.assertAlive(self.px)
        self.assertEqual(http_get(self.port, "/echo").status, 200)

    def test_post_reload(self):
        v0 = self.px.config_version()
        self.px.write_config(self.config("via-post\n"))
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 200, body)
        self.wait_body(b"via-post\n")
        self.assertGreater(self.wait_version_above(v0), v0)

    def test_a_listener_that_moves_in_a_reload_is_logged(self):
        new_port = free_port()
        config = reload_config(new_port, self.admin, [self.app.port], "moved\n")
        self.px.write_config(config)
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 200, body)
        self.assertEqual(http_get(new_port, "/dr").body, b"moved\n")
        self.assertTrue(wait_until(lambda: f"listener 'ingress' moved from 127.0.0.1:{self.port} "
                                           f"to 127.0.0.1:{new_port}" in self.px.stderr_text()),
                        self.px.stderr_text())

    def bad_config_text(self):
        cfg = self.config("never\n")
        cfg["static_resources"]["clusters"][0]["lb_polcy"] = "ROUND_ROBIN"  # unknown field
        return cfg

    def test_invalid_reload_rejected_via_sighup(self):
        v0 = self.px.config_version()
        failures0 = self.px.stat("server.config_reload_failure")
        self.px.reload_with(self.bad_config_text())
        seen = wait_until(lambda: self.px.stat("server.config_reload_failure") > failures0
                          or "lb_polcy" in self.px.stderr_text(), 5.0)
        self.assertTrue(seen, "the failed reload left no trace (stat or stderr)")
        self.assertGreater(self.px.wait_for_stat("server.config_reload_failure",
                                                 lambda v: v > failures0), failures0)
        self.assertAlive(self.px)
        self.assertEqual(self.dr_body(), b"v0\n", "old config must keep serving")
        self.assertEqual(http_get(self.port, "/echo").status, 200)
        self.assertEqual(self.px.config_version(), v0)
        # and a later good reload still works
        self.px.reload_with(self.config("v2\n"))
        self.wait_body(b"v2\n")

    def test_invalid_reload_rejected_via_post(self):
        v0 = self.px.config_version()
        self.px.write_config(self.bad_config_text())
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 400, body)
        self.assertIn("lb_polcy", body, "the error should name the offending field")
        self.assertAlive(self.px)
        self.assertEqual(self.dr_body(), b"v0\n")
        self.assertEqual(self.px.config_version(), v0)
        # The multi-line log message: every line with its stamp and level.
        self.assertTrue(wait_until(lambda: "lb_polcy" in self.px.stderr_text()))
        for line in self.px.stderr_text().splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\] ")

    def resource_status(self):
        status, body = self.px.admin_get("/config_dump")
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        return {r["type_url"].rsplit(".", 1)[-1]: r for r in doc["resources"]}

    def test_config_dump_versions_each_resource_type_and_shows_nacks(self):
        before = self.resource_status()
        self.assertTrue(before["Listener"]["version_info"])
        self.assertTrue(before["Cluster"]["version_info"])
        # Only the listener changes: only its version moves.
        v0 = self.px.config_version()
        self.px.write_config(self.config("v1\n"))
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 200, body)
        self.wait_version_above(v0)
        after = self.resource_status()
        self.assertNotEqual(after["Listener"]["version_info"], before["Listener"]["version_info"])
        self.assertEqual(after["Cluster"]["version_info"], before["Cluster"]["version_info"])
        # A config that loads but fails validation is rejected (NACK): the accepted versions
        # stay, and the rejected one is shown with its error.
        cfg = self.config("never\n")
        cfg["static_resources"]["listeners"][0]["http_connection_manager"]["route_config"][
            "virtual_hosts"][0]["routes"][1]["route"]["cluster"] = "no-such-cluster"
        self.px.write_config(cfg)
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 400, body)
        nacked = self.resource_status()
        self.assertEqual(nacked["Listener"]["version_info"], after["Listener"]["version_info"])
        self.assertIn("no-such-cluster", nacked["Listener"]["error_detail"])
        self.assertTrue(nacked["Listener"]["rejected_version"])
        self.assertEqual(self.dr_body(), b"v1\n")

    def test_reload_under_load(self):
        stop = threading.Event()
        failures = []
        counts = {"keepalive": 0, "new": 0}

        def keepalive_client():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            while not stop.is_set():
                try:
                    conn.request("GET", "/echo?ka")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        failures.append(f"keepalive: status {r.status}")
                    counts["keepalive"] += 1
                except Exception as e:
                    failures.append(f"keepalive: {e!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.close()

        def new_connection_client():
            while not stop.is_set():
                try:
                    r = http_get(self.port, "/echo?new", timeout=5)
                    if r.status != 200:
                        failures.append(f"new: status {r.status}")
                    counts["new"] += 1
                except Exception as e:
                    failures.append(f"new: {e!r}")

        threads = [threading.Thread(target=keepalive_client, daemon=True),
                   threading.Thread(target=new_connection_client, daemon=True)]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        try:
            wait_until(lambda: counts["keepalive"] > 10 and counts["new"] > 5, 5.0)
            version = self.px.config_version()
            for i in range(1, 6):
                # Vary the cluster too, so that reloads rebuild more than the routes.
                cfg = self.config(f"load-{i}\n",
                                  cluster_options={"max_idle_connections_per_host": 8 + i})
                self.px.reload_with(cfg)
                version = self.wait_version_above(version)
                before = dict(counts)
                wait_until(lambda: counts["keepalive"] > before["keepalive"] + 5
                           and counts["new"] > before["new"] + 2, 5.0)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        self.assertEqual(failures, [], f"{len(failures)} failed requests during reloads "
                                       f"(of {counts}): {failures[:5]}")
        self.assertGreater(counts["keepalive"], 30, counts)
        self.assertGreater(counts["new"], 10, counts)
        self.assertEqual(self.dr_body(), b"load-5\n")
        self.assertAlive(self.px)


class DrainTest(PhoenixTestCase):

    def test_sigterm_when_idle_exits_zero(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        self.assertEqual(http_get(port, "/echo").status, 200)
        t0 = time.monotonic()
        rc = px.stop(signal.SIGTERM, timeout=5)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 2.0, "an idle proxy should exit promptly")
        self.assertTrue(connect_refused(port))

    def test_graceful_drain_on_sigterm(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port],
                                              drain_timeout="5s"))
        result = {}
        slow_client = slow_request(port, "/slow?ms=1500", result)

        # An idle keep-alive client connection must not hold up the exit.
        idle = ClientConn(port, timeout=5)
        self.addCleanup(idle.close)
        idle.request("GET", "/echo")
        self.assertEqual(idle.read_response().status, 200)

        t = threading.Thread(target=slow_client, daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: app.find_request(lambda r: r["path"] == "/slow"),
                                   5.0), "the slow request never reached the upstream")
        t_term = time.monotonic()
        px.proc.send_signal(signal.SIGTERM)

        refused = wait_until(lambda: connect_refused(port), 3.0)
        t_refused = time.monotonic()
        self.assertTrue(refused, "listener still accepting 3s after SIGTERM")
        self.assertLess(t_refused - t_term, 1.0,
                        "new connections should be refused soon after SIGTERM")
        self.assertNotIn("done_at", result, "in-flight request finished before the listener "
                                            "closed; cannot tell drain from exit")
        self.assertIsNone(px.proc.poll(), "phoenix exited while a request was in flight")
        self.assertTrue(idle.wait_closed(timeout=2.0),
                        "idle keep-alive connection not closed during the drain")

        t.join(timeout=10)
        self.assertNotIn("error", result, result.get("error"))
        r = result["response"]
        self.assertEqual((r.status, r.body), (200, b"slow ok\n"),
                         "the in-flight request must complete during the drain")
        try:
            rc = px.proc.wait(timeout=6)
        except Exception:
            rc = None
        t_exit = time.monotonic()
        self.assertEqual(rc, 0, "phoenix should exit 0 after draining")
        self.assertLess(t_exit - t_term, 5.0, "exit took longer than drain_timeout")

    def test_drain_timeout_bounds_exit(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(simple_config(port, free_port(), [app.port],
                                              drain_timeout="0.5s"))
        result = {}
        slow_client = slow_request(port, "/slow?ms=5000", result)

        t = threading.Thread(target=slow_client, daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: app.find_request(lambda r: r["path"] == "/slow"),
                                   5.0), "the slow request never reached the upstream")
        t_term = time.monotonic()
        px.proc.send_signal(signal.SIGTERM)
        try:
            px.proc.wait(timeout=4)
        except Exception:
            pass
        elapsed = time.monotonic() - t_term
        self.assertIsNotNone(px.proc.poll(),
                             "phoenix still running 4s after SIGTERM with drain_timeout 0.5s")
        self.assertLess(elapsed, 2.5)
        self.assertGreaterEqual(elapsed, 0.4, "exited without waiting for the drain")
        t.join(timeout=10)
        if "response" in result:  # a 503, or a close if it was lost; a 200 is impossible
            self.assertEqual(result["response"].status, 503, result["response"])
        # The cut request is logged with what it got, and why.
        entry = px.wait_access_log(lambda e: e["path"] == "/slow?ms=5000")
        self.assertIsNotNone(entry, "the request cut by the drain timeout was not logged")
        self.assertEqual((entry["status"], entry["flag_list"]), (503, ["DRAIN"]), entry)


if __name__ == "__main__":
    unittest.main()
