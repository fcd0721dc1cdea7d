"""phoenixctl explain against the real phoenix-cp: what a node's config would do with a
request, worked out by phoenix-cp with the proxy's own code on the resources it serves that
node (its nodes/<id>/ files over the common ones)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness.control_plane import ControlPlane
from harness.process import phoenixctl_bin

POLICY = {"name": "phoenix.filters.http.access_policy", "typed_config": {
    "@type": "type.googleapis.com/phoenix.config.v1.AccessPolicy",
    "rules": [{"name": "no_crash", "action": "DENY", "match": {"path": {"exact": "/crash"}}}]}}


def routes(cluster, name="main"):
    return {"route_configurations": [{"name": name, "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
            {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]}]}


class PhoenixctlExplainTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="phoenixctl-explain-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.write("listeners.yaml", {"listeners": [{
            "name": "ingress",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18080}},
            "http_connection_manager": {
                "stat_prefix": "ingress", "rds": {"route_config_name": "main"},
                "http_filters": [POLICY, {"name": "phoenix.filters.http.router"}]}}]})
        self.write("routes.yaml", routes("app"))
        canary = routes("app-canary", name="canary")
        canary["listeners"] = [{
            "name": "canary",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18081}},
            "http_connection_manager": {"stat_prefix": "canary",
                                        "rds": {"route_config_name": "canary"}}}]
        self.write("nodes/canary/canary.yaml", canary)
        self.cp = ControlPlane(self.dir, audit_log=os.path.join(self.dir, ".audit.jsonl"))
        self.addCleanup(self.cp.close)

    def write(self, relative, document):
        path = os.path.join(self.dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(document, f)

    def ctl(self, *args):
        done = subprocess.run([phoenixctl_bin(), "--server", self.cp.target, *args],
                              capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout, done.stderr

    def test_a_deny_rule_holds_for_a_path_trick(self):
        code, out, err = self.ctl("explain", "--node", "web", "HEAD", "/CRASH/")
        self.assertEqual(code, 0, err)
        self.assertIn("node web, listener ingress (version 1)", out)
        self.assertIn("outcome: denied by no_crash", out)

    def test_each_node_is_explained_on_its_own_resources(self):
        code, out, err = self.ctl("explain", "--node", "canary", "--listener", "canary", "/",
                                  "-o", "json")
        self.assertEqual(code, 0, err)
        explained = json.loads(out)
        self.assertEqual(explained["outcome"], "route default -> cluster app-canary")
        self.assertEqual(explained["listener"], "canary")
        code, out, err = self.ctl("explain", "--node", "web", "/")
        self.assertIn("outcome: route default -> cluster app\n", out)
        code, _, err = self.ctl("explain", "--node", "web", "--listener", "canary", "/")
        self.assertEqual(code, 1)
        self.assertIn("node 'web' has no listener named 'canary'", err)

    def test_mistakes_get_short_errors_and_exit_codes(self):
        code, _, err = self.ctl("explain", "/")
        self.assertEqual(code, 2)
        self.assertIn("explain wants --node ID [METHOD] PATH", err)
        code, _, err = self.ctl("explain", "--node", "web", "--listener", "egress", "/")
        self.assertEqual(code, 1)
        self.assertIn("node 'web' has no listener named 'egress'", err)
        code, _, err = self.ctl("get", "listeners", "--principal", "x")
        self.assertEqual(code, 2)
        self.assertIn("are for explain", err)
