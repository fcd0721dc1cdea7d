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

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import direct_response, make_cluster, make_listener, route, virtual_host
from harness.control_plane import ControlPlane
from harness.process import REPO_ROOT, free_port, wait_until


def ads_bootstrap(admin_port, cp_ports, node_id="sidecar-1"):
    return {
        "node": {"id": node_id, "cluster": "web"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "dynamic_resources": {
            "lds_config": {"ads": {}},
            "cds_config": {"ads": {}},
            "ads_config": {
                "api_type": "GRPC",
                "grpc_services": [{"google_grpc": {"target_uri": f"127.0.0.1:{p}"}}
                                  for p in cp_ports],
                "reconnect_base_interval": "0.05s",
                "reconnect_max_interval": "0.2s",
            },
        },
    }


class AdsTest(PhoenixTestCase):

    def setUp(self):
        self.app = self.start_upstream("app")
        self.dir = tempfile.mkdtemp(prefix="phoenix-resources-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.audit_dir = tempfile.mkdtemp(prefix="phoenix-audit-")
        self.addCleanup(shutil.rmtree, self.audit_dir, True)
        self.port = free_port()
        self.routes = [route({"prefix": "/"}, cluster="app", name="default")]
        self.write_resources()

    def write_resources(self, extra_listeners=()):
        listener = make_listener("ingress", self.port,
                                 [virtual_host("all", ["*"], self.routes)])
        resources = {"listeners": [listener, *extra_listeners],
                     "clusters": [make_cluster("app", [self.app.port])]}
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
