"""phoenix takes its listeners, routes and clusters from phoenix-cp over ADS: the real proxy
and the real control plane on loopback, phoenix-cp serving a directory of YAML files that the
tests change. Every wait is on an observable state (a request's answer, /config_dump, a log
line), never a sleep."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import direct_response, make_cluster, make_listener, route, virtual_host
from harness.control_plane import ControlPlane
from harness.control_plane import ads_bootstrap as control_plane_bootstrap
from harness.process import REPO_ROOT, free_port, wait_until


def ads_bootstrap(admin_port, cp_ports, node_id="sidecar-1"):
    return control_plane_bootstrap(admin_port, [f"127.0.0.1:{p}" for p in cp_ports], node_id)


def eds_cluster(name, **options):
    cluster = {"name": name, "type": "EDS", "connect_timeout": "1s"}
    cluster.update(options)
    return cluster


def assignment(name, ports):
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
        for p in ports]}]}


def upstream_name(port, path):
    try:
        return http_get(port, path, timeout=2.0).header("x-upstream-name")
    except OSError:
        return None


class AdsTestBase(PhoenixTestCase):
    """A resource directory, phoenix-cp on it and proxies taking their config from it."""

    def setUp(self):
        self.app = self.start_upstream("app")
        self.dir = tempfile.mkdtemp(prefix="phoenix-resources-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.audit_dir = tempfile.mkdtemp(prefix="phoenix-audit-")
        self.addCleanup(shutil.rmtree, self.audit_dir, True)
        self.port = free_port()
        self.routes = [route({"prefix": "/"}, cluster="app", name="default")]
        self.write_resources()

    def write_resources(self, extra_listeners=(), clusters=None, assignments=()):
        listener = make_listener("ingress", self.port,
                                 [virtual_host("all", ["*"], self.routes)])
        resources = {"listeners": [listener, *extra_listeners],
                     "clusters": clusters or [make_cluster("app", [self.app.port])],
                     "cluster_load_assignments": list(assignments)}
        # Written aside and renamed: phoenix-cp never reads half a file.
        path = os.path.join(self.dir, "resources.yaml")
        with open(path + ".tmp", "w") as f:
            json.dump(resources, f, indent=1)
        os.replace(path + ".tmp", path)

    def start_cp(self, port=0):
        cp = ControlPlane(self.dir, audit_log=os.path.join(self.audit_dir, f"audit{port}.jsonl"),
                          listen=f"127.0.0.1:{port}")
        self.addCleanup(cp.close)
        return cp

    def cp_log(self, cp):
        return cp.stderr.text()

    def start_proxy(self, *cps):
        admin = free_port()
        return self.start_phoenix(ads_bootstrap(admin, [cp.port for cp in cps]))

    def serving(self, path="/", status=200):
        try:
            return http_get(self.port, path, timeout=2.0).status == status
        except OSError:
            return False

    def versions(self, px):
        dump = px.config_dump()
        return {r["type_url"].rsplit(".", 1)[1]: r for r in dump["resources"]}


class AdsTest(AdsTestBase):

    def test_the_proxy_serves_what_the_control_plane_pushes_and_acks_it(self):
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        self.assertEqual(self.app.request_count(), 1)
        versions = self.versions(px)
        for kind in ("Listener", "Cluster", "RouteConfiguration", "Secret"):
            self.assertIn(kind, versions)
            self.assertNotEqual(versions[kind]["version_info"], "")
            self.assertNotIn("error_detail", versions[kind])
        self.assertIn("ADS 127.0.0.1:", px.config_dump()["source"])
        self.assertIsNotNone(cp.wait_for_log("ACKed Listener"), self.cp_log(cp))

    def test_a_change_reaches_the_proxy(self):
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        before = self.versions(px)["Listener"]["version_info"]
        self.routes.insert(0, route({"prefix": "/teapot"}, direct_response=direct_response(418)))
        self.write_resources()
        self.assertTrue(wait_until(lambda: self.serving("/teapot", 418), timeout=5),
                        self.cp_log(cp) + px.stderr_text())
        self.assertNotEqual(self.versions(px)["Listener"]["version_info"], before)
        self.assertTrue(self.serving("/", 200))

    def test_a_push_the_proxy_cannot_apply_is_nacked_and_the_last_good_config_stays(self):
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        self.write_resources(extra_listeners=[make_listener(
            "taken", taken.getsockname()[1], [virtual_host("all", ["*"], self.routes)])])
        self.assertTrue(wait_until(lambda: "error_detail" in self.versions(px)["Listener"],
                                   timeout=5), px.stderr_text())
        self.assertIn("taken", self.versions(px)["Listener"]["error_detail"])
        self.assertTrue(self.serving("/", 200))
        self.assertIsNotNone(cp.wait_for_log("NACKed Listener"), self.cp_log(cp))

    def test_the_proxy_keeps_serving_without_the_control_plane_and_resyncs(self):
        cp_port = free_port()
        cp = self.start_cp(cp_port)
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        cp.kill()
        self.assertTrue(wait_until(lambda: "ads: stream to" in px.stderr_text()),
                        px.stderr_text())
        for _ in range(5):
            self.assertTrue(self.serving("/", 200))
        self.routes.insert(0, route({"prefix": "/teapot"}, direct_response=direct_response(418)))
        self.write_resources()
        self.start_cp(cp_port)
        self.assertTrue(wait_until(lambda: self.serving("/teapot", 418), timeout=10),
                        px.stderr_text())

    def test_connections_of_a_removed_listener_drain(self):
        extra_port = free_port()
        extra = make_listener("extra", extra_port, [virtual_host("all", ["*"], self.routes)])
        self.write_resources(extra_listeners=[extra])
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(lambda: self.serving() and upstream_name(extra_port, "/"),
                                   timeout=10), px.stderr_text())
        kept = socket.create_connection(("127.0.0.1", extra_port), timeout=5)
        self.addCleanup(kept.close)
        kept.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        self.assertIn(b"200", kept.recv(65536).split(b"\r\n", 1)[0])
        self.write_resources()  # Without "extra".
        self.assertTrue(wait_until(lambda: "draining 1 connections of listeners or filter "
                                   "chains no longer configured" in px.stderr_text(),
                                   timeout=5), px.stderr_text())
        # Its next request is answered, and the connection closes after it.
        kept.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = b""
        while chunk := kept.recv(65536):
            answer += chunk
        self.assertIn(b"200", answer.split(b"\r\n", 1)[0])
        self.assertIn(b"connection: close", answer.lower())
        self.assertTrue(self.serving())

    def test_fails_over_to_the_next_control_plane(self):
        first, second = self.start_cp(), self.start_cp()
        px = self.start_proxy(first, second)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        first.kill()
        self.assertTrue(wait_until(
            lambda: f"ads: connected to 127.0.0.1:{second.port}" in px.stderr_text(),
            timeout=10), px.stderr_text())
        self.routes.insert(0, route({"prefix": "/teapot"}, direct_response=direct_response(418)))
        self.write_resources()
        self.assertTrue(wait_until(lambda: self.serving("/teapot", 418), timeout=5),
                        self.cp_log(second) + px.stderr_text())


class AdsBootstrapErrorTest(PhoenixTestCase):

    def validate(self, text):
        directory = tempfile.mkdtemp(prefix="phoenix-ads-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ)
        p = subprocess.run([os.environ.get("PHOENIX_BIN") or os.path.join(REPO_ROOT, "build",
                                                                           "phoenix"),
                            "--mode", "validate", "-c", path],
                           capture_output=True, text=True, timeout=20, env=env,
                           stdin=subprocess.DEVNULL)
        return p.returncode, path, p.stdout + p.stderr

    def test_an_ads_config_without_addresses_names_the_field(self):
        rc, path, out = self.validate("dynamic_resources:\n"
                                      "  lds_config: {ads: {}}\n"
                                      "  ads_config:\n"
                                      "    api_type: GRPC\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:3:3: dynamic_resources.ads_config.grpc_services: list the "
                      "control plane's addresses", out)


class EdsTest(AdsTestBase):
    """ClusterLoadAssignment resources (EDS) set an EDS cluster's hosts in place, and a cluster
    new to the workers warms before any route sends to it."""

    def test_endpoints_arrive_and_change_in_place(self):
        other = self.start_upstream("other")
        self.write_resources(clusters=[eds_cluster("app")],
                             assignments=[assignment("app", [self.app.port])])
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(lambda: upstream_name(self.port, "/") == "app", timeout=10),
                        self.cp_log(cp) + px.stderr_text())
        versions = self.versions(px)
        cluster_version = versions["Cluster"]["version_info"]
        self.assertNotIn("error_detail", versions["ClusterLoadAssignment"])
        self.write_resources(clusters=[eds_cluster("app")],
                             assignments=[assignment("app", [other.port])])
        self.assertTrue(wait_until(lambda: upstream_name(self.port, "/") == "other", timeout=5),
                        self.cp_log(cp) + px.stderr_text())
        # Only the endpoints moved: the cluster itself was not replaced.
        self.assertEqual(self.versions(px)["Cluster"]["version_info"], cluster_version)
        self.assertIn("1 hosts from ClusterLoadAssignment 'app'", px.stderr_text())
        self.assertIsNotNone(cp.wait_for_log("ACKed ClusterLoadAssignment"), self.cp_log(cp))

    def test_an_assignment_with_a_host_name_is_nacked_and_the_hosts_stay(self):
        self.write_resources(clusters=[eds_cluster("app")],
                             assignments=[assignment("app", [self.app.port])])
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(lambda: upstream_name(self.port, "/") == "app", timeout=10),
                        px.stderr_text())
        bad = assignment("app", [self.app.port])
        bad["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
            "address"] = "app.internal"
        self.write_resources(clusters=[eds_cluster("app")], assignments=[bad])
        # phoenix-cp validates with the proxy's own code: refused before any push.
        self.assertIsNotNone(cp.wait_for_log("EDS endpoints are IP addresses"), self.cp_log(cp))
        self.assertEqual(upstream_name(self.port, "/"), "app")

    def test_a_new_cluster_warms_before_any_route_uses_it(self):
        self.write_resources()
        cp = self.start_cp()
        px = self.start_proxy(cp)
        self.assertTrue(wait_until(self.serving, timeout=10), px.stderr_text())
        fresh = self.start_upstream("fresh")
        dead = free_port()  # Nothing listens: its first health check fails.
        checks = [{"timeout": "1s", "interval": "30s", "unhealthy_threshold": 3,
                   "http_health_check": {"path": "/healthz"}}]
        statuses = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    statuses.append(http_get(self.port, "/fresh", timeout=2.0).status)
                except OSError as e:
                    statuses.append(str(e))

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            self.routes.insert(0, route({"prefix": "/fresh"}, cluster="fresh"))
            self.write_resources(
                clusters=[make_cluster("app", [self.app.port]),
                          eds_cluster("fresh", health_checks=checks)],
                assignments=[assignment("fresh", [dead, fresh.port])])
            self.assertTrue(wait_until(lambda: fresh.request_count() >= 20, timeout=10),
                            self.cp_log(cp) + px.stderr_text())
        finally:
            stop.set()
            poller.join()
        # Before the route: the catch-all (app, 200); after: fresh (200). The dead host was
        # found down by its first check before any route sent to it, so nothing failed.
        self.assertEqual([s for s in statuses if s != 200], [], px.stderr_text())
        self.assertIn("warming clusters 'fresh'", px.stderr_text())
