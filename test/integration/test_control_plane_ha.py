"""phoenix-cp's HA mode against a real etcd (Debian's etcd-server, on loopback in a temporary
directory): three replicas share the resources, versions, history and audit trail through
etcd; a change applied through one replica reaches a proxy connected to another within a
second; a proxy whose replica dies fails over to another without a failed request; rollback
and audit work through any replica and survive a restart of them all; two concurrent applies
on two replicas lose no update. Every wait is on something observable (a log line, a status, a
response), never a sleep. Skipped only when etcd is not installed."""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.control_plane import (
    ControlPlane, ads_bootstrap, http_body, rds_listener, write_resource_file)
from harness.etcd import Etcd, etcd_available
from harness.process import free_port, phoenix_cp_bin, phoenixctl_bin, wait_until

TOKENS = """alice-token alice admin
bob-token bob admin
carol-token carol admin
node-token sidecar-1 node:sidecar-1
"""


def listener(port):
    return {"listeners": [rds_listener(port)]}


def routes(body):
    return {"route_configurations": [{"name": "main", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": body}}}]}]}]}


def cluster(name, port):
    return {"clusters": [{"name": name, "connect_timeout": "1s",
                          "load_assignment": {"cluster_name": name, "endpoints": [{
                              "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                                  "address": "127.0.0.1", "port_value": port}}}}]}]}}]}


def logged_at(line):
    """The time a log line (``2026-12-07T06:24:26.035Z [info] ...``) was written."""
    stamp = line.split(" ", 1)[0]
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


@unittest.skipUnless(etcd_available(), "etcd is not installed (/usr/bin/etcd, "
                     "/usr/bin/etcdctl: tools/setup.sh installs etcd-server and etcd-client)")
class ControlPlaneHaTest(PhoenixTestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="phoenix-cp-ha-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.etcd = Etcd()
        self.addCleanup(self.etcd.close)
        self.port = free_port()
        self.seed = os.path.join(self.work, "seed")
        self.write(os.path.join(self.seed, "listeners.yaml"), listener(self.port))
        self.write(os.path.join(self.seed, "routes.yaml"), routes("v1"))
        self.tokens = self.write(os.path.join(self.work, "tokens"), raw=TOKENS)
        self.token_files = {}
        for name in ("alice", "bob", "carol"):
            self.token_files[name] = self.write(os.path.join(self.work, f"{name}.token"),
                                                raw=f"{name}-token")
        self.replicas = []

    # -- helpers ---------------------------------------------------------------------------

    def write(self, path, document=None, raw=None):
        return write_resource_file(path, document, raw)

    def start_replica(self, seed=False, listen="127.0.0.1:0"):
        cp = ControlPlane(self.seed if seed else None, etcd=self.etcd.endpoint, listen=listen,
                          extra_args=("--tokens", self.tokens))
        self.addCleanup(cp.close)
        self.replicas.append(cp)
        return cp

    def start_replicas(self):
        """Three replicas; the first seeds etcd from the seed directory."""
        return [self.start_replica(seed=True), self.start_replica(), self.start_replica()]

    def ctl(self, cp, *args, who="alice"):
        command = [phoenixctl_bin(), "--server", cp.target, "--token-file",
                   self.token_files[who], *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout, done.stderr

    def ctl_json(self, cp, *args, who="alice"):
        code, out, err = self.ctl(cp, *args, "-o", "json", who=who)
        self.assertEqual(code, 0, f"phoenixctl {args}: {err}\n{self.all_logs()}")
        return json.loads(out)

    def start_proxy(self, *replicas):
        return self.start_phoenix(ads_bootstrap(free_port(), [cp.target for cp in replicas],
                                                token="node-token"))

    def body(self):
        return http_body(self.port)

    def proxy_on(self, cp):
        """The proxies connected to replica ``cp`` (its status)."""
        return [p["node_id"] for p in self.ctl_json(cp, "status")["proxies"]]

    def all_logs(self):
        return "\n".join([cp.logs() for cp in self.replicas] + [self.etcd.logs()])

    # -- tests -----------------------------------------------------------------------------

    def test_a_change_through_one_replica_reaches_a_proxy_on_another_within_a_second(self):
        cp1, cp2, cp3 = self.start_replicas()
        for cp in (cp1, cp2, cp3):
            self.assertEqual(self.ctl_json(cp, "status")["version"], "1")
        self.start_proxy(cp3)  # Connected to replica 3 only.
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.all_logs())
        self.assertTrue(cp3.wait_for_log("node sidecar-1 ACKed RouteConfiguration version 1"))
        # etcd holds the directory's layout under the prefix.
        keys = self.etcd.keys("/phoenix/")
        for key in ("/phoenix/version", "/phoenix/files/listeners.yaml",
                    "/phoenix/files/routes.yaml", "/phoenix/history/00000000000000000001"):
            self.assertIn(key, keys)
        self.assertEqual(self.etcd.etcdctl("get", "--print-value-only", "/phoenix/version").strip(),
                         "1")

        mark = cp3.stderr.count()
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        started = time.monotonic()  # Before phoenixctl starts: an upper bound.
        code, out, err = self.ctl(cp1, "apply", "-f", new)
        applied = time.monotonic()
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 2", out)
        ack = cp3.wait_for_log("node sidecar-1 ACKed RouteConfiguration version 2", timeout=1.0,
                               start=mark)
        acked = time.monotonic()
        self.assertIsNotNone(ack, f"no ACK through replica 3 within a second\n{self.all_logs()}")
        committed = cp1.wait_for_log("phoenix-cp: version 2: 1 resource change(s) by alice")
        self.assertIsNotNone(committed, cp1.logs())
        in_logs = (logged_at(ack) - logged_at(committed)).total_seconds()
        print(f"\n  commit on replica 1 -> ACK from the proxy on replica 3: "
              f"{in_logs * 1000:.0f} ms (log times); phoenixctl apply started -> ACK seen: "
              f"{(acked - started) * 1000:.0f} ms")
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=1), self.all_logs())
        for cp in (cp1, cp2, cp3):
            self.assertEqual(self.ctl_json(cp, "status")["version"], "2")
        # get works through any replica, showing the files as etcd names them.
        [got] = self.ctl_json(cp2, "get", "routes")
        self.assertEqual(got["file"], "routes.yaml")
        self.assertIn('"v2"', json.dumps(got["resource"]))

    def test_a_proxy_fails_over_when_its_replica_dies_and_no_request_fails(self):
        cp1, cp2, cp3 = self.start_replicas()
        px = self.start_proxy(cp1, cp2, cp3)
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.all_logs())
        self.assertTrue(wait_until(lambda: self.proxy_on(cp1) == ["sidecar-1"], timeout=5))

        failures, sent = [], [0]
        stop = threading.Event()

        def send():
            while not stop.is_set():
                try:
                    response = http_get(self.port, "/", timeout=2.0)
                    if response.status != 200:
                        failures.append(response.status)
                except OSError as e:
                    failures.append(repr(e))
                sent[0] += 1

        client = threading.Thread(target=send, daemon=True)
        client.start()
        self.assertTrue(wait_until(lambda: sent[0] > 20, timeout=5))
        killed = time.monotonic()
        cp1.kill()
        on = wait_until(lambda: ("cp2" if self.proxy_on(cp2) else "cp3" if self.proxy_on(cp3)
                                 else None), timeout=10, interval=0.01)
        failover = time.monotonic() - killed
        self.assertTrue(on, f"the proxy did not fail over\n{self.all_logs()}\n{px.logs()}")
        print(f"\n  failover: the proxy is on replica {on[-1]} "
              f"{failover * 1000:.0f} ms after replica 1 died")
        survivor = cp2 if on == "cp2" else cp3
        self.assertTrue(wait_until(lambda: "ads: connected to " + survivor.target in px.stderr_text(),
                                   timeout=5), px.logs())
        lines = px.stderr_text().splitlines()
        lost = next(l for l in lines if "ads: stream to " + cp1.target in l)
        back = next(l for l in lines if "ads: connected to " + survivor.target in l)
        print(f"  proxy log: stream to replica 1 lost -> connected to replica {on[-1]}: "
              f"{(logged_at(back) - logged_at(lost)).total_seconds() * 1000:.0f} ms")
        # The replica it moved to still pushes: a change through the other one reaches it.
        other = cp3 if survivor is cp2 else cp2
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("after-failover"))
        code, _, err = self.ctl(other, "apply", "-f", new)
        self.assertEqual(code, 0, err)
        self.assertTrue(wait_until(lambda: self.body() == "after-failover", timeout=2),
                        self.all_logs())
        before = sent[0]
        self.assertTrue(wait_until(lambda: sent[0] > before + 20, timeout=5))
        stop.set()
        client.join(timeout=5)
        self.assertEqual(failures, [], f"requests failed during the failover ({sent[0]} sent)")
        print(f"  {sent[0]} requests through the proxy, none failed")

    def test_rollback_through_one_replica_and_audit_through_another(self):
        cp1, cp2, cp3 = self.start_replicas()
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        code, _, err = self.ctl(cp1, "apply", "-f", new, who="alice")
        self.assertEqual(code, 0, err)
        code, out, err = self.ctl(cp2, "rollback", "1", who="bob")
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 3", out)
        self.assertTrue(wait_until(
            lambda: self.ctl_json(cp3, "status")["version"] == "3", timeout=2))
        self.assertIn('"v1"', json.dumps(self.ctl_json(cp3, "get", "routes")[0]["resource"]))
        entries = self.ctl_json(cp3, "audit", who="carol")["entries"]
        self.assertEqual([(e["who"], e["version"]) for e in entries],
                         [("seed", "1"), ("alice", "2"), ("bob", "3")])
        self.assertTrue(entries[2]["diff"].startswith("# rollback to version 1\n"), entries[2])
        # A refused change is audited too, with its principal, and changes nothing.
        bad = self.write(os.path.join(self.work, "bad.yaml"),
                         raw="route_configurations:\n- name: x\n  virtual_hostz: []\n")
        code, _, err = self.ctl(cp2, "apply", "-f", bad, who="carol")
        self.assertEqual(code, 1, err)
        self.assertIn("bad.yaml:3:3:", err)
        last = self.ctl_json(cp1, "audit")["entries"][-1]
        self.assertEqual(last["who"], "carol")
        self.assertTrue(last["refused"])
        self.assertEqual(self.ctl_json(cp1, "status")["version"], "3")

    def test_restarting_every_replica_keeps_versions_and_history(self):
        cp1, cp2, cp3 = self.start_replicas()
        for body in ("v2", "v3"):
            new = self.write(os.path.join(self.work, "routes.yaml"), routes(body))
            code, _, err = self.ctl(cp2, "apply", "-f", new)
            self.assertEqual(code, 0, err)
        for cp in (cp1, cp2, cp3):
            cp.close()
        self.replicas = []
        # Restarted without the seed directory (and with it: etcd has a version, it is ignored).
        cp1, cp2, cp3 = self.start_replicas()
        for cp in (cp1, cp2, cp3):
            self.assertEqual(self.ctl_json(cp, "status")["version"], "3")
        self.start_proxy(cp2)
        self.assertTrue(wait_until(lambda: self.body() == "v3", timeout=10), self.all_logs())
        code, out, err = self.ctl(cp3, "rollback", "2")
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 4", out)
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=2), self.all_logs())
        self.assertEqual([e["version"] for e in self.ctl_json(cp1, "audit")["entries"]],
                         ["1", "2", "3", "4"])

    def test_concurrent_applies_on_two_replicas_lose_no_update(self):
        cp1, cp2, _ = self.start_replicas()
        for round_ in range(3):
            a = self.write(os.path.join(self.work, f"a{round_}", "a.yaml"),
                           cluster("a", 1000 + round_))
            b = self.write(os.path.join(self.work, f"b{round_}", "b.yaml"),
                           cluster("b", 2000 + round_))
            runs = [subprocess.Popen([phoenixctl_bin(), "--server", cp.target, "--token-file",
                                      self.token_files["alice"], "apply", "-f", path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for cp, path in ((cp1, a), (cp2, b))]
            for run in runs:
                out, err = run.communicate(timeout=30)
                self.assertEqual(run.returncode, 0, f"{out}\n{err}\n{self.all_logs()}")
            # Both changes are in force, wherever they were applied.
            for cp in (cp1, cp2):
                self.assertTrue(wait_until(lambda: self.ports(cp) == (1000 + round_, 2000 + round_),
                                           timeout=2), self.all_logs())
        versions = [e["version"] for e in self.ctl_json(cp1, "audit")["entries"]]
        self.assertEqual(versions, [str(v) for v in range(1, 8)])
        conflicts = sum(cp.stderr.text().count("another replica committed") for cp in (cp1, cp2))
        print(f"\n  concurrent applies: {conflicts} conflict(s) seen and retried")

    def ports(self, cp):
        """The endpoint ports of clusters a and b, as replica ``cp`` serves them."""
        by_name = {r["name"]: r["resource"] for r in self.ctl_json(cp, "get", "clusters")}

        def port(name):
            if name not in by_name:
                return None
            endpoint = by_name[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            return endpoint["endpoint"]["address"]["socket_address"]["port_value"]
        return port("a"), port("b")

    def test_replicas_keep_serving_while_etcd_is_down_and_catch_up_after(self):
        cp1, cp2, _ = self.start_replicas()
        self.start_proxy(cp1)
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.all_logs())
        self.etcd.stop()
        self.assertTrue(cp1.wait_for_log("etcd watch on", timeout=5), cp1.logs())
        self.assertEqual(self.body(), "v1")
        self.assertEqual(self.ctl_json(cp1, "status")["version"], "1")
        new = self.write(os.path.join(self.work, "routes.yaml"), routes("v2"))
        code, _, err = self.ctl(cp2, "apply", "-f", new)
        self.assertEqual(code, 1, err)
        self.assertIn("nothing changed: etcd unreachable", err)
        mark = cp1.stderr.count()
        self.etcd.start()
        self.assertTrue(cp1.wait_for_log("watching etcd at", timeout=10, start=mark), cp1.logs())
        code, _, err = self.ctl(cp2, "apply", "-f", new)
        self.assertEqual(code, 0, err)
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=2), self.all_logs())


@unittest.skipUnless(etcd_available(), "etcd is not installed")
class ControlPlaneEtcdStartupTest(unittest.TestCase):
    def test_a_replica_started_before_etcd_serves_once_etcd_is_up(self):
        etcd = Etcd(start=False)
        self.addCleanup(etcd.close)
        cp = ControlPlane(None, etcd=etcd.endpoint, wait_ready=False)
        self.addCleanup(cp.close)
        self.assertTrue(cp.wait_for_log("etcd unreachable", timeout=5), cp.logs())
        etcd.start()
        up = time.monotonic()
        self.assertTrue(cp.wait_for_log("phoenix-cp: serving ADS on", timeout=5), cp.logs())
        print(f"\n  etcd healthy -> replica serving: {(time.monotonic() - up) * 1000:.0f} ms")


class ControlPlaneEtcdFlagsTest(unittest.TestCase):
    def run_cp(self, *args):
        return subprocess.run([phoenix_cp_bin(), *args], capture_output=True, text=True,
                              timeout=60)

    def test_flags_are_documented_and_checked(self):
        result = self.run_cp("--help")
        self.assertIn("--etcd URL[,URL...]", result.stdout)
        self.assertIn("--etcd-prefix P", result.stdout)
        result = self.run_cp("--etcd", "https://127.0.0.1:2379")
        self.assertEqual(result.returncode, 2)
        self.assertIn("TLS to etcd is not supported yet", result.stderr)
        result = self.run_cp("--etcd", "http://127.0.0.1:2379", "--audit-log", "/tmp/x")
        self.assertEqual(result.returncode, 2)
        self.assertIn("the audit trail is kept in etcd", result.stderr)

    def test_an_unreachable_etcd_at_startup_is_retried_then_fatal(self):
        started = time.monotonic()
        result = self.run_cp("--etcd", f"http://127.0.0.1:{free_port()}", "--listen",
                             "127.0.0.1:0")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("etcd unreachable", result.stderr)
        self.assertIn("gave up after 10 s: start etcd (or check --etcd)", result.stderr)
        self.assertLess(time.monotonic() - started, 20)


if __name__ == "__main__":
    unittest.main()
