"""Command line: --version, --help, --mode validate (with file:line:column errors), and serving
from a config written as real YAML text."""

import json
import os
import re
import socket
import subprocess
import tempfile
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import simple_config
from harness.process import REPO_ROOT, free_port, require_phoenix_bin
from harness.tls import certs

# A complete config as real YAML: comments, block and flow style, quoted keys, durations.
GOOD_YAML = """\
# Phoenix integration test config, written as YAML on purpose.
node:
  id: cli-test
  cluster: cli
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: @ADMIN@ }
drain_timeout: 2s
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: { address: 127.0.0.1, port_value: @PORT@ }
    http_connection_manager:
      stat_prefix: ingress
      request_headers_timeout: 0.5s
      idle_timeout: 30s
      access_log:
      - path: /dev/stdout
      route_config:
        name: local
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: { prefix: /direct }
            direct_response:
              status: 200
              body: { inline_string: "direct from yaml\\n" }
          - match: { prefix: / }
            route: { cluster: app, timeout: 5s }
      http_filters:
      - name: phoenix.filters.http.router
        typed_config:
          "@type": type.googleapis.com/phoenix.config.v1.Router
  clusters:
  - name: app
    connect_timeout: 0.25s
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: @UP@ }
"""


def render(template=GOOD_YAML, admin=None, port=None, up=None):
    return (template.replace("@ADMIN@", str(admin or free_port()))
            .replace("@PORT@", str(port or free_port()))
            .replace("@UP@", str(up or free_port())))


def demo_config_cwd():
    """A working directory for phoenix in which config/phoenix-app.yaml's certificate files
    (.demo/certs/..., relative, as tools/demo.sh makes them) are the demo PKI of harness.tls."""
    cwd = tempfile.mkdtemp(prefix="phoenix-demo-cwd-")
    os.mkdir(os.path.join(cwd, ".demo"))
    os.symlink(certs(), os.path.join(cwd, ".demo", "certs"))
    return cwd


def locate(text, needle):
    """1-based (line, column) of the first occurrence of ``needle`` in ``text``."""
    for i, line in enumerate(text.splitlines(), start=1):
        col = line.find(needle)
        if col >= 0:
            return i, col + 1
    raise ValueError(needle)


