"""phoenix-cp, the control plane: a directory of YAML files served over ADS (xDS v3, state of
the world) to a real gRPC client (grpc-js, grpc/ads_client.js), changes pushed, invalid ones
refused, ACKs and NACKs logged, each node given only its own nodes/<id>/ resources, and every
change audited."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness.control_plane import AdsClient, ControlPlane
from harness.process import phoenix_cp_bin


def cluster(name, port):
    return {"name": name, "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": port}}}}]}]}}


def listener(name, port, route_config_name):
    return {"name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "http_connection_manager": {"stat_prefix": name,
                                        "rds": {"route_config_name": route_config_name}}}


def route_configuration(name, cluster_name):
    return {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": cluster_name}}]}]}


def secret(name):
    return {"name": name, "validation_context": {"trusted_ca": {
        "filename": "/etc/ssl/certs/ca-certificates.crt"}}}


class ControlPlaneTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="phoenix-cp-it-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.processes = []
        # One of each type for every node; routes name a cluster of another file.
        self.write("listeners.yaml", {"listeners": [listener("ingress", 18080, "main")]})
        self.write("routes.yaml", {"route_configurations": [route_configuration("main", "app")]})
        self.write("clusters.yaml", {"clusters": [cluster("app", 8080)]})
        self.write("secrets.yaml", {"secrets": [secret("shared-ca")]})

    def write(self, relative, document, raw=None):
        """Writes a resource file atomically (a temp name phoenix-cp ignores, then rename)."""
        path = os.path.join(self.dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(raw if raw is not None else json.dumps(document, indent=1))
        os.rename(path + ".tmp", path)
        return path

    def start_cp(self):
        cp = ControlPlane(self.dir)
        self.processes.append(cp)
        self.addCleanup(cp.close)
        return cp

    def client(self, cp, node, *args):
        client = AdsClient(cp.target, node, *args)
        self.processes.append(client)
        self.addCleanup(client.close)
        return client

    def fail_with_logs(self, message):
        self.fail(message + "\n" + "\n".join(p.logs() for p in self.processes))

    def expect(self, value, message):
        if not value:
            self.fail_with_logs(message)
        return value

    def test_initial_state_of_every_type(self):
        cp = self.start_cp()
        client = self.client(cp, "sidecar-1")
        expected = {"Listener": ["ingress"], "RouteConfiguration": ["main"],
                    "Cluster": ["app"], "Secret": ["shared-ca"]}
        for type_name, names in expected.items():
            response = self.expect(client.wait_for_response(type_name),
                                   f"no {type_name} response")
            self.assertEqual(response["version_info"], "1")
            self.assertEqual(response["resources"], names)
            self.assertEqual(response["type_url"],
                             f"type.googleapis.com/phoenix.config.v1.{type_name}")
            self.assertTrue(response["nonce"])
        for type_name in expected:
            self.expect(cp.wait_for_log(f"node sidecar-1 ACKed {type_name} version 1"),
                        f"no ACK of {type_name} logged")
        self.expect(cp.wait_for_log("node sidecar-1 connected"), "no connection logged")
        client.close()
        self.expect(cp.wait_for_log("node sidecar-1 disconnected"), "no disconnection logged")

    def test_a_change_is_pushed_within_a_second(self):
        cp = self.start_cp()
        client = self.client(cp, "sidecar-1")
        for type_name in ("Listener", "RouteConfiguration", "Cluster", "Secret"):
            self.expect(cp.wait_for_log(f"ACKed {type_name} version 1"), "no initial ACK")
        mark = client.stdout.count()
        self.write("clusters.yaml", {"clusters": [cluster("app", 8081), cluster("db", 5432)]})
        response = self.expect(client.wait_for_response("Cluster", "2", timeout=1.0, start=mark),
                               "the change was not pushed within a second")
        self.assertEqual(response["resources"], ["app", "db"])
        self.expect(cp.wait_for_log("ACKed Cluster version 2"), "no ACK of version 2")
        # Only the type that changed is sent again.
        self.assertEqual([r["type"] for r in client.responses() if r["version_info"] == "2"],
                         ["Cluster"])

    def test_additions_go_first_and_removals_last_in_reverse(self):
        cp = self.start_cp()
        client = self.client(cp, "sidecar-1")
        for type_name in ("Listener", "RouteConfiguration", "Cluster", "Secret"):
            self.expect(cp.wait_for_log(f"ACKed {type_name} version 1"), "no initial ACK")
        # A listener and the secret only it would use go together: the listener first.
        os.remove(os.path.join(self.dir, "listeners.yaml"))
        os.remove(os.path.join(self.dir, "secrets.yaml"))
        self.expect(client.wait_for_response("Secret", "2"), "the removal was not pushed")
        self.assertEqual([r["type"] for r in client.responses() if r["version_info"] == "2"],
                         ["Listener", "Secret"])
        # What others will refer to arrives before them.
        self.write("clusters.yaml", {"clusters": [cluster("app", 8080), cluster("db", 5432)]})
        self.write("listeners.yaml", {"listeners": [listener("ingress", 18080, "main")]})
        self.expect(client.wait_for_response("Listener", "3"), "the addition was not pushed")
        self.assertEqual([r["type"] for r in client.responses() if r["version_info"] == "3"],
                         ["Cluster", "Listener"])

    def test_a_node_gets_the_files_of_its_cluster_and_metadata(self):
        self.write("clusters/payments/clusters.yaml", {"clusters": [cluster("ledger", 9000)]})
        self.write("metadata/region=eu/clusters.yaml", {"clusters": [cluster("eu-db", 9001)]})
        self.write("nodes/sidecar-1/clusters.yaml", {"clusters": [cluster("mine", 9002)]})
        cp = self.start_cp()
        both = self.client(cp, "sidecar-1", "--node-cluster", "payments",
                           "--node-metadata", "region=eu,tier=gold")
        neither = self.client(cp, "sidecar-2", "--node-cluster", "web",
                              "--node-metadata", "region=us")
        response = self.expect(both.wait_for_response("Cluster"), "no Cluster response")
        self.assertEqual(response["resources"], ["app", "eu-db", "ledger", "mine"])
        response = self.expect(neither.wait_for_response("Cluster"), "no Cluster response")
        self.assertEqual(response["resources"], ["app"])

    def test_secrets_are_refused_in_cluster_and_metadata_folders(self):
        self.write("clusters/payments/secrets.yaml", {"secrets": [secret("payments-ca")]})
        cp = ControlPlane(self.dir, wait_ready=False)
        self.addCleanup(cp.close)
        self.assertEqual(cp.proc.wait(timeout=10), 1)
        self.assertIn("secrets go in nodes/<node id>/ or the common files", cp.stderr.text())

    def test_unchanged_content_keeps_the_version(self):
        cp = self.start_cp()
        self.write("clusters.yaml", None, raw="# a comment\n" +
                   json.dumps({"clusters": [cluster("app", 8080)]}))
        self.write("clusters.yaml", {"clusters": [cluster("app", 8081)]})
        client = self.client(cp, "sidecar-1", "--types", "Cluster")
        # The comment alone made no version: the port change is version 2.
        self.expect(client.wait_for_response("Cluster", "2", timeout=2.0), "no version 2")
        self.assertNotIn("version 3", cp.stderr.text())

    def test_an_invalid_change_is_refused_and_the_old_version_served(self):
        cp = self.start_cp()
        client = self.client(cp, "sidecar-1", "--types", "Cluster")
        self.expect(cp.wait_for_log("ACKed Cluster version 1"), "no initial ACK")
        # The client's own line for version 1 is read before counting (it may trail the ACK).
        self.expect(client.wait_for_response("Cluster", "1"), "no version 1 at the client")
        mark = client.stdout.count()
        bad = self.write("clusters.yaml", None, raw="clusters:\n- name: app\n  conect_timeout: 1s\n")
        line = self.expect(cp.wait_for_log("refused the change"), "the change was not refused")
        self.expect(cp.wait_for_log(f"{bad}:3:3:"), "the error does not name file:line:column")
        self.assertIn("still serving version 1", line)
        # Nothing was pushed, and a new stream gets version 1.
        late = self.client(cp, "sidecar-2", "--types", "Cluster")
        response = self.expect(late.wait_for_response("Cluster"), "no response to a new stream")
        self.assertEqual(response["version_info"], "1")
        self.assertEqual(response["resources"], ["app"])
        self.assertEqual(client.stdout.count(), mark)
        refused = [entry for entry in cp.audit_lines() if "refused" in entry]
        self.assertEqual(len(refused), 1, cp.audit_lines())
        self.assertIn(f"{bad}:3:3:", refused[0]["refused"])
        # Fixed: version 2 (no version is spent on the refused state).
        self.write("clusters.yaml", {"clusters": [cluster("app", 9090)]})
        self.expect(client.wait_for_response("Cluster", "2", timeout=1.0, start=mark),
                    "the fix was not pushed")

    def test_a_nack_is_logged_and_the_stream_kept(self):
        cp = self.start_cp()
        client = self.client(cp, "sidecar-1", "--types", "Cluster,Listener",
                             "--nack-type", "Cluster", "--nack-version", "2")
        self.expect(cp.wait_for_log("ACKed Cluster version 1"), "no initial ACK")
        self.write("clusters.yaml", {"clusters": [cluster("app", 8081)]})
        self.expect(cp.wait_for_log(
            "node sidecar-1 NACKed Cluster version 2: rejected by ads_client.js"),
            "the NACK was not logged")
        # The stream goes on: the next version reaches it (and is ACKed).
        self.write("clusters.yaml", {"clusters": [cluster("app", 8082)]})
        self.expect(client.wait_for_response("Cluster", "3"), "no version 3 after the NACK")
        self.expect(cp.wait_for_log("ACKed Cluster version 3"), "no ACK of version 3")

    def test_node_resources_go_to_that_node_only(self):
        self.write("nodes/sidecar-a/secrets.yaml", {"secrets": [secret("a-only")]})
        cp = self.start_cp()
        a = self.client(cp, "sidecar-a", "--types", "Secret")
        b = self.client(cp, "sidecar-b", "--types", "Secret")
        self.assertEqual(self.expect(a.wait_for_response("Secret"), "no Secret for A")["resources"],
                         ["a-only", "shared-ca"])
        self.assertEqual(self.expect(b.wait_for_response("Secret"), "no Secret for B")["resources"],
                         ["shared-ca"])
        # A change to A's folder goes to A; B's set did not change, so B gets nothing.
        self.write("nodes/sidecar-a/secrets.yaml",
                   {"secrets": [secret("a-only"), secret("a-second")]})
        self.expect(a.wait_for_response("Secret", "2", timeout=1.0), "A got no version 2")
        self.expect(cp.wait_for_log("node sidecar-a ACKed Secret version 2"), "no ACK from A")
        for response in b.responses():
            self.assertNotIn("a-only", response["resources"])
            self.assertNotIn("a-second", response["resources"])
            self.assertEqual(response["version_info"], "1")

    def test_duplicate_names_for_a_node_are_refused_naming_both_files(self):
        cp = self.start_cp()
        dup = self.write("nodes/sidecar-a/clusters.yaml", {"clusters": [cluster("app", 1)]})
        line = self.expect(cp.wait_for_log("is also defined in"), "the duplicate was accepted")
        self.assertIn(dup, line)
        self.assertIn(os.path.join(self.dir, "clusters.yaml"), line)

    def test_audit_log_records_each_accepted_change(self):
        cp = self.start_cp()
        self.write("nodes/sidecar-a/secrets.yaml", {"secrets": [secret("a-only")]})
        self.expect(cp.wait_for_log("phoenix-cp: version 2"), "no version 2")
        os.remove(os.path.join(self.dir, "secrets.yaml"))
        self.expect(cp.wait_for_log("phoenix-cp: version 3"), "no version 3")
        lines = cp.audit_lines()
        self.assertEqual([entry["version"] for entry in lines], ["1", "2", "3"])
        for entry in lines:
            self.assertEqual(entry["who"], "files")
            self.assertRegex(entry["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertIn({"type": "Cluster", "name": "app", "action": "added", "node": ""},
                      lines[0]["changes"])
        self.assertEqual(lines[1]["changes"],
                         [{"type": "Secret", "name": "a-only", "action": "added",
                           "node": "sidecar-a"}])
        self.assertEqual(lines[2]["changes"],
                         [{"type": "Secret", "name": "shared-ca", "action": "removed",
                           "node": ""}])


class ControlPlaneCliTest(unittest.TestCase):
    def run_cp(self, *args):
        return subprocess.run([phoenix_cp_bin(), *args], capture_output=True, text=True,
                              timeout=30)

    def test_help_and_bad_flags(self):
        result = self.run_cp("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("--resources DIR", result.stdout)
        self.assertEqual(self.run_cp().returncode, 2)
        self.assertEqual(self.run_cp("--resources", "/tmp", "--bogus").returncode, 2)
        self.assertEqual(self.run_cp("--resources").returncode, 2)

    def test_an_invalid_directory_fails_startup(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("clusters:\n- name: app\n  conect_timeout: 1s\n")
            result = self.run_cp("--resources", d, "--listen", "127.0.0.1:0")
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn(f"{path}:3:3:", result.stderr)


if __name__ == "__main__":
    unittest.main()
