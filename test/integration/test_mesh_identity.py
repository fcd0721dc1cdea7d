"""Mesh identity with real processes: phoenix-cp's CA (generated on first start) issues each
sidecar a workload certificate for its SPIFFE ID; sidecars make their keys in memory, get the
roots as the pushed Secret trust_bundle, and talk mTLS to each other with nothing copied by
hand. An access rule on the caller's SPIFFE ID lets one caller through and denies another; a
node cannot obtain another node's identity (refused and audited); certificates renew under
load with no failed request; the CA's keys are in no dump, log or audit record. Every wait is on
an observable state, never a sleep."""

import glob
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import make_cluster
from harness.control_plane import ControlPlane, ads_bootstrap, write_resource_file
from harness.etcd import Etcd, etcd_available
from harness.process import free_port, phoenix_cp_bin, phoenixctl_bin, wait_until
from harness.tls import DOWNSTREAM, TLS, UPSTREAM
from test_control_plane_load import Wrk

DOMAIN = "phoenix.local"
FRONTEND = f"spiffe://{DOMAIN}/ns/shop/sa/frontend"
BACKEND = f"spiffe://{DOMAIN}/ns/shop/sa/backend"
OTHER = f"spiffe://{DOMAIN}/ns/shop/sa/other"
POLICY = "phoenix.filters.http.access_policy"
TOKENS = {"node-a": "token-a", "node-b": "token-b", "node-c": "token-c"}


def mesh_server_listener(port, cluster):
    """node-b's inbound listener: mTLS with its workload certificate, callers verified against
    the trust bundle; only the frontend identity may call."""
    policy = {"name": POLICY, "typed_config": {
        "@type": "type.googleapis.com/phoenix.config.v1.AccessPolicy",
        "rules": [{"name": "frontend_only", "action": "ALLOW",
                   "match": {"principal": {"exact": FRONTEND}}}],
        "default_action": "DENY"}}
    manager = {"stat_prefix": "mesh_in", "http_filters": [policy, {
        "name": "phoenix.filters.http.router"}], "route_config": {"virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]}}
    tls = {"name": TLS, "typed_config": {
        "@type": DOWNSTREAM, "require_client_certificate": True, "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "workload_certificate"}],
            "validation_context_sds_secret_config": {"name": "trust_bundle"}}}}
    return {"name": "mesh_in",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"name": "mtls", "http_connection_manager": manager,
                               "transport_socket": tls}]}