class CliTest(PhoenixTestCase):

    def setUp(self):
        self.bin = require_phoenix_bin()
        self.dir = tempfile.mkdtemp(prefix="phoenix-cli-")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir, ignore_errors=True))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_phoenix(self, *args, timeout=20, cwd=None):
        p = subprocess.run([self.bin, *args], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
        return p.returncode, out

    def test_version(self):
        rc, out = self.run_phoenix("--version")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\d+\.\d+\.\d+")

    def test_help(self):
        rc, out = self.run_phoenix("--help")
        self.assertEqual(rc, 0, out)
        for flag in ("--config-path", "--mode", "--concurrency", "--log-level"):
            self.assertIn(flag, out, f"--help does not mention {flag}")

    def test_unknown_flag_fails(self):
        rc, out = self.run_phoenix("--no-such-flag")
        self.assertNotEqual(rc, 0, out)

    def test_validate_good(self):
        path = self.write("good.yaml", render())
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertEqual(rc, 0, out)
        self.assertIn("OK", out)

    def test_validate_good_long_option(self):
        path = self.write("good.yaml", render())
        rc, out = self.run_phoenix("--mode", "validate", "--config-path", path)
        self.assertEqual(rc, 0, out)
        self.assertIn("OK", out)

    def test_validate_shipped_demo_config(self):
        path = os.path.join(REPO_ROOT, "config", "phoenix-app.yaml")
        rc, out = self.run_phoenix("--mode", "validate", "-c", path, cwd=demo_config_cwd())
        self.assertEqual(rc, 0, out)
        self.assertIn("OK", out)

    def test_validate_misspelled_field(self):
        text = render().replace("    lb_policy: ROUND_ROBIN", "    lb_polcy: ROUND_ROBIN")
        line, col = locate(text, "lb_polcy")
        self.assertEqual(col, 5)
        path = self.write("bad.yaml", text)
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:{line}:{col}", out, "error must point at file:line:column")
        self.assertIn("lb_polcy", out)
        self.assertIn("lb_policy", out, "error should suggest the right field name")

    def test_a_file_that_is_not_a_config_is_never_echoed(self):
        secret = "$6$rounds=5000$c2VjcmV0$hash"
        path = self.write("shadow", f"root:{secret}:19000:0:99999:7:::\n"
                                    "daemon:*:19000:0:99999:7:::\n")
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:1:1: not a config field here", out)
        for word in (secret, "root", "daemon", "19000"):
            self.assertNotIn(word, out.replace(path, ""))

    def test_a_directory_or_a_missing_file_says_so(self):
        directory = tempfile.mkdtemp(prefix="phoenix-dir-")
        self.addCleanup(os.rmdir, directory)
        rc, out = self.run_phoenix("--mode", "validate", "-c", directory)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{directory}: is a directory; give a YAML file", out)
        rc, out = self.run_phoenix("--mode", "check-policy", "-c", self.write("good.yaml", render()),
                                   "--cases", os.path.join(directory, "missing.yaml"))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("missing.yaml: cannot open: No such file or directory", out)
        self.assertNotIn("config file", out)

    def test_check_policy_warns_of_a_strict_deny_that_other_spellings_get_past(self):
        policy = """\
      - name: phoenix.filters.http.access_policy
        typed_config:
          "@type": type.googleapis.com/phoenix.config.v1.AccessPolicy
          rules:
          - {name: strict_crash, action: DENY, strict: true, match: {path: {exact: /crash}}}
          - {name: folded_admin, action: DENY, match: {path: {exact: /admin}}}
      - name: phoenix.filters.http.router"""
        text = render().replace("      - name: phoenix.filters.http.router", policy)
        config = self.write("strict.yaml", text)
        cases = self.write("cases.yaml", "cases:\n- request: {path: /crash}\n"
                                         "  expect: {denied_by: strict_crash}\n")
        rc, out = self.run_phoenix("--mode", "check-policy", "-c", config, "--cases", cases)
        self.assertEqual(rc, 0, out)
        self.assertIn("warning: listener 'ingress': strict rule 'strict_crash' denies /crash, "
                      "but /CRASH reaches cluster app", out)
        self.assertIn("but /crash/ reaches cluster app", out)
        self.assertNotIn("folded_admin", out, "a folding rule needs no warning")

    def test_validate_unknown_cluster(self):
        text = render().replace("route: { cluster: app, timeout: 5s }",
                                "route: { cluster: nonexistent, timeout: 5s }")
        line, _ = locate(text, "cluster: nonexistent")
        path = self.write("unknown_cluster.yaml", text)
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertIn("nonexistent", out)
        self.assertRegex(out, re.compile(rf"^{re.escape(path)}:{line}:\d+: \S*cluster\S*: ",
                                         re.MULTILINE),
                         "error must be FILE:LINE:COL: field.path: message, naming the "
                         "route's cluster field")

    def test_validate_yaml_syntax_error(self):
        # The admin address line becomes "{ address: ..., port_value: N ]" (mismatched).
        text = render().splitlines()
        idx = next(i for i, l in enumerate(text) if "socket_address: {" in l)
        text[idx] = text[idx].replace("}", "]")
        text = "\n".join(text) + "\n"
        line = idx + 1
        path = self.write("syntax.yaml", text)
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, re.compile(rf"{re.escape(path)}:{line}:\d+"),
                         f"the syntax error on line {line} must be located")

    def test_missing_config_file(self):
        path = os.path.join(self.dir, "does-not-exist.yaml")
        rc, out = self.run_phoenix("--mode", "validate", "-c", path)
        self.assertNotEqual(rc, 0, out)
        self.assertIn(path, out)

    def test_serve_from_yaml_text(self):
        app = self.start_upstream("yaml-app")
        admin, port = free_port(), free_port()
        px = self.start_phoenix(render(admin=admin, port=port, up=app.port), admin_port=admin,
                                listener_ports={"ingress": port})
        r = http_get(px.port("ingress"), "/hello")
        self.assertEqual((r.status, r.body), (200, b"ok from yaml-app\n"))
        r = http_get(port, "/direct")
        self.assertEqual((r.status, r.body), (200, b"direct from yaml\n"))
        self.assertEqual(app.request_count(), 1)


