"""The phoenix process under test: ``Phoenix`` writes its config file, launches it, waits
until it is ready, and reads its admin endpoints and logs."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from .process import die_with_parent, require_phoenix_bin, tail_text, wait_until

# Access log entries in the default format (stdout).
ACCESS_LOG_RE = re.compile(
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" '
    r'(?P<status>\d+) (?P<flags>\S+) (?P<bytes_rx>\d+) (?P<bytes_tx>\d+) (?P<duration>\S+) '
    r'"(?P<xff>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" '
    r'"(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<tls_version>\S+) '
    r'"(?P<peer_principal>[^"]*)" "(?P<policy_rule>[^"]*)"\s*$')


def parse_access_log_line(line):
    """The fields of one access log line (None when it does not match the format)."""
    m = ACCESS_LOG_RE.match(line)
    if not m:
        return None
    entry = m.groupdict()
    entry["status"] = int(entry["status"])
    entry["flag_list"] = [] if entry["flags"] == "-" else entry["flags"].split(",")
    return entry


class PhoenixStartError(AssertionError):
    """phoenix exited, or did not become ready in time."""


class Phoenix:
    """A running phoenix process with its config file and captured output.

    ``config`` is a dict (see ``harness.config``) or YAML text; with text, pass
    ``admin_port`` and, for ``port()``, ``listener_ports`` ({listener name: port}). The
    constructor returns once ``GET /ready`` answers 200 (PhoenixStartError otherwise)."""

    def __init__(self, config, admin_port=None, concurrency=2, log_level="info",
                 extra_args=(), ready_timeout=15.0, listener_ports=None):
        self.tmpdir = tempfile.mkdtemp(prefix="phoenix-it-")
        self.config_path = os.path.join(self.tmpdir, "phoenix.yaml")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.concurrency = concurrency
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.proc = None
        self._out = self._err = None
        self.config = None
        self._listener_ports = dict(listener_ports or {})
        if admin_port is None:
            if not isinstance(config, dict):
                raise ValueError("admin_port is required when the config is YAML text")
            admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.admin_port = admin_port
        self.write_config(config)
        self.start(ready_timeout)

    # -- config file --------------------------------------------------------------
    def write_config(self, config):
        if isinstance(config, dict):
            self.config = config
            text = json.dumps(config, indent=2)
        else:
            text = config
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    # -- process ------------------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        return [require_phoenix_bin(), "-c", self.config_path, "--concurrency",
                str(self.concurrency), "--log-level", self.log_level, *self.extra_args]

    def start(self, ready_timeout=15.0):
        cmd = self.command()
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.tmpdir,
                                     preexec_fn=die_with_parent)
        self.wait_ready(ready_timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise PhoenixStartError(
                    f"phoenix exited with code {rc} before becoming ready\n{self.logs()}")
            try:
                status, _ = self.admin_get("/ready", timeout=1.0)
                if status == 200:
                    return
                last = f"/ready answered {status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.02)
        raise PhoenixStartError(
            f"phoenix not ready within {timeout}s (last: {last})\n{self.logs()}")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends ``sig`` and waits; returns the exit code (the SIGKILL code if it had to be
        killed after ``timeout``)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for f in (self._out, self._err):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def reload_with(self, config):
        """Rewrites the config file (atomically) and sends SIGHUP."""
        self.write_config(config)
        os.kill(self.proc.pid, signal.SIGHUP)

    # -- ports --------------------------------------------------------------------
    def port(self, listener_name="ingress"):
        if listener_name in self._listener_ports:
            return self._listener_ports[listener_name]
        if self.config is None:
            raise KeyError(f"unknown listener {listener_name!r} (YAML text config: "
                           "pass listener_ports=)")
        for listener in self.config["static_resources"]["listeners"]:
            if listener["name"] == listener_name:
                return listener["address"]["socket_address"]["port_value"]
        raise KeyError(listener_name)

    # -- admin --------------------------------------------------------------------
    def _admin(self, method, path, body=None, timeout=5.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def admin_get(self, path, timeout=5.0):
        return self._admin("GET", path, timeout=timeout)

    def admin_post(self, path, body=b"", timeout=10.0):
        return self._admin("POST", path, body=body, timeout=timeout)

    def stats(self):
        status, body = self.admin_get("/stats")
        if status != 200:
            raise AssertionError(f"/stats answered {status}: {body[:500]}")
        result = {}
        for line in body.splitlines():
            m = re.match(r"^\s*(\S+):\s+(-?\d+)\s*$", line)
            if m:
                result[m.group(1)] = int(m.group(2))
        return result

    def stat(self, name, default=0):
        return self.stats().get(name, default)

    def wait_for_stat(self, name, predicate, timeout=5.0):
        """Polls /stats until ``predicate(value)``; returns the last value seen."""
        last = [None]

        def check():
            last[0] = self.stats().get(name)
            return last[0] is not None and predicate(last[0])

        wait_until(check, timeout)
        return last[0]

    def config_dump(self):
        status, body = self.admin_get("/config_dump")
        if status != 200:
            raise AssertionError(f"/config_dump answered {status}: {body[:500]}")
        return json.loads(body)

    def config_version(self):
        """The "version" of /config_dump (as an int when it is numeric)."""
        v = self.config_dump().get("version")
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        return v

    # -- logs ---------------------------------------------------------------------
    def stdout_text(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def access_log(self):
        """Parsed access log entries (stdout lines that match the default format)."""
        entries = []
        for line in self.stdout_text().splitlines():
            e = parse_access_log_line(line)
            if e:
                entries.append(e)
        return entries

    def wait_access_log(self, predicate, timeout=5.0):
        """Polls stdout for an access log entry matching ``predicate``; returns it or None."""
        found = [None]

        def check():
            for e in self.access_log():
                if predicate(e):
                    found[0] = e
                    return True
            return False

        wait_until(check, timeout)
        return found[0]

    def logs(self, lines=40):
        rc = self.proc.poll() if self.proc else None
        state = "running" if self.proc and rc is None else f"exited rc={rc}"
        return (f"--- phoenix (pid {self.pid}, {state}) config {self.config_path}\n"
                f"--- stderr tail:\n{tail_text(self.stderr_path, lines)}\n"
                f"--- stdout tail:\n{tail_text(self.stdout_path, lines)}")