def mesh_client_resources(port, backend_port):
    """A caller's outbound listener (plaintext from the app) to the backend over mTLS, which
    must show the backend's identity."""
    # The bundle comes as a Secret; the backend's identity is checked on top of it (Envoy's
    # combined_validation_context), in place of the name check.
    tls = {"name": TLS, "typed_config": {
        "@type": UPSTREAM, "sni": "backend.mesh", "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "workload_certificate"}],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"exact": BACKEND}}]},
                "validation_context_sds_secret_config": {"name": "trust_bundle"}}}}}
    cluster = make_cluster("backend", [backend_port], transport_socket=tls)
    manager = {"stat_prefix": "out", "route_config": {"virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}]}}
    listener = {"name": "out",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "http_connection_manager": manager}
    return {"listeners": [listener], "clusters": [cluster]}


def identity_bootstrap(admin_port, cp, node_id, token, spiffe_id=None, validity=None):
    bootstrap = ads_bootstrap(admin_port, [cp.target], node_id, token=token)
    identity = {}
    if spiffe_id:
        identity["spiffe_id"] = spiffe_id
    if validity:
        identity["validity"] = validity
    bootstrap["workload_identity"] = identity
    return bootstrap


class MeshIdentityTest(PhoenixTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="phoenix-mesh-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.resources = os.path.join(self.dir, "resources")
        self.ca_dir = os.path.join(self.dir, "ca")
        os.makedirs(self.resources)
        with open(os.path.join(self.dir, "tokens"), "w") as f:
            f.write("admin-token ops admin\n")
            for node, token in TOKENS.items():
                f.write(f"{token} {node} node:{node}\n")
        with open(os.path.join(self.dir, "admin-token"), "w") as f:
            f.write("admin-token\n")
        with open(os.path.join(self.dir, "identities"), "w") as f:
            f.write(f"node-a {FRONTEND}\nnode-b {BACKEND}\nnode-c {OTHER}\n")

    def start_cp(self, max_validity="24h", listen="127.0.0.1:0"):
        cp = ControlPlane(self.resources, audit_log=os.path.join(self.dir, "audit.jsonl"),
                          listen=listen,
                          extra_args=["--ca-dir", self.ca_dir, "--ca-generate",
                                      "--tokens", os.path.join(self.dir, "tokens"),
                                      "--identities", os.path.join(self.dir, "identities"),
                                      "--max-validity", max_validity])
        self.addCleanup(cp.close)
        return cp

    def start_mesh(self, validity=None, max_validity="24h", listen="127.0.0.1:0"):
        """node-b serves the app over mTLS; node-a (frontend) and node-c (other) call it."""
        self.app = self.start_upstream("app")
        self.b_port, self.a_port, self.c_port = free_port(), free_port(), free_port()
        write_resource_file(os.path.join(self.resources, "nodes/node-b/mesh.yaml"),
                            {"listeners": [mesh_server_listener(self.b_port, "app")],
                             "clusters": [make_cluster("app", [self.app.port])]})
        for node, port in (("node-a", self.a_port), ("node-c", self.c_port)):
            write_resource_file(os.path.join(self.resources, f"nodes/{node}/mesh.yaml"),
                                mesh_client_resources(port, self.b_port))
        self.cp = self.start_cp(max_validity, listen)
        self.proxies = {}
        for node in ("node-b", "node-a", "node-c"):
            self.proxies[node] = self.start_phoenix(identity_bootstrap(
                free_port(), self.cp, node, TOKENS[node], validity=validity))

    def ctl(self, *args):
        done = subprocess.run([phoenixctl_bin(), "--server", self.cp.target, "--token-file",
                               os.path.join(self.dir, "admin-token"), *args],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr + self.cp.logs())
        return done.stdout

    def identity(self, node):
        status, body = self.proxies[node].admin_get("/certs")
        self.assertEqual(status, 200, body)
        return json.loads(body).get("workload_identity", {})

    def status_via(self, port):
        try:
            return http_get(port, "/", timeout=2.0).status
        except OSError:
            return None

    def test_each_sidecar_gets_its_identity_and_mtls_with_identity_rules_works(self):
        self.start_mesh()
        for node, expected in (("node-a", FRONTEND), ("node-b", BACKEND), ("node-c", OTHER)):
            self.assertTrue(wait_until(lambda: self.identity(node).get("serial"), timeout=10),
                            self.proxies[node].stderr_text() + self.cp.logs())
            self.assertEqual(self.identity(node)["spiffe_id"], expected)
            self.assertGreater(self.identity(node)["seconds_left"], 23 * 3600)
        # The frontend's call reaches the app through node-b; another identity's is denied.
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=10),
                        self.proxies["node-a"].stderr_text() + self.proxies["node-b"].stderr_text()
                        + self.cp.logs())
        self.assertTrue(wait_until(lambda: self.status_via(self.c_port) == 403, timeout=10),
                        self.proxies["node-c"].stderr_text() + self.proxies["node-b"].stderr_text())
        self.assertEqual(self.app.request_count(), 1)
        self.assertGreaterEqual(self.proxies["node-b"].stat("listener.mesh_in.tls.handshake"), 2)
        # The security team can check the identity rule without a request (phoenix-cp works it
        # out on node-b's resources, its mTLS listener included).
        allowed = self.ctl("explain", "--node", "node-b", "--principal", FRONTEND, "GET", "/")
        self.assertIn("outcome: route", allowed)
        denied = self.ctl("explain", "--node", "node-b", "--principal", OTHER, "GET", "/")
        self.assertIn("outcome: denied", denied)
        # Every issuance is audited: identity, serial, not-after, node.
        issued = [line for line in self.cp.audit_lines() if "issued" in line]
        self.assertEqual(sorted(line["node"] for line in issued), ["node-a", "node-b", "node-c"])
        for line in issued:
            self.assertEqual(line["issued"]["identity"],
                             {"node-a": FRONTEND, "node-b": BACKEND, "node-c": OTHER}[line["node"]])
            self.assertTrue(line["issued"]["serial"] and line["issued"]["not_after"])
        self.assertIn(f"node-a  issued {FRONTEND} to node node-a, serial ", self.ctl("audit"))
        self.assertCaKeysNowhere()

    def test_a_node_cannot_obtain_another_nodes_identity(self):
        self.cp = self.start_cp()
        # node-a's own token, asking for node-b's identity.
        px = self.start_phoenix(identity_bootstrap(free_port(), self.cp, "node-a", "token-a",
                                                   spiffe_id=BACKEND))
        self.assertTrue(wait_until(lambda: "may not hold" in px.stderr_text(), timeout=10),
                        px.stderr_text() + self.cp.logs())
        # node-a's token, claiming to be node-b.
        px2 = self.start_phoenix(identity_bootstrap(free_port(), self.cp, "node-b", "token-a"))
        self.assertTrue(wait_until(lambda: "may only ask for node" in px2.stderr_text(),
                                   timeout=10), px2.stderr_text() + self.cp.logs())
        refused = [line for line in self.cp.audit_lines() if "refused" in line and "node" in line]
        self.assertTrue(any(line["identity"] == BACKEND and line["node"] == "node-a"
                            for line in refused), refused)
        self.assertTrue(any(line["node"] == "node-b" and line["who"] == "node-a"
                            for line in refused), refused)
        self.assertFalse([line for line in self.cp.audit_lines() if "issued" in line])
        # phoenixctl audit shows them.
        audit = self.ctl("audit")
        self.assertIn(f"node-a  refused a certificate for {BACKEND} to node node-a: node node-a "
                      f"may not hold {BACKEND}", audit)
        status, body = px.admin_get("/certs")
        self.assertIn("may not hold", json.loads(body)["workload_identity"]["last_error"])
        self.assertEqual(px.stat("workload_identity.issued"), 0)

    def test_certificates_renew_under_load_without_a_failed_request(self):
        self.start_mesh(validity="60s", max_validity="60s")
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=15),
                        self.proxies["node-a"].stderr_text() + self.cp.logs())
        first = {node: self.identity(node)["serial"] for node in ("node-a", "node-b")}
        self.assertLessEqual(self.identity("node-a")["seconds_left"], 60)
        run = Wrk(f"http://127.0.0.1:{self.a_port}/", seconds=45)
        # Renewal comes at 40-60% of the minute: both sides get a new serial under load.
        self.assertTrue(wait_until(
            lambda: all(self.identity(n)["serial"] != first[n] for n in first), timeout=45),
            self.proxies["node-a"].stderr_text() + self.proxies["node-b"].stderr_text())
        result = run.result()
        self.assertGreater(result["requests"], 100, result["output"])
        self.assertEqual(result["socket_errors"], 0, result["output"])
        self.assertEqual(result["non_2xx"], 0, result["output"])
        # The renewal presented the certificate in hand, not the token.
        renewed = [line for line in self.cp.audit_lines()
                   if "issued" in line and "(certificate " in line["who"]]
        self.assertGreaterEqual(len(renewed), 2, self.cp.audit_lines())
        new = {node: self.identity(node)["serial"] for node in first}
        print(f"\n  renewal under load: {result['requests']} requests, 0 failed; serials "
              f"{first} -> {new}")

    def test_root_rotation_under_load_without_a_failed_request(self):
        # 30 s certificates: the old root's last one expires soon after issuing moves on.
        self.start_mesh(validity="30s", max_validity="30s")
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=15),
                        self.proxies["node-a"].stderr_text() + self.cp.logs())
        before = json.loads(self.ctl("ca", "status", "-o", "json"))
        self.assertEqual(len(before["bundle_root_serials"]), 1, before)
        old_root = before["bundle_root_serials"][0]
        run = Wrk(f"http://127.0.0.1:{self.a_port}/", seconds=50)
        self.assertTrue(wait_until(lambda: self.app.request_count() > 100, timeout=10),
                        "wrk did not get going")
        # Drives and shows the three steps; returns when the old root has left the bundle.
        progress = subprocess.run(
            [phoenixctl_bin(), "--server", self.cp.target, "--token-file",
             os.path.join(self.dir, "admin-token"), "ca", "rotate", "--wait"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(progress.returncode, 0, progress.stdout + progress.stderr)
        self.assertIn("step 1 of 3", progress.stdout)
        self.assertIn("step 2 of 3", progress.stdout)
        self.assertIn("rotation done", progress.stdout)
        after = json.loads(self.ctl("ca", "status", "-o", "json"))
        self.assertEqual(len(after["bundle_root_serials"]), 1, after)
        self.assertNotEqual(after["bundle_root_serials"][0], old_root)
        # Both sides now hold certificates under the new root, and new handshakes work.
        self.assertEqual(self.status_via(self.a_port), 200)
        self.assertEqual(self.status_via(self.c_port), 403)
        result = run.result()
        self.assertGreater(result["requests"], 100, result["output"])
        self.assertEqual(result["socket_errors"], 0, result["output"])
        self.assertEqual(result["non_2xx"], 0, result["output"])
        print(f"\n  root rotation under load: {result['requests']} requests, 0 failed\n"
              + "\n".join("    " + line for line in progress.stdout.splitlines()))

    def test_without_phoenix_cp_an_expired_certificate_is_never_served(self):
        cp_port = free_port()
        self.start_mesh(validity="10s", max_validity="10s", listen=f"127.0.0.1:{cp_port}")
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=15),
                        self.proxies["node-a"].stderr_text() + self.cp.logs())
        self.cp.kill()
        # Renewal fails and is retried with back-off; the certificate in hand is used until it
        # expires, then handshakes that would show it fail (the gauge says so first).
        b = self.proxies["node-b"]
        self.assertTrue(wait_until(lambda: self.identity("node-b")["seconds_left"] < 0,
                                   timeout=15), b.stderr_text())
        self.assertIn("certificate request failed", b.stderr_text())
        # (Connections opened before go on: a new handshake is what shows it.)
        self.assertTrue(wait_until(
            lambda: self.try_handshake(self.b_port)
            or b.stat("listener.mesh_in.tls.fail_expired_certificate") >= 1, timeout=5),
            b.stderr_text())
        self.assertIn("refusing handshakes: our certificate", b.stderr_text())
        self.assertLessEqual(b.stat("workload_identity.expires_in_seconds"), 0)
        self.assertEqual(b.stat("workload_identity.valid"), 0)
        # phoenix-cp back: the next retry (the token again: the certificate has expired)
        # brings new certificates and the calls through.
        self.cp = self.start_cp("10s", f"127.0.0.1:{cp_port}")
        for node in ("node-a", "node-b"):
            self.assertTrue(wait_until(lambda: self.identity(node)["seconds_left"] > 0,
                                       timeout=60), self.proxies[node].stderr_text())
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=10),
                        b.stderr_text() + self.proxies["node-a"].stderr_text() + self.cp.logs())

    @unittest.skipUnless(etcd_available(), "etcd is not installed (tools/setup.sh installs it)")
    def test_ha_replicas_issue_under_one_root_and_rotate_it_together_under_load(self):
        etcd = Etcd()
        self.addCleanup(etcd.close)
        self.app = self.start_upstream("app")
        self.b_port, self.a_port = free_port(), free_port()
        write_resource_file(os.path.join(self.resources, "nodes/node-b/mesh.yaml"),
                            {"listeners": [mesh_server_listener(self.b_port, "app")],
                             "clusters": [make_cluster("app", [self.app.port])]})
        write_resource_file(os.path.join(self.resources, "nodes/node-a/mesh.yaml"),
                            mesh_client_resources(self.a_port, self.b_port))
        # 20 s certificates: the old root's last one expires soon after issuing moves on.
        args = ["--tokens", os.path.join(self.dir, "tokens"),
                "--identities", os.path.join(self.dir, "identities"), "--max-validity", "20s"]
        first_ca, second_ca = self.ca_dir, os.path.join(self.dir, "ca-2")
        first = ControlPlane(self.resources, etcd=etcd.endpoint,
                             extra_args=args + ["--ca-dir", first_ca, "--ca-generate",
                                                "--ca-replica", "cp-1"])
        self.addCleanup(first.close)
        # The second replica has the same root (copied, as an operator would), and makes its
        # own intermediate.
        os.makedirs(second_ca, mode=0o700)
        for name in ("root.crt", "root.key"):
            shutil.copy2(os.path.join(first_ca, name), os.path.join(second_ca, name))
        second = ControlPlane(None, etcd=etcd.endpoint,
                              extra_args=args + ["--ca-dir", second_ca, "--ca-replica", "cp-2"])
        self.addCleanup(second.close)
        intermediates = [glob.glob(os.path.join(d, "intermediate-*.crt"))
                         for d in (first_ca, second_ca)]
        self.assertTrue(intermediates[0] and intermediates[1], intermediates)
        with open(intermediates[0][0]) as f1, open(intermediates[1][0]) as f2:
            self.assertNotEqual(f1.read(), f2.read())
        self.cp = first
        self.proxies = {
            "node-b": self.start_phoenix(identity_bootstrap(free_port(), first, "node-b",
                                                            "token-b", validity="20s")),
            "node-a": self.start_phoenix(identity_bootstrap(free_port(), second, "node-a",
                                                            "token-a", validity="20s")),
        }
        # Certificates from two intermediates, one root: mTLS across them works.
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=15),
                        self.proxies["node-a"].stderr_text() + first.logs() + second.logs())
        # A replica with another root refuses to start rather than split the mesh.
        third = ControlPlane(None, etcd=etcd.endpoint, wait_ready=False,
                             extra_args=args + ["--ca-dir", os.path.join(self.dir, "ca-3"),
                                                "--ca-generate", "--ca-replica", "cp-3"])
        self.addCleanup(third.close)
        self.assertNotEqual(third.proc.wait(timeout=20), 0)
        self.assertIn("is not in the trust bundle the other replicas serve", third.stderr.text())

        # Root rotation driven from the second replica, under load through both sidecars.
        old_root = json.loads(self.ctl("ca", "status", "-o", "json"))["bundle_root_serials"]
        self.assertEqual(len(old_root), 1, old_root)
        run = Wrk(f"http://127.0.0.1:{self.a_port}/", seconds=35)
        self.assertTrue(wait_until(lambda: self.app.request_count() > 100, timeout=10),
                        "wrk did not get going")
        progress = subprocess.run(
            [phoenixctl_bin(), "--server", second.target, "--token-file",
             os.path.join(self.dir, "admin-token"), "ca", "rotate", "--wait"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(progress.returncode, 0,
                         progress.stdout + progress.stderr + first.logs() + second.logs())
        self.assertIn("step 2 of 3", progress.stdout)
        self.assertIn("cp-2 (driver)", progress.stdout)
        self.assertIn("rotation done", progress.stdout)
        # Both replicas serve the new root alone, each from its own intermediate under it; the
        # new root's key stays with the replica that made it.
        for cp in (first, second):
            self.cp = cp
            self.assertTrue(wait_until(
                lambda: json.loads(self.ctl("ca", "status", "-o", "json"))
                ["bundle_root_serials"] not in (old_root, []), timeout=10), cp.logs())
        after = json.loads(self.ctl("ca", "status", "-o", "json"))
        self.assertEqual(len(after["bundle_root_serials"]), 1, after)
        self.assertFalse(os.path.exists(os.path.join(first_ca, "root.key")))
        self.assertTrue(os.path.exists(os.path.join(second_ca, "root.key")))
        result = run.result()
        self.assertGreater(result["requests"], 100, result["output"])
        self.assertEqual(result["socket_errors"], 0, result["output"])
        self.assertEqual(result["non_2xx"], 0, result["output"])
        # The sidecars of both replicas hold certificates under the new root alone: new
        # handshakes work.
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=10))
        print(f"\n  HA root rotation under load: {result['requests']} requests, 0 failed\n"
              + "\n".join("    " + line for line in progress.stdout.splitlines()))

    def test_a_rotation_waits_for_a_holder_that_is_not_connected(self):
        self.start_mesh()
        self.assertTrue(wait_until(lambda: self.status_via(self.c_port) == 403, timeout=15),
                        self.proxies["node-c"].stderr_text() + self.cp.logs())
        self.proxies["node-c"].stop()
        status = json.loads(self.ctl("ca", "rotate", "-o", "json"))
        self.assertEqual(status["phase"], "adding_root")
        # node-c holds a valid certificate but has not seen the new bundle: the rotation waits.
        self.assertTrue(wait_until(lambda: json.loads(self.ctl("ca", "status", "-o", "json"))
                                   ["proxies_waiting"] == ["node-c (not connected)"], timeout=10),
                        self.ctl("ca", "status"))
        text = self.ctl("ca", "status")
        self.assertIn("waiting for: node-c (not connected)", text)
        self.assertEqual(json.loads(self.ctl("ca", "status", "-o", "json"))["phase"],
                         "adding_root")
        # Back, it takes the bundle; then issuing moves to the new root.
        self.proxies["node-c"] = self.start_phoenix(identity_bootstrap(
            free_port(), self.cp, "node-c", TOKENS["node-c"]))
        self.assertTrue(wait_until(lambda: json.loads(self.ctl("ca", "status", "-o", "json"))
                                   ["phase"] == "issuing_from_new", timeout=15),
                        self.ctl("ca", "status") + self.cp.logs())
        # The bundle file is the CA's: an admin change to it is refused.
        bundle = os.path.join(self.dir, "mesh-trust-bundle.yaml")
        write_resource_file(bundle, {"secrets": []})
        done = subprocess.run([phoenixctl_bin(), "--server", self.cp.target, "--token-file",
                               os.path.join(self.dir, "admin-token"), "apply", "-f", bundle],
                              capture_output=True, text=True, timeout=30)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("written by phoenix-cp", done.stdout + done.stderr)
        # As it is in force (an exported directory applied again), it is no change.
        self.ctl("apply", "-f", os.path.join(self.resources, "mesh-trust-bundle.yaml"))
        # A rollback keeps today's bundle: both roots stay trusted.
        self.ctl("rollback", "1")
        served = self.ctl("get", "secrets", "trust_bundle", "-o", "json")
        self.assertEqual(served.count("BEGIN CERTIFICATE"), 2, served)

    def test_a_rotation_still_adding_its_root_can_be_abandoned(self):
        self.start_mesh()
        self.assertTrue(wait_until(lambda: self.status_via(self.a_port) == 200, timeout=15),
                        self.proxies["node-a"].stderr_text() + self.cp.logs())
        old_root = json.loads(self.ctl("ca", "status", "-o", "json"))["bundle_root_serials"]
        # node-c away: the rotation waits in its first step, where it can still be abandoned.
        self.proxies["node-c"].stop()
        self.assertEqual(json.loads(self.ctl("ca", "rotate", "-o", "json"))["phase"],
                         "adding_root")
        self.assertEqual(
            self.ctl("get", "secrets", "trust_bundle", "-o", "json").count("BEGIN CERTIFICATE"), 2)
        self.assertIn("rotation abandoned", self.ctl("ca", "rotate", "--abort"))
        status = json.loads(self.ctl("ca", "status", "-o", "json"))
        self.assertEqual(status["phase"], "none", status)
        self.assertEqual(status["bundle_root_serials"], old_root)
        self.assertEqual(
            self.ctl("get", "secrets", "trust_bundle", "-o", "json").count("BEGIN CERTIFICATE"), 1)
        self.assertTrue(any("abandoned" in line.get("who", "") for line in self.cp.audit_lines()),
                        self.cp.audit_lines())
        self.assertEqual(self.status_via(self.a_port), 200)
        # Nothing to abandon now, and a rotation past its first step cannot be.
        done = subprocess.run([phoenixctl_bin(), "--server", self.cp.target, "--token-file",
                               os.path.join(self.dir, "admin-token"), "ca", "rotate", "--abort"],
                              capture_output=True, text=True, timeout=30)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("no root rotation", done.stderr)

    def test_a_ca_without_authentication_listens_on_loopback_only(self):
        done = subprocess.run([phoenix_cp_bin(), "--resources", self.resources, "--listen",
                               "0.0.0.0:0", "--ca-dir", self.ca_dir, "--ca-generate"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("would sign any identity for anyone", done.stderr)

    def try_handshake(self, port):
        """A TLS handshake attempt without a client certificate; False whatever comes of it."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                with context.wrap_socket(raw) as conn:
                    conn.do_handshake()
        except (OSError, ssl.SSLError):
            pass
        return False

    def assertCaKeysNowhere(self):
        keys = []
        for path in glob.glob(os.path.join(self.ca_dir, "**", "*.key"), recursive=True):
            self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)
            with open(path) as f:
                body = "".join(l for l in f.read().splitlines() if "-----" not in l)
            keys.append(body[:64])
        self.assertTrue(keys)
        places = {"phoenix-cp log": self.cp.stderr.text()}
        with open(self.cp.audit_log) as f:
            places["audit"] = f.read()
        for node, px in self.proxies.items():
            places[f"{node} log"] = px.stderr_text()
            places[f"{node} config_dump"] = px.admin_get("/config_dump")[1]
        for kind in ("secrets", "listeners"):
            places[f"phoenixctl get {kind}"] = self.ctl("get", kind)
        for name, text in places.items():
            for key in keys:
                self.assertNotIn(key, text, name)
            # No workload key either: inline keys are redacted.
            self.assertNotIn("BEGIN PRIVATE KEY", text, name)
