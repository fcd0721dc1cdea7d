"""phoenixctl against the real phoenix-cp (started with --tokens) and, where it matters, a real
phoenix proxy taking its config over ADS with its node token: apply reaches the proxy and its
ACK shows in status; a bad apply is refused with file:line:column and changes nothing; audit
names the principal; tokens keep admin calls and other nodes' secrets out. Every wait is on an
observable state (a response, a status, a log line), never a sleep."""

import json
import os
import shutil
import subprocess
import tempfile

from harness.base import PhoenixTestCase
from harness.control_plane import (
    AdsClient, ControlPlane, ads_bootstrap, http_body, rds_listener, write_resource_file)
from harness.grpc import GRPC_DIR, require_node
from harness.process import free_port, phoenixctl_bin, wait_until
from harness.tls import cert_path

ADMIN_TOKEN = "admin-token-1"
NODE_TOKEN = "node-token-1"
OTHER_NODE_TOKEN = "node-token-2"
TOKENS = f"""# test tokens
{ADMIN_TOKEN} alice admin
{NODE_TOKEN} sidecar-1 node:sidecar-1
{OTHER_NODE_TOKEN} sidecar-2 node:sidecar-2
"""


def routes(body):
    return {"route_configurations": [{"name": "main", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": body}}}]}]}]}


def tls_secret(name):
    with open(cert_path("server-ecdsa.crt")) as crt, open(cert_path("server-ecdsa.key")) as key:
        return {"name": name, "tls_certificate": {
            "certificate_chain": {"inline_string": crt.read()},
            "private_key": {"inline_string": key.read()}}}


def has_line(diff, op, text):
    """Whether ``diff`` has a line that starts with ``op`` and ends with ``text``."""
    return any(line.startswith(op) and line.strip().endswith(text) for line in diff.splitlines())


class PhoenixctlTest(PhoenixTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="phoenixctl-it-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.work = tempfile.mkdtemp(prefix="phoenixctl-work-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.port = free_port()
        self.resources = os.path.join(self.dir, "resources")
        os.makedirs(self.resources)
        self.write(os.path.join(self.resources, "listeners.yaml"),
                   {"listeners": [rds_listener(self.port)]})
        self.write(os.path.join(self.resources, "routes.yaml"), routes("v1"))
        self.tokens = self.write(os.path.join(self.work, "tokens"), raw=TOKENS)
        self.admin_token = self.write(os.path.join(self.work, "admin.token"), raw=ADMIN_TOKEN)
        self.node_token = self.write(os.path.join(self.work, "node.token"), raw=NODE_TOKEN)
        self.cp = ControlPlane(self.resources, audit_log=os.path.join(self.work, "audit.jsonl"),
                               extra_args=("--tokens", self.tokens))
        self.addCleanup(self.cp.close)

    def write(self, path, document=None, raw=None):
        return write_resource_file(path, document, raw)

    def ctl(self, *args, token=None, server=None):
        """Runs phoenixctl; returns (exit code, stdout, stderr)."""
        command = [phoenixctl_bin(), "--server", server or self.cp.target]
        if token is not False:
            command += ["--token-file", token or self.admin_token]
        done = subprocess.run(command + list(args), capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout, done.stderr

    def ctl_json(self, *args):
        code, out, err = self.ctl(*args, "-o", "json")
        self.assertEqual(code, 0, f"phoenixctl {args}: {err}\n{self.cp.logs()}")
        return json.loads(out)

    def start_proxy(self):
        return self.start_phoenix(ads_bootstrap(free_port(), [self.cp.target], token=NODE_TOKEN))

    def body(self):
        return http_body(self.port)

    def acked(self, node, type_name):
        for proxy in self.ctl_json("status")["proxies"]:
            if proxy["node_id"] == node:
                for t in proxy["types"]:
                    if t["type"] == type_name:
                        return t["acked_version"]
        return None

    def test_apply_reaches_the_proxy_and_status_shows_its_ack(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10),
                        f"the proxy never served v1\n{self.cp.logs()}")
        self.assertTrue(wait_until(lambda: self.acked("sidecar-1", "RouteConfiguration") == "1"),
                        "status never showed the ACK of version 1")
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))

        code, out, err = self.ctl("diff", "-f", new)
        self.assertEqual(code, 0, err)
        self.assertIn("# changed RouteConfiguration main", out)
        self.assertTrue(has_line(out, "-", "inline_string: v1"), out)
        self.assertTrue(has_line(out, "+", "inline_string: v2"), out)
        self.assertEqual(self.body(), "v1", "diff changed something")

        code, out, err = self.ctl("apply", "-f", new)
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 2", out)
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=2),
                        f"the proxy does not serve the applied route\n{self.cp.logs()}")
        self.assertTrue(wait_until(lambda: self.acked("sidecar-1", "RouteConfiguration") == "2"),
                        "status never showed the ACK of version 2")
        # The directory stays the source of truth: the file is there.
        with open(os.path.join(self.resources, "routes.yaml")) as f:
            self.assertIn("v2", f.read())
        # Applying the same again changes nothing.
        code, out, _ = self.ctl("apply", "-f", new)
        self.assertEqual(code, 0)
        self.assertIn("no changes (version 2)", out)

        status = self.ctl_json("status")
        self.assertEqual(status["version"], "2")
        [proxy] = status["proxies"]
        self.assertEqual(proxy["node_id"], "sidecar-1")
        self.assertEqual(proxy["principal"], "sidecar-1")
        self.assertTrue(proxy["peer"].startswith("ipv4:127.0.0.1:"), proxy)
        self.assertTrue(proxy["connected_since"].endswith("Z"), proxy)
        types = {t["type"]: t for t in proxy["types"]}
        self.assertEqual(set(types), {"Listener", "RouteConfiguration", "Cluster",
                                      "ClusterLoadAssignment", "Secret"})
        self.assertEqual(types["Listener"]["acked_version"], "1")  # Only routes changed.
        self.assertEqual(types["RouteConfiguration"]["last_nack_error"], "")
        code, out, _ = self.ctl("status")
        self.assertEqual(code, 0)
        self.assertIn("node sidecar-1", out)
        self.assertIn("RouteConfiguration: ACKed 2", out)

    def test_a_bad_apply_is_refused_with_file_line_column_and_nothing_changes(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.cp.logs())
        bad = self.write(os.path.join(self.work, "routes.yaml"),
                         raw="route_configurations:\n- name: main\n  virtual_hostz: []\n")
        code, _, err = self.ctl("apply", "-f", bad)
        self.assertEqual(code, 1, err)
        self.assertIn("apply refused, nothing was written", err)
        self.assertIn("routes.yaml:3:3:", err)
        with open(os.path.join(self.resources, "routes.yaml")) as f:
            self.assertIn("v1", f.read())
        self.assertEqual(self.ctl_json("status")["version"], "1")
        self.assertEqual(self.body(), "v1")
        code, _, err = self.ctl("validate", "-f", bad)
        self.assertEqual(code, 1)
        self.assertIn("routes.yaml:3:3:", err)
        result = self.ctl_json("validate", "-f", os.path.join(self.resources, "listeners.yaml"))
        self.assertEqual(result["errors"], [])
        # The refusal is audited, as alice.
        refused = [e for e in self.ctl_json("audit")["entries"] if e["refused"]]
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0]["who"], "alice")

    def test_audit_shows_the_principal_and_the_diff(self):
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        code, _, err = self.ctl("apply", "-f", new)
        self.assertEqual(code, 0, err)
        entries = self.ctl_json("audit")["entries"]
        self.assertEqual([(e["who"], e["version"]) for e in entries], [("files", "1"), ("alice", "2")])
        self.assertEqual(entries[1]["changes"], [{"type": "RouteConfiguration", "name": "main",
                                                  "action": "changed", "node": ""}])
        self.assertTrue(has_line(entries[1]["diff"], "+", "inline_string: v2"), entries[1])
        self.assertEqual(len(self.ctl_json("audit", "--since", "1h")["entries"]), 2)
        self.assertEqual(self.ctl_json("audit", "--since", "2099-01-01T00:00:00Z")["entries"], [])
        code, out, _ = self.ctl("audit")
        self.assertEqual(code, 0)
        self.assertIn("alice  version 2: changed RouteConfiguration/main", out)
        # A change in the directory itself stays who=files.
        self.write(os.path.join(self.resources, "routes.yaml"), routes("v3"))
        self.assertIsNotNone(self.cp.wait_for_log("version 3"), self.cp.logs())
        self.assertEqual(self.ctl_json("audit")["entries"][-1]["who"], "files")

    def test_rollback_returns_to_an_earlier_version(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.cp.logs())
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        extra = self.write(os.path.join(self.work, "extra.yaml"), {"clusters": [
            {"name": "extra", "connect_timeout": "1s", "load_assignment": {
                "cluster_name": "extra", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1",
                                                   "port_value": 9}}}}]}]}}]})
        code, _, err = self.ctl("apply", "-f", new, "-f", extra)
        self.assertEqual(code, 0, err)
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=2), self.cp.logs())

        code, out, err = self.ctl("rollback", "1")
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 3", out)
        self.assertIn("# removed Cluster extra", out)
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=2),
                        f"the proxy does not serve version 1's route again\n{self.cp.logs()}")
        self.assertFalse(os.path.exists(os.path.join(self.resources, "extra.yaml")))
        last = self.ctl_json("audit")["entries"][-1]
        self.assertEqual((last["who"], last["version"]), ("alice", "3"))
        self.assertTrue(last["diff"].startswith("# rollback to version 1\n"), last)
        code, _, err = self.ctl("rollback", "99")
        self.assertEqual(code, 1)
        self.assertIn("version 99 is not kept", err)
        code, _, err = self.ctl("rollback", "latest")
        self.assertEqual(code, 2)

    def restart_cp(self):
        """A new phoenix-cp on the same directory, tokens and audit log."""
        self.cp.close()
        self.cp = ControlPlane(self.resources, audit_log=os.path.join(self.work, "audit.jsonl"),
                               extra_args=("--tokens", self.tokens))
        self.addCleanup(self.cp.close)

    def test_versions_and_history_survive_a_restart(self):
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        code, _, err = self.ctl("apply", "-f", new)
        self.assertEqual(code, 0, err)
        self.restart_cp()
        # Counting goes on from where it was (proxies resume with their versions).
        self.assertEqual(self.ctl_json("status")["version"], "2")
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=10), self.cp.logs())
        code, out, err = self.ctl("rollback", "1")
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 3", out)
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=2), self.cp.logs())
        # An edit made while phoenix-cp was down is the next version, as `files`.
        self.cp.close()
        self.write(os.path.join(self.resources, "routes.yaml"), routes("edited"))
        self.restart_cp()
        self.assertEqual(self.ctl_json("status")["version"], "4")
        entries = self.ctl_json("audit")["entries"]
        self.assertEqual([(e["who"], e["version"]) for e in entries],
                         [("files", "1"), ("alice", "2"), ("alice", "3"), ("files", "4")])
        # The kept versions are hidden from the resource loader.
        self.assertTrue(os.path.isdir(os.path.join(self.resources, ".phoenix-cp", "history")))

    def test_delete_removes_a_file_and_refuses_a_dangling_reference(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.cp.logs())
        # The listener names the route configuration routes.yaml defines.
        code, _, err = self.ctl("delete", "routes.yaml")
        self.assertEqual(code, 1, err)
        self.assertIn("delete refused, nothing was written", err)
        self.assertIn("Listener 'ingress'", err)
        self.assertIn("refers to RouteConfiguration 'main'", err)
        self.assertTrue(os.path.exists(os.path.join(self.resources, "routes.yaml")))
        self.assertEqual(self.ctl_json("status")["version"], "1")
        code, _, err = self.ctl("delete", "nodes/sidecar-1/missing.yaml")
        self.assertEqual(code, 1, err)
        self.assertIn("no file nodes/sidecar-1/missing.yaml", err)

        extra = self.write(os.path.join(self.work, "extra.yaml"), {"clusters": [
            {"name": "extra", "connect_timeout": "1s", "load_assignment": {
                "cluster_name": "extra", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1",
                                                   "port_value": 9}}}}]}]}}]})
        code, _, err = self.ctl("apply", "-f", extra, "--node", "sidecar-1")
        self.assertEqual(code, 0, err)
        self.assertTrue(wait_until(lambda: self.acked("sidecar-1", "Cluster") == "2"),
                        self.cp.logs())
        code, out, err = self.ctl("delete", "-f", extra, "--node", "sidecar-1")
        self.assertEqual(code, 0, err)
        self.assertIn("# removed Cluster extra (node sidecar-1)", out)
        self.assertIn("applied: version 3", out)
        self.assertFalse(os.path.exists(
            os.path.join(self.resources, "nodes", "sidecar-1", "extra.yaml")))
        self.assertTrue(wait_until(lambda: self.acked("sidecar-1", "Cluster") == "3"),
                        self.cp.logs())
        last = self.ctl_json("audit")["entries"][-1]
        self.assertEqual((last["who"], last["version"]), ("alice", "3"))
        self.assertTrue(last["diff"].startswith("# delete nodes/sidecar-1/extra.yaml\n"), last)
        self.assertEqual(self.body(), "v1")

    def test_certs_rotate_pushes_the_new_certificate(self):
        self.write(os.path.join(self.resources, "secrets.yaml"),
                   {"secrets": [tls_secret("server")]})
        self.assertIsNotNone(self.cp.wait_for_log("version 2"), self.cp.logs())
        proxy = AdsClient(self.cp.target, "sidecar-1", "--types", "Secret", "--token", NODE_TOKEN)
        self.addCleanup(proxy.close)
        self.assertIsNotNone(proxy.wait_for_response("Secret", "2"), proxy.logs())
        # A key that is not the certificate's: refused, nothing written.
        code, _, err = self.ctl("certs", "rotate", "server", "--cert", cert_path("server-rsa.crt"),
                                "--key", cert_path("server-ecdsa.key"))
        self.assertEqual(code, 1, err)
        self.assertIn("refused, nothing was written", err)
        code, out, err = self.ctl("certs", "rotate", "server", "--cert",
                                  cert_path("server-rsa.crt"), "--key", cert_path("server-rsa.key"))
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 3", out)
        self.assertNotIn("PRIVATE KEY", out)
        self.assertIsNotNone(proxy.wait_for_response("Secret", "3"),
                             f"the rotation was not pushed\n{proxy.logs()}")
        [secret] = self.ctl_json("get", "secrets", "server")
        with open(cert_path("server-rsa.crt")) as f:
            self.assertEqual(secret["resource"]["tls_certificate"]["certificate_chain"]
                             ["inline_string"], f.read())
        self.assertEqual(self.ctl_json("audit")["entries"][-1]["who"], "alice")
        code, _, err = self.ctl("certs", "rotate", "nope", "--cert", cert_path("server-rsa.crt"),
                                "--key", cert_path("server-rsa.key"))
        self.assertEqual(code, 1)
        self.assertIn("no Secret named 'nope'", err)

    def test_get_reads_resources_and_redacts_private_keys(self):
        secrets = self.write(os.path.join(self.work, "secrets.yaml"),
                             {"secrets": [tls_secret("server")]})
        code, _, err = self.ctl("apply", "-f", secrets, "--node", "sidecar-1")
        self.assertEqual(code, 0, err)
        [secret] = self.ctl_json("get", "secrets")
        self.assertEqual((secret["name"], secret["node"], secret["file"]),
                         ("server", "sidecar-1", "nodes/sidecar-1/secrets.yaml"))
        key = secret["resource"]["tls_certificate"]["private_key"]["inline_string"]
        self.assertEqual(key, "[redacted]")
        code, out, _ = self.ctl("get", "secrets", "server", "-o", "yaml")
        self.assertEqual(code, 0)
        self.assertIn("inline_string: \"[redacted]\"", out)
        self.assertNotIn("PRIVATE KEY", out)
        [route] = self.ctl_json("get", "routes", "main")
        self.assertEqual(route["resource"]["virtual_hosts"][0]["routes"][0]["direct_response"]
                         ["body"]["inline_string"], "v1")
        code, _, err = self.ctl("get", "clusters", "nope")
        self.assertEqual(code, 1)
        self.assertIn("no Cluster named 'nope'", err)
        code, _, err = self.ctl("get", "widgets")
        self.assertEqual(code, 1)
        self.assertIn("unknown resource type 'widgets'", err)

    def test_a_node_token_cannot_fetch_another_nodes_secrets(self):
        self.write(os.path.join(self.resources, "nodes", "sidecar-1", "secrets.yaml"),
                   {"secrets": [tls_secret("sidecar-1-cert")]})
        self.assertIsNotNone(self.cp.wait_for_log("version 2"), self.cp.logs())
        # sidecar-2's token asking for sidecar-1: refused, nothing sent.
        thief = AdsClient(self.cp.target, "sidecar-1", "--types", "Secret",
                          "--token", OTHER_NODE_TOKEN)
        self.addCleanup(thief.close)
        end = thief.stdout.wait_for(lambda l: '"status"' in l, timeout=5)
        self.assertIsNotNone(end, thief.logs())
        self.assertEqual(json.loads(end)["status"], 7, end)  # PERMISSION_DENIED
        self.assertEqual(thief.responses(), [])
        # No token at all: UNAUTHENTICATED.
        anonymous = AdsClient(self.cp.target, "sidecar-1", "--types", "Secret")
        self.addCleanup(anonymous.close)
        end = anonymous.stdout.wait_for(lambda l: '"status"' in l, timeout=5)
        self.assertEqual(json.loads(end)["status"], 16, end)
        # Its own token, its own node: served, and sidecar-2 gets no sidecar-1 secret.
        owner = AdsClient(self.cp.target, "sidecar-1", "--types", "Secret", "--token", NODE_TOKEN)
        self.addCleanup(owner.close)
        response = owner.wait_for_response("Secret")
        self.assertIsNotNone(response, owner.logs())
        self.assertEqual(response["resources"], ["sidecar-1-cert"])
        other = AdsClient(self.cp.target, "sidecar-2", "--types", "Secret",
                          "--token", OTHER_NODE_TOKEN)
        self.addCleanup(other.close)
        response = other.wait_for_response("Secret")
        self.assertIsNotNone(response, other.logs())
        self.assertEqual(response["resources"], [])

    def test_admin_calls_need_an_admin_token(self):
        code, _, err = self.ctl("status", token=False)
        self.assertEqual(code, 3)
        self.assertIn("pass an admin token: --token-file FILE", err)
        code, _, err = self.ctl("status", token=self.node_token)
        self.assertEqual(code, 3)
        self.assertIn("sidecar-1 is not an admin", err)
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        code, _, _ = self.ctl("apply", "-f", new, token=self.node_token)
        self.assertEqual(code, 3)
        with open(os.path.join(self.resources, "routes.yaml")) as f:
            self.assertIn("v1", f.read())

    def test_an_unreachable_server_says_what_to_do(self):
        target = f"127.0.0.1:{free_port()}"
        code, _, err = self.ctl("status", server=target)
        self.assertEqual(code, 3)
        self.assertEqual(err.strip(),
                         f"phoenixctl: cannot reach phoenix-cp at {target}: is it running? (--server)")
        code, _, err = self.ctl("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("unknown command 'frobnicate'", err)

    def test_a_grpc_js_client_calls_status(self):
        node = require_node()
        done = subprocess.run([node, os.path.join(GRPC_DIR, "admin_client.js"), "--target",
                               self.cp.target, "--token", ADMIN_TOKEN, "--method", "Status"],
                              capture_output=True, text=True, timeout=30, cwd=GRPC_DIR)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        status = json.loads(done.stdout)
        self.assertEqual(status["version"], "1")
        self.assertEqual(status["proxies"], [])
        refused = subprocess.run([node, os.path.join(GRPC_DIR, "admin_client.js"), "--target",
                                  self.cp.target], capture_output=True, text=True, timeout=30,
                                 cwd=GRPC_DIR)
        self.assertEqual(refused.returncode, 1)
        self.assertEqual(json.loads(refused.stdout)["code"], 16)  # UNAUTHENTICATED


class PhoenixctlWithoutTokensTest(PhoenixTestCase):
    """Without --tokens phoenix-cp says so at startup, and phoenixctl needs no token."""

    def test_open_mode_is_announced_and_works(self):
        resources = tempfile.mkdtemp(prefix="phoenixctl-open-")
        self.addCleanup(shutil.rmtree, resources, True)
        with open(os.path.join(resources, "routes.yaml"), "w") as f:
            json.dump(routes("v1"), f)
        cp = ControlPlane(resources)
        self.addCleanup(cp.close)
        self.assertIsNotNone(cp.wait_for_log("no --tokens"), cp.logs())
        done = subprocess.run([phoenixctl_bin(), "--server", cp.target, "status", "-o", "json"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["version"], "1")
        work = tempfile.mkdtemp(prefix="phoenixctl-open-work-")
        self.addCleanup(shutil.rmtree, work, True)
        new = os.path.join(work, "routes.yaml")
        with open(new, "w") as f:
            json.dump(routes("v2"), f)
        done = subprocess.run([phoenixctl_bin(), "--server", cp.target, "apply", "-f", new],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(cp.audit_lines()[-1]["who"], "anonymous")
