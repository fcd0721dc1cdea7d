"""gRPC with the real implementation for Node (grpc-js), from test/integration/grpc/:
``GrpcServer`` runs server.js (phoenix.test.Echo, echo.proto, over h2c) and ``grpc_call`` /
``start_grpc_call`` run the one-shot client.js against a target (the server itself, or a
phoenix listener in front of it).

The npm modules come from tools/setup.sh (``npm ci`` in test/integration/grpc, from the
package-lock.json there). When they or node are missing, ``require_node`` fails the test
with that hint rather than skipping it: a skip would pass a run that never exercised gRPC."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

from .process import REPO_ROOT, die_with_parent, tail_text, wait_until

GRPC_DIR = os.path.join(REPO_ROOT, "test", "integration", "grpc")
SERVER_JS = os.path.join(GRPC_DIR, "server.js")
CLIENT_JS = os.path.join(GRPC_DIR, "client.js")

METHODS = ("Unary", "ServerStream", "ClientStream", "Bidi")

# gRPC status codes (the "code" of a grpc_call result).
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16


def node_bin():
    """$PHOENIX_NODE, else ``node`` on PATH (None when there is none)."""
    return os.environ.get("PHOENIX_NODE") or shutil.which("node")


def require_node():
    """The node binary, once node and the npm modules are there; AssertionError otherwise."""
    node = node_bin()
    if not node:
        raise AssertionError(
            "node not found (set PHOENIX_NODE, or run tools/setup.sh: it installs nodejs "
            "when there is none)")
    for module in ("@grpc/grpc-js", "@grpc/proto-loader"):
        if not os.path.isfile(os.path.join(GRPC_DIR, "node_modules", module, "package.json")):
            raise AssertionError(
                f"npm module {module} missing in {GRPC_DIR}/node_modules: run tools/setup.sh "
                "(it runs `npm ci` there)")
    return node


class GrpcServer:
    """server.js on 127.0.0.1: the constructor returns once it listens (its stdout line
    ``{"port": N}``), or raises AssertionError with its stderr.

    Its stats file is rewritten before each answer, so once a client has its status,
    ``calls``/``statuses`` count that call. A cancellation reaches the server after the
    client has its status: wait for it with ``wait_cancelled``."""

    def __init__(self, name="grpc", port=0, ready_timeout=10.0):
        node = require_node()
        self.name = name
        self.tmpdir = tempfile.mkdtemp(prefix=f"phoenix-grpc-{name}-")
        self.stats_path = os.path.join(self.tmpdir, "stats.json")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.port = None
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [node, SERVER_JS, "--port", str(port), "--stats-file", self.stats_path],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=GRPC_DIR,
                preexec_fn=die_with_parent)
        wait_until(lambda: self._read_port() or self.proc.poll() is not None,
                   timeout=ready_timeout)
        if self.port is None:
            rc = self.proc.poll()
            self.stop()
            logs = self.logs()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            state = f"exited with code {rc}" if rc is not None else \
                f"not listening within {ready_timeout}s"
            raise AssertionError(f"gRPC server {name} {state}\n{logs}")

    def _read_port(self):
        try:
            with open(self.stdout_path) as f:
                line = f.readline()
        except OSError:
            return None
        if not line.endswith("\n"):
            return None  # not written whole yet
        self.port = json.loads(line)["port"]
        return self.port

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    # -- what it saw ------------------------------------------------------------------
    def stats(self):
        """The stats file (see server.js): pid, port, active, calls, status, cancelled."""
        with open(self.stats_path) as f:
            return json.load(f)

    def calls(self, method=None):
        """Calls that arrived, for one method or all."""
        calls = self.stats()["calls"]
        return calls[method] if method else sum(calls.values())

    def statuses(self, method):
        """{status code: calls of ``method`` that finished with it} (cancelled ones aside)."""
        return {int(code): n for code, n in self.stats()["status"][method].items()}

    def cancelled(self, method=None):
        counts = self.stats()["cancelled"]
        return counts[method] if method else sum(counts.values())

    def active(self):
        return self.stats()["active"]

    def wait_calls(self, method, n, timeout=5.0):
        """True once at least ``n`` calls of ``method`` arrived."""
        return bool(wait_until(lambda: self.calls(method) >= n, timeout=timeout))

    def wait_cancelled(self, method, n=1, timeout=5.0):
        """True once at least ``n`` calls of ``method`` were cancelled."""
        return bool(wait_until(lambda: self.cancelled(method) >= n, timeout=timeout))

    # -- process ----------------------------------------------------------------------
    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM (it exits 0 within about a second), SIGKILL past ``timeout``; returns the
        exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        """``stop`` and remove its files (stats, logs): what a cleanup calls."""
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def logs(self, max_lines=30):
        """The tail of its stderr (one JSON line per finished call), for failure messages."""
        return (f"--- gRPC server {self.name} stderr ({self.stderr_path}):\n"
                f"{tail_text(self.stderr_path, max_lines)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class GrpcCall:
    """client.js running in the background (``start_grpc_call``); ``result()`` waits for it."""

    def __init__(self, cmd, timeout):
        self.cmd = cmd
        self.timeout = timeout
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, cwd=GRPC_DIR, text=True,
                                     preexec_fn=die_with_parent)

    def result(self):
        """The client's JSON line as a dict: code, details, replies, trailers, headers,
        elapsed_ms. AssertionError when the client fails or outlives its timeout."""
        try:
            out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(
                f"gRPC client still running after {self.timeout}s: {self.cmd}\n{err}")
        lines = out.splitlines()
        if self.proc.returncode != 0 or len(lines) != 1:
            raise AssertionError(
                f"gRPC client exited {self.proc.returncode}: {self.cmd}\n"
                f"stdout: {out!r}\nstderr: {err}")
        return json.loads(lines[0])


def start_grpc_call(target, method, message="hello", count=None, delay_ms=None,
                    fail_code=None, fail_times=None, deadline_ms=None, cancel_after_ms=None,
                    metadata=None, timeout=20.0):
    """Starts one call with client.js and returns its ``GrpcCall`` at once.

    ``target``: "host:port" or a port on 127.0.0.1; ``method``: one of ``METHODS``;
    ``metadata``: a dict or (key, value) pairs (a key ending in -bin takes base64). The other
    options are client.js's (see there and echo.proto)."""
    node = require_node()
    if method not in METHODS:
        raise ValueError(f"unknown gRPC method {method!r}")
    if isinstance(target, int):
        target = f"127.0.0.1:{target}"
    cmd = [node, CLIENT_JS, "--target", target, "--method", method, "--message", message]
    for flag, value in (("--count", count), ("--delay-ms", delay_ms),
                        ("--fail-code", fail_code), ("--fail-times", fail_times),
                        ("--deadline-ms", deadline_ms), ("--cancel-after-ms", cancel_after_ms)):
        if value is not None:
            cmd += [flag, str(int(value))]
    pairs = metadata.items() if isinstance(metadata, dict) else (metadata or ())
    for key, value in pairs:
        cmd += ["--metadata", f"{key}={value}"]
    return GrpcCall(cmd, timeout)


def grpc_call(target, method, **options):
    """One call with client.js (see ``start_grpc_call``); returns its result dict:
    ``{"code", "details", "replies": [{"message", "index", "peer_headers"}], "trailers",
    "headers", "elapsed_ms"}``. Any gRPC status is a result, not an error."""
    return start_grpc_call(target, method, **options).result()


def peer_headers(result, index=0):
    """The request metadata the server saw for a call (from reply ``index``), as a dict with
    the pseudo keys ":authority", ":path", ":peer" and maybe ":deadline-ms". grpc-js keeps
    te, content-type, grpc-timeout, grpc-encoding, grpc-accept-encoding and accept-encoding
    from its applications, so they are never there."""
    return json.loads(result["replies"][index]["peer_headers"])
