"""A real etcd for phoenix-cp's HA mode: Debian's etcd-server (/usr/bin/etcd) on 127.0.0.1 in a
temporary data directory, on free client and peer ports; ready once ``etcdctl endpoint
health`` says so (polled with a deadline). ``etcdctl`` runs etcd's own client against it, to
look at the keys phoenix-cp writes."""

import os
import shutil
import subprocess
import tempfile

from .process import die_with_parent, free_port, wait_until

ETCD_BIN = os.environ.get("ETCD_BIN") or "/usr/bin/etcd"
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN") or "/usr/bin/etcdctl"


def etcd_available():
    return os.access(ETCD_BIN, os.X_OK) and os.access(ETCDCTL_BIN, os.X_OK)


class Etcd:
    """One etcd member. ``stop`` and ``start`` keep the data directory and the ports, so a
    restarted etcd has the same keys at the same address."""

    def __init__(self, start=True):
        self.dir = tempfile.mkdtemp(prefix="phoenix-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.proc = None
        if start:
            self.start()

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [ETCD_BIN, "--name", "phoenix-test", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"phoenix-test={peer}", "--log-level", "warn"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     preexec_fn=die_with_parent)
        log.close()
        if not wait_until(self.healthy, timeout=20, interval=0.05):
            raise AssertionError(f"etcd did not become healthy:\n{self.logs()}")

    def healthy(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"etcd exited ({self.proc.returncode}):\n{self.logs()}")
        done = subprocess.run([ETCDCTL_BIN, "--endpoints", self.endpoint,
                               "--dial-timeout", "1s", "endpoint", "health"],
                              capture_output=True, text=True, timeout=10,
                              env={**os.environ, "ETCDCTL_API": "3"})
        return done.returncode == 0

    def etcdctl(self, *args):
        """etcdctl ARGS against this etcd; its stdout (raises when it fails)."""
        done = subprocess.run([ETCDCTL_BIN, "--endpoints", self.endpoint, *args],
                              capture_output=True, text=True, timeout=10,
                              env={**os.environ, "ETCDCTL_API": "3"})
        if done.returncode != 0:
            raise AssertionError(f"etcdctl {args}: {done.stderr}")
        return done.stdout

    def keys(self, prefix):
        return self.etcdctl("get", "--prefix", "--keys-only", prefix).split()

    def stop(self):
        """Kills it at once (SIGKILL), as a lost etcd would be."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "--- etcd ---\n" + "".join(f.readlines()[-30:])
        except OSError:
            return "--- etcd: no log ---"