class CheckPolicyTest(unittest.TestCase):
    """phoenix --mode check-policy against config/phoenix-app.yaml and its shipped cases."""

    CONFIG = os.path.join(REPO_ROOT, "config", "phoenix-app.yaml")
    CASES = os.path.join(REPO_ROOT, "config", "phoenix-app.policy-cases.yaml")

    def run_check(self, cases_path):
        return subprocess.run([require_phoenix_bin(), "--mode", "check-policy", "-c", self.CONFIG,
                               "--cases", cases_path], capture_output=True, text=True,
                              timeout=20, cwd=demo_config_cwd())

    def test_shipped_cases_pass(self):
        r = self.run_check(self.CASES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("FAIL", r.stdout)
        self.assertRegex(r.stdout, r"(\d+) of \1 cases as expected")

    def test_wrong_expectation_fails(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("cases:\n"
                    "- name: wrong\n"
                    "  request: { path: /%63rash }\n"
                    "  expect: { route: app }\n"
                    "- name: right\n"
                    "  request: { path: /CRASH }\n"
                    "  expect: { denied_by: deny_crash }\n")
        self.addCleanup(os.unlink, f.name)
        r = self.run_check(f.name)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"FAIL\s+wrong\s+GET /%63rash\s+route app\s+denied by deny_crash")
        self.assertRegex(r.stdout, r"ok\s+right")
        self.assertIn("1 of 2 cases as expected", r.stdout)

    def test_bad_cases_file_names_line_and_column(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("cases:\n- name: x\n  expect: { denied: deny_crash }\n")
        self.addCleanup(os.unlink, f.name)
        r = self.run_check(f.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{f.name}:3:13: cases[0].expect.denied: unknown field", r.stderr)
        self.assertIn("did you mean 'denied_by'", r.stderr)


if __name__ == "__main__":
    unittest.main()


class PortOwnershipTest(PhoenixTestCase):
    """A port another process listens on is refused, as nginx does, rather than shared
    silently through SO_REUSEPORT."""

    def second_start(self, port):
        config = simple_config(port, free_port(), [free_port()])
        path = os.path.join(tempfile.mkdtemp(prefix="phoenix-port-"), "second.yaml")
        with open(path, "w") as f:
            json.dump(config, f)
        p = subprocess.run([require_phoenix_bin(), "-c", path, "--concurrency", "2"],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr

    def test_a_second_phoenix_on_the_same_port_fails_to_start(self):
        app = self.start_upstream("app")
        port = free_port()
        first = self.start_phoenix(simple_config(port, free_port(), [app.port]))
        rc, out = self.second_start(port)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: address already in use", out)
        for _ in range(6):
            self.assertEqual(http_get(port, "/").status, 200)
        self.assertEqual(app.request_count(), 6)  # the first phoenix took every request
        self.assertAlive(first)

    def test_a_port_held_by_another_program_is_refused(self):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        self.addCleanup(held.close)
        rc, out = self.second_start(held.getsockname()[1])
        self.assertEqual(rc, 1, out)
        self.assertIn("address already in use", out)


class StartupLineTest(PhoenixTestCase):

    def test_the_startup_line_counts_workers_in_words(self):
        app = self.start_upstream("app")
        one = self.start_phoenix(simple_config(free_port(), free_port(), [app.port]),
                                 concurrency=1)
        self.assertIn("started: 1 worker, config version", one.stderr_text())
        two = self.start_phoenix(simple_config(free_port(), free_port(), [app.port]),
                                 concurrency=2)
        self.assertIn("started: 2 workers, config version", two.stderr_text())
