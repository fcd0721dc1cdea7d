"""Integration-test harness for Phoenix (Python 3 standard library only).

Everything here talks to real processes over 127.0.0.1:

* ``Phoenix``: writes a config file, starts ``$PHOENIX_BIN -c FILE --concurrency N
  --log-level L``, captures stdout (access log) and stderr (process log) to files and waits
  until ``GET /ready`` on the admin port answers 200.
* ``UpstreamServer``: a threaded raw-socket HTTP/1.1 origin server with behaviours chosen by
  path (see its docstring). Request bodies are always streamed and hashed, never held.
* ``ClientConn`` / ``raw_request`` / ``parse_response``: a tiny HTTP/1.1 client on raw sockets
  for keep-alive, pipelining and malformed-input tests.
* ``PhoenixTestCase``: a ``unittest.TestCase`` base class whose test methods report the tail
  of phoenix's stderr/stdout (and the upstreams' protocol errors) when they fail.

Synchronisation is always done by polling something observable with a deadline
(``wait_until``), never by sleeping for a fixed time.
"""

import functools
import hashlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MiB = 1024 * 1024


# --------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------

def phoenix_bin():
    return os.environ.get("PHOENIX_BIN") or os.path.join(REPO_ROOT, "build", "phoenix")


def demo_app_bin():
    return os.environ.get("PHOENIX_DEMO_APP") or os.path.join(REPO_ROOT, "build", "phoenix-demo-app")


def require_phoenix_bin():
    path = phoenix_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            f"phoenix binary not found or not executable at {path!r} "
            "(build it, or set PHOENIX_BIN to its absolute path)")
    return path


_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Chosen below the kernel's ephemeral range (32768+), so the client and upstream
    connections the tests open never take it between this check and the bind, and never
    the same one twice in a process."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found")


def wait_until(predicate, timeout=5.0, interval=0.02):
    """Polls ``predicate`` until it returns something truthy or the deadline passes.

    Returns the last value returned by ``predicate`` (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def port_accepting(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_refused(port, host="127.0.0.1", timeout=0.5):
    """True when a TCP connect to the port is actively refused (nothing listening)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def tail_text(path, max_lines=40, max_bytes=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-max_lines:])


# Deterministic body pattern: byte i of a body is (i % 251). PATTERN_BLOCK's length is a
# multiple of 251, so concatenated blocks continue the pattern.
PATTERN_BLOCK = bytes(i % 251 for i in range(251 * 1024))


def iter_pattern(n, block=PATTERN_BLOCK):
    remaining = n
    while remaining > 0:
        piece = block if remaining >= len(block) else block[:remaining]
        remaining -= len(piece)
        yield piece


def pattern_bytes(n):
    return b"".join(iter_pattern(n))


@functools.lru_cache(maxsize=None)
def pattern_sha256(n):
    h = hashlib.sha256()
    for piece in iter_pattern(n):
        h.update(piece)
    return h.hexdigest()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def read_vmrss_kb(pid):
    """Resident set size of a process in KiB (None when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples /proc/PID/status VmRSS in a background thread and keeps the maximum."""

    def __init__(self, pid, interval=0.02):
        self.pid = pid
        self.interval = interval
        self.max_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            kb = read_vmrss_kb(self.pid)
            if kb is not None:
                self.max_kb = max(self.max_kb, kb)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)


# --------------------------------------------------------------------------------------
# Config builders (Bootstrap in the proto3 JSON mapping; written as JSON, which is YAML)
# --------------------------------------------------------------------------------------

def socket_address(port, host="127.0.0.1"):
    return {"socket_address": {"address": host, "port_value": port}}


def make_config(admin_port, listeners=(), clusters=(), drain_timeout=None, node=None):
    cfg = {
        "node": node or {"id": "phoenix-it", "cluster": "phoenix-it"},
        "admin": {"address": socket_address(admin_port)},
        "static_resources": {"listeners": list(listeners), "clusters": list(clusters)},
    }
    if drain_timeout is not None:
        cfg["drain_timeout"] = drain_timeout
    return cfg


def make_listener(name, port, virtual_hosts, stat_prefix=None, access_log=True,
                  per_connection_buffer_limit_bytes=None, **hcm_options):
    """A listener with its HTTP connection manager. ``hcm_options`` are HttpConnectionManager
    fields (request_headers_timeout, idle_timeout, max_request_headers_kb, ...)."""
    hcm = {
        "stat_prefix": stat_prefix or name,
        "route_config": {"name": f"{name}_routes", "virtual_hosts": list(virtual_hosts)},
    }
    if access_log:
        hcm["access_log"] = [{"path": "/dev/stdout"}]
    hcm.update(hcm_options)
    listener = {"name": name, "address": socket_address(port), "http_connection_manager": hcm}
    if per_connection_buffer_limit_bytes is not None:
        listener["per_connection_buffer_limit_bytes"] = per_connection_buffer_limit_bytes
    return listener


def make_cluster(name, ports, lb_policy=None, connect_timeout="1s", **options):
    endpoints = [{"lb_endpoints": [{"endpoint": {"address": socket_address(p)}} for p in ports]}]
    cluster = {
        "name": name,
        "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
    }
    if lb_policy is not None:
        cluster["lb_policy"] = lb_policy
    cluster.update(options)
    return cluster


def virtual_host(name, domains, routes, **options):
    vh = {"name": name, "domains": list(domains), "routes": list(routes)}
    vh.update(options)
    return vh


def route(match, cluster=None, name=None, **extra):
    """A route; with ``cluster`` it forwards (``route: {cluster: ...}``), otherwise ``extra``
    must contain the action (route / redirect / direct_response)."""
    r = {"match": match}
    if name:
        r["name"] = name
    if cluster is not None:
        r["route"] = {"cluster": cluster}
    r.update(extra)
    return r


def direct_response(status, body=None):
    dr = {"status": status}
    if body is not None:
        dr["body"] = {"inline_string": body}
    return dr


def header_option(key, value, append=None):
    opt = {"header": {"key": key, "value": value}}
    if append is not None:
        opt["append"] = append
    return opt


def simple_config(listen_port, admin_port, upstream_ports, *, routes=None, virtual_hosts=None,
                  cluster_name="app", lb_policy=None, connect_timeout="1s",
                  cluster_options=None, extra_clusters=(), drain_timeout=None,
                  access_log=True, listener_name="ingress", stat_prefix="ingress",
                  per_connection_buffer_limit_bytes=None, **hcm_options):
    """One listener "ingress" (stat_prefix "ingress") with one virtual host "*" routing prefix
    "/" to cluster "app" whose endpoints are ``upstream_ports``.

    ``routes`` replaces the routes of the "*" virtual host, ``virtual_hosts`` replaces all
    virtual hosts; other keyword options are HttpConnectionManager fields."""
    if virtual_hosts is None:
        if routes is None:
            routes = [route({"prefix": "/"}, cluster=cluster_name, name="default")]
        virtual_hosts = [virtual_host("default", ["*"], routes)]
    listener = make_listener(listener_name, listen_port, virtual_hosts, stat_prefix=stat_prefix,
                             access_log=access_log,
                             per_connection_buffer_limit_bytes=per_connection_buffer_limit_bytes,
                             **hcm_options)
    clusters = [make_cluster(cluster_name, upstream_ports, lb_policy=lb_policy,
                             connect_timeout=connect_timeout, **(cluster_options or {}))]
    clusters.extend(extra_clusters)
    return make_config(admin_port, [listener], clusters, drain_timeout=drain_timeout)


# --------------------------------------------------------------------------------------
# Access log
# --------------------------------------------------------------------------------------

ACCESS_LOG_RE = re.compile(
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" '
    r'(?P<status>\d+) (?P<flags>\S+) (?P<bytes_rx>\d+) (?P<bytes_tx>\d+) (?P<duration>\S+) '
    r'"(?P<xff>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" '
    r'"(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)"\s*$')


def parse_access_log_line(line):
    m = ACCESS_LOG_RE.match(line)
    if not m:
        return None
    entry = m.groupdict()
    entry["status"] = int(entry["status"])
    entry["flag_list"] = [] if entry["flags"] == "-" else entry["flags"].split(",")
    return entry


# --------------------------------------------------------------------------------------
# The phoenix process
# --------------------------------------------------------------------------------------

def _die_with_parent():
    """preexec_fn: SIGKILL the child if the test process dies (no orphaned proxies)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class PhoenixStartError(AssertionError):
    pass


class Phoenix:
    """A running phoenix process with its config file and captured output."""

    def __init__(self, config, admin_port=None, concurrency=2, log_level="info",
                 extra_args=(), start=True, ready_timeout=15.0, listener_ports=None):
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
        if start:
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
                                     preexec_fn=_die_with_parent)
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


# --------------------------------------------------------------------------------------
# HTTP/1.1 parsing helpers
# --------------------------------------------------------------------------------------

class IncompleteResponse(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, headers, body=b"", trailers=None,
                 chunked=False):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) as received
        self.body = body
        self.trailers = trailers or []  # list of (name, value)
        self.chunked = chunked

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        body = self.body[:200]
        return (f"<Response {self.version} {self.status} {self.reason!r} "
                f"headers={self.headers!r} body[:200]={body!r}>")


def _parse_head(data, start=0):
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise IncompleteResponse()
    block = bytes(data[start:end]).decode("latin-1")
    lines = block.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return version, status, reason, headers, end + 4


def _response_has_no_body(status, head):
    return head or 100 <= status < 200 or status in (204, 304)


def _framing(headers):
    te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
    if te:
        return "chunked" if te.replace(" ", "").split(",")[-1] == "chunked" else "close"
    cls = [v for k, v in headers if k.lower() == "content-length"]
    if cls:
        if len(set(c.strip() for c in cls)) != 1 or not cls[0].strip().isdigit():
            raise ValueError(f"bad content-length {cls!r}")
        return int(cls[0])
    return "close"


def parse_response(data, head=False, eof=False, start=0):
    """Parses one response from ``data[start:]``. Returns ``(Response, end_offset)``.

    Raises IncompleteResponse when more data is needed; ``eof`` says the connection is closed
    (so a read-to-close body ends at the end of ``data``). Interim 1xx responses are returned
    like any other response."""
    version, status, reason, headers, pos = _parse_head(data, start)
    if _response_has_no_body(status, head):
        return Response(version, status, reason, headers), pos
    framing = _framing(headers)
    if isinstance(framing, int):
        if len(data) - pos < framing:
            raise IncompleteResponse()
        return Response(version, status, reason, headers, bytes(data[pos:pos + framing])), \
            pos + framing
    if framing == "close":
        if not eof:
            raise IncompleteResponse()
        return Response(version, status, reason, headers, bytes(data[pos:])), len(data)
    # chunked
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            raise IncompleteResponse()
        size_text = bytes(data[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError(f"bad chunk size line {bytes(data[pos:line_end])!r}")
        pos = line_end + 2
        if size == 0:
            trailers = []
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    raise IncompleteResponse()
                line = bytes(data[pos:line_end]).decode("latin-1")
                pos = line_end + 2
                if line == "":
                    return Response(version, status, reason, headers, bytes(body), trailers,
                                    chunked=True), pos
                name, _, value = line.partition(":")
                trailers.append((name.strip(), value.strip()))
        if len(data) < pos + size + 2:
            raise IncompleteResponse()
        body += data[pos:pos + size]
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk not terminated by CRLF")
        pos += size + 2


def parse_responses(data, heads=(), eof=True):
    """All complete final responses in ``data`` (interim 1xx skipped). ``heads``: indexes of
    responses that answer HEAD requests."""
    out = []
    pos = 0
    while pos < len(data):
        try:
            resp, pos = parse_response(data, head=(len(out) in heads), eof=eof, start=pos)
        except IncompleteResponse:
            break
        if 100 <= resp.status < 200:
            continue
        out.append(resp)
    return out


class RawResult(bytes):
    """Bytes read from a raw connection; ``.closed``: the peer closed (EOF or reset) before the
    timeout; ``.reset``: the connection was reset; ``.elapsed``: seconds until EOF/timeout."""
    closed = False
    reset = False
    elapsed = 0.0

    def response(self, head=False):
        resp, _ = parse_response(self, head=head, eof=True)
        return resp


def raw_statuses(port, data, heads=(), timeout=5.0):
    """Sends raw bytes (one or more pipelined requests) and returns the status of every
    complete response, in order; ``heads``: indexes of responses to HEAD requests."""
    res = raw_request(port, data, timeout=timeout)
    if not res:
        raise AssertionError(f"no response to {data!r}")
    return [r.status for r in parse_responses(res, heads=heads, eof=True)]


def raw_request(port, data, timeout=5.0, host="127.0.0.1"):
    """Connects, sends ``data`` and reads until the peer closes or ``timeout`` passes."""
    t0 = time.monotonic()
    chunks = []
    closed = reset = False
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the peer may reject before reading everything; read what it answered
        deadline = t0 + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            s.settimeout(remaining)
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = reset = True
                break
            if not d:
                closed = True
                break
            chunks.append(d)
    result = RawResult(b"".join(chunks))
    result.closed = closed
    result.reset = reset
    result.elapsed = time.monotonic() - t0
    return result


class ClientConn:
    """A raw HTTP/1.1 client connection (keep-alive, pipelining, partial sends)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, rcvbuf=None, sndbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1",
                host="test.local"):
        lines = [f"{method} {target} {version}"]
        names = {k.lower() for k, _ in headers}
        if host is not None and "host" not in names:
            lines.append(f"Host: {host}")
        lines += [f"{k}: {v}" for k, v in headers]
        if body is not None and "content-length" not in names \
                and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.send(data + (body or b""))

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(262144)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
        else:
            self.buf += d
        return d

    def read_response(self, head=False, skip_interim=True, timeout=None):
        """Reads one response (skipping 1xx unless ``skip_interim`` is false)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                resp, end = parse_response(self.buf, head=head, eof=self.eof)
            except IncompleteResponse:
                if self.eof:
                    raise ConnectionError(
                        f"connection closed before a complete response; got {bytes(self.buf[:300])!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout(
                        f"no complete response within {timeout}s; got {bytes(self.buf[:300])!r}")
                self._recv(remaining)
                continue
            del self.buf[:end]
            if skip_interim and 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    def read_head_streaming(self, timeout=None):
        """Reads only a response head; returns (Response without body, body iterator).
        The iterator yields body pieces as they arrive (Content-Length, chunked or
        read-to-close), without accumulating them."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                version, status, reason, headers, pos = _parse_head(self.buf)
                break
            except IncompleteResponse:
                if self.eof or time.monotonic() > deadline:
                    raise ConnectionError(f"no response head; got {bytes(self.buf[:300])!r}")
                self._recv(deadline - time.monotonic())
        del self.buf[:pos]
        resp = Response(version, status, reason, headers)
        framing = _framing(headers)
        return resp, self._iter_body(framing)

    def _iter_body(self, framing):
        if isinstance(framing, int):
            remaining = framing
            while remaining > 0:
                if not self.buf:
                    if self.eof or not self._recv(self.timeout):
                        raise ConnectionError(f"closed with {remaining} body bytes missing")
                piece = bytes(self.buf[:remaining])
                del self.buf[:len(piece)]
                remaining -= len(piece)
                yield piece
        elif framing == "close":
            while True:
                if self.buf:
                    piece = bytes(self.buf)
                    self.buf.clear()
                    yield piece
                if self.eof or not self._recv(self.timeout):
                    return
        else:
            while True:
                while b"\r\n" not in self.buf:
                    if self.eof or not self._recv(self.timeout):
                        raise ConnectionError("closed inside chunked body")
                idx = self.buf.find(b"\r\n")
                size = int(bytes(self.buf[:idx]).split(b";")[0].strip(), 16)
                del self.buf[:idx + 2]
                if size == 0:
                    while True:
                        while b"\r\n" not in self.buf:
                            if self.eof or not self._recv(self.timeout):
                                raise ConnectionError("closed inside trailers")
                        idx = self.buf.find(b"\r\n")
                        del self.buf[:idx + 2]
                        if idx == 0:
                            return
                remaining = size
                while remaining > 0:
                    if not self.buf:
                        if self.eof or not self._recv(self.timeout):
                            raise ConnectionError("closed inside chunk")
                    piece = bytes(self.buf[:remaining])
                    del self.buf[:len(piece)]
                    remaining -= len(piece)
                    yield piece
                while len(self.buf) < 2:
                    if self.eof or not self._recv(self.timeout):
                        raise ConnectionError("closed after chunk data")
                if bytes(self.buf[:2]) != b"\r\n":
                    raise ValueError("chunk not terminated by CRLF")
                del self.buf[:2]

    def wait_closed(self, timeout=3.0):
        """Reads (discarding nothing: data is kept in ``buf``) until EOF or timeout.
        Returns True if the peer closed the connection."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self._recv(remaining)
            except socket.timeout:
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_request(port, method, path, headers=None, body=None, timeout=10.0,
                 host="127.0.0.1"):
    """One request on a fresh connection with http.client; returns a Response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(f"HTTP/{r.version // 10}.{r.version % 10}", r.status, r.reason,
                        list(r.getheaders()), data)
    finally:
        conn.close()


def http_get(port, path, headers=None, timeout=10.0):
    return http_request(port, "GET", path, headers=headers, timeout=timeout)


# --------------------------------------------------------------------------------------
# The test upstream
# --------------------------------------------------------------------------------------

class _UpstreamProtocolError(Exception):
    pass


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        d = self.sock.recv(262144)
        if not d:
            raise EOFError()
        self.buf += d

    def readline(self, limit=256 * 1024):
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line = bytes(self.buf[:idx + 1])
                del self.buf[:idx + 1]
                return line
            if len(self.buf) > limit:
                raise _UpstreamProtocolError("line too long")
            self.fill()

    def read_some(self, n):
        if not self.buf:
            self.fill()
        if len(self.buf) <= n:
            piece = bytes(self.buf)
            self.buf.clear()
        else:
            piece = bytes(self.buf[:n])
            del self.buf[:n]
        return piece


class UpstreamServer:
    """A threaded HTTP/1.1 origin server on 127.0.0.1 (keep-alive, pipelining).

    Every request is recorded in ``requests`` (thread-safe list of dicts: method, target,
    path, query, version, headers [(name, value)], body_len, body_sha256, trailers, conn_id,
    expect_continue_sent). Bodies are streamed and hashed, never held in memory.

    Behaviour by path:
      /echo, /echo/...  200 JSON of the request (method, path, target, headers, body_len,
                        body_sha256, trailers, upstream, conn_id)
      /status/NNN       status NNN (body "status NNN\\n" unless no body is allowed)
      /bytes/N          N pattern bytes with Content-Length
      /chunked/N        N pattern bytes, Transfer-Encoding: chunked, several chunks
      /noclen/N         N pattern bytes, no Content-Length, then closes (read-to-close)
      /sink             streams the body in; JSON {body_len, body_sha256};
                        ?pause_after=N: after N body bytes waits for ``gate`` to be set
      /close            reads the request, then closes the connection without answering
      /slow?ms=N        answers "slow ok\\n" after N ms
      /linger-close     answers with "Connection: close" but keeps the socket open ~5 s
      /setcookies       two Set-Cookie headers
      /hop-response     response with hop-by-hop headers (Connection: x-up-hop, Keep-Alive,
                        Proxy-Connection, X-Up-Hop) and X-Up-Normal
      /garbage          answers "THIS IS NOT HTTP" and closes
      /trailers         chunked response body "trailers body\\n" + trailer
                        x-upstream-trailer: yes
      anything else     200 "ok from <name>\\n"
    Every response carries ``x-upstream-name: <name>``.
    """

    def __init__(self, name="upstream", sock_buf=None, port=0):
        self.name = name
        self.requests = []
        self.errors = []
        self.accepted = 0
        self.bytes_written = 0          # body bytes written by /bytes and /chunked
        self.gate = threading.Event()   # releases /sink?pause_after=N
        self.paused = threading.Event() # set when a /sink reached its pause point
        self._lock = threading.Lock()
        self._conns = set()
        self._stopping = False
        self._stopped = threading.Event()
        self._conn_ids = 0
        self._failures = []             # queued overrides, see fail_next()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sock_buf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sock_buf)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sock_buf)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"upstream-{name}")
        self._thread.start()

    # -- public ---------------------------------------------------------------------
    def reset(self):
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.accepted = 0
            self.bytes_written = 0
        self.gate.clear()
        self.paused.clear()

    def fail_next(self, count, status=None, close=False):
        """The next ``count`` requests, whatever their path, get ``status`` (or, with
        ``close``, the connection closed without an answer)."""
        with self._lock:
            self._failures.extend([("close" if close else status)] * count)

    def clear_failures(self):
        with self._lock:
            self._failures.clear()

    def requests_snapshot(self):
        with self._lock:
            return list(self.requests)

    def request_count(self):
        with self._lock:
            return len(self.requests)

    def find_request(self, pred):
        for r in self.requests_snapshot():
            if pred(r):
                return r
        return None

    def stop(self):
        self._stopping = True
        self._stopped.set()
        self.gate.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)

    # -- internals ------------------------------------------------------------------
    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conn_ids += 1  # unlike ``accepted``, never reset: ids stay unique
                conn_id = self._conn_ids
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True).start()

    def _error(self, msg):
        with self._lock:
            self.errors.append(msg)

    def _serve(self, conn, conn_id):
        conn.settimeout(60)
        reader = _Reader(conn)
        try:
            while not self._stopping:
                if not self._handle_one(conn, reader, conn_id):
                    break
        except (EOFError, ConnectionError, socket.timeout, OSError):
            pass
        except _UpstreamProtocolError as e:
            if not self._stopping:
                self._error(f"conn {conn_id}: {e}")
        except Exception as e:  # a bug in the test server must be visible
            self._error(f"conn {conn_id}: unexpected {e!r}")
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _read_body(self, reader, conn, req, pause_after=None):
        """Streams the request body; records body_len/body_sha256/trailers in ``req``."""
        h = hashlib.sha256()
        total = 0
        trailers = []
        headers = req["headers"]
        te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
        cls = [v.strip() for k, v in headers if k.lower() == "content-length"]

        def consume(piece):
            nonlocal total
            h.update(piece)
            before = total
            total += len(piece)
            if pause_after is not None and before < pause_after <= total:
                self.paused.set()
                self.gate.wait(timeout=60)

        if te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                raise _UpstreamProtocolError(f"unsupported transfer-encoding {te!r}")
            if cls:
                raise _UpstreamProtocolError("proxy sent both content-length and chunked")
            while True:
                line = reader.readline()
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise _UpstreamProtocolError(f"bad chunk size line {line!r}")
                if size == 0:
                    while True:
                        tl = reader.readline()
                        if tl in (b"\r\n", b"\n"):
                            break
                        name, _, value = tl.decode("latin-1").rstrip("\r\n").partition(":")
                        trailers.append((name.strip(), value.strip()))
                    break
                remaining = size
                while remaining > 0:
                    piece = reader.read_some(remaining)
                    remaining -= len(piece)
                    consume(piece)
                if reader.readline() not in (b"\r\n", b"\n"):
                    raise _UpstreamProtocolError("chunk data not followed by CRLF")
        elif cls:
            if len(set(cls)) != 1 or not cls[0].isdigit():
                raise _UpstreamProtocolError(f"bad content-length from proxy {cls!r}")
            remaining = int(cls[0])
            while remaining > 0:
                piece = reader.read_some(min(remaining, 1 << 20))
                remaining -= len(piece)
                consume(piece)
        req["body_len"] = total
        req["body_sha256"] = h.hexdigest()
        req["trailers"] = trailers

    def _send(self, conn, status, headers, body=b"", keep_alive=True, head=False):
        reason = http.client.responses.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}", f"x-upstream-name: {self.name}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not keep_alive:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            data += body
        conn.sendall(data)

    def _handle_one(self, conn, reader, conn_id):
        line = reader.readline()
        while line in (b"\r\n", b"\n"):
            line = reader.readline()
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _UpstreamProtocolError(f"bad request line {line!r}")
        method, target, version = parts
        headers = []
        while True:
            hl = reader.readline()
            if hl in (b"\r\n", b"\n"):
                break
            text = hl.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip():
                raise _UpstreamProtocolError(f"bad header line {hl!r}")
            headers.append((name, value.strip()))
        split = urllib.parse.urlsplit(target)
        path = split.path
        query = urllib.parse.parse_qs(split.query)
        lower = {}
        for k, v in headers:
            lower.setdefault(k.lower(), v)
        req = {"method": method, "target": target, "path": path, "query": split.query,
               "version": version, "headers": headers, "body_len": None,
               "body_sha256": None, "trailers": [], "conn_id": conn_id,
               "expect_continue_sent": False}
        with self._lock:
            self.requests.append(req)

        conn_hdr = ",".join(v for k, v in headers if k.lower() == "connection").lower()
        conn_tokens = {t.strip() for t in conn_hdr.split(",")}
        if version == "HTTP/1.1":
            keep_alive = "close" not in conn_tokens
        else:
            keep_alive = "keep-alive" in conn_tokens
        has_body = "transfer-encoding" in lower or lower.get("content-length", "0") != "0"
        if lower.get("expect", "").lower() == "100-continue" and has_body:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req["expect_continue_sent"] = True

        pause_after = None
        if path == "/sink" and "pause_after" in query:
            pause_after = int(query["pause_after"][0])
        self._read_body(reader, conn, req, pause_after=pause_after)
        head = method == "HEAD"

        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure == "close":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if failure is not None:
            body = f"failing with {failure}\n".encode()
            self._send(conn, failure, [("Content-Length", str(len(body)))], body, keep_alive, head)
            return keep_alive
        if path == "/close":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if path == "/echo" or path.startswith("/echo/"):
            body = json.dumps({
                "method": method, "path": path, "target": target, "query": split.query,
                "version": version, "headers": headers, "body_len": req["body_len"],
                "body_sha256": req["body_sha256"], "trailers": req["trailers"],
                "upstream": self.name, "conn_id": conn_id,
            }).encode()
            self._send(conn, 200, [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(body)))], body, keep_alive, head)
            return keep_alive
        if path == "/sink":
            body = json.dumps({"body_len": req["body_len"],
                               "body_sha256": req["body_sha256"]}).encode()
            self._send(conn, 200, [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(body)))], body, keep_alive, head)
            return keep_alive
        m = re.fullmatch(r"/status/(\d{3})", path)
        if m:
            status = int(m.group(1))
            if 100 <= status < 200 or status in (204, 304):
                self._send(conn, status, [], b"", keep_alive, head)
            else:
                body = f"status {status}\n".encode()
                self._send(conn, status, [("Content-Length", str(len(body)))], body,
                           keep_alive, head)
            return keep_alive
        m = re.fullmatch(r"/(bytes|chunked|noclen)/(\d+)", path)
        if m:
            kind, n = m.group(1), int(m.group(2))
            if kind == "bytes":
                self._send(conn, 200, [("Content-Type", "application/octet-stream"),
                                       ("Content-Length", str(n))], b"", keep_alive)
                if not head:
                    for piece in iter_pattern(n):
                        conn.sendall(piece)
                        with self._lock:
                            self.bytes_written += len(piece)
                return keep_alive
            if kind == "chunked":
                self._send(conn, 200, [("Content-Type", "application/octet-stream"),
                                       ("Transfer-Encoding", "chunked")], b"", keep_alive)
                if not head:
                    chunk = min(65536, max(1, (n + 4) // 5))  # >= 5 chunks when small
                    for piece in iter_pattern(n):
                        for off in range(0, len(piece), chunk):
                            part = piece[off:off + chunk]
                            conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                            with self._lock:
                                self.bytes_written += len(part)
                    conn.sendall(b"0\r\n\r\n")
                return keep_alive
            # noclen: read-to-close
            self._send(conn, 200, [("Content-Type", "application/octet-stream")], b"",
                       keep_alive=False)
            if not head:
                for piece in iter_pattern(n):
                    conn.sendall(piece)
                    with self._lock:
                        self.bytes_written += len(piece)
            conn.shutdown(socket.SHUT_WR)
            return False
        if path == "/slow":
            ms = int(query.get("ms", ["100"])[0])
            # The delay is the behaviour under test (a slow origin), not synchronisation.
            time.sleep(ms / 1000.0)
            body = b"slow ok\n"
            self._send(conn, 200, [("Content-Length", str(len(body)))], body, keep_alive, head)
            return keep_alive
        if path == "/linger-close":
            # Announces Connection: close but keeps the socket open (not reading) for a while:
            # a proxy that wrongly pools this connection would hang on it.
            body = b"linger close\n"
            self._send(conn, 200, [("Content-Length", str(len(body)))], body, keep_alive=False)
            self._stopped.wait(timeout=5)
            return False
        if path == "/setcookies":
            body = b"cookies\n"
            self._send(conn, 200, [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2, c=3"),
                                   ("Content-Length", str(len(body)))], body, keep_alive, head)
            return keep_alive
        if path == "/hop-response":
            body = b"hop\n"
            self._send(conn, 200, [("Connection", "x-up-hop"), ("Keep-Alive", "timeout=5"),
                                   ("Proxy-Connection", "keep-alive"), ("X-Up-Hop", "1"),
                                   ("X-Up-Normal", "1"), ("Content-Length", str(len(body)))],
                       body, keep_alive, head)
            return keep_alive
        if path == "/garbage":
            conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if path == "/trailers":
            self._send(conn, 200, [("Transfer-Encoding", "chunked"),
                                   ("Trailer", "x-upstream-trailer")], b"", keep_alive)
            if not head:
                conn.sendall(b"9\r\ntrailers \r\n5\r\nbody\n\r\n"
                             b"0\r\nx-upstream-trailer: yes\r\n\r\n")
            return keep_alive
        body = f"ok from {self.name}\n".encode()
        self._send(conn, 200, [("Content-Type", "text/plain"),
                               ("Content-Length", str(len(body)))], body, keep_alive, head)
        return keep_alive


# --------------------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------------------

def _attach_logs(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except AssertionError as e:
            # Same exception (and traceback), with the diagnostics appended to its message.
            first = e.args[0] if e.args else ""
            e.args = (f"{first}\n{self.diagnostics()}",) + tuple(e.args[1:])
            raise
        except Exception as e:
            raise AssertionError(f"{type(e).__name__}: {e}\n{self.diagnostics()}") from e
    return wrapper


class PhoenixTestCase(unittest.TestCase):
    """Base class: test methods failing get phoenix's log tails appended to the message.

    Use ``start_phoenix``/``start_upstream`` (per test) or their class variants (from
    ``setUpClass``); everything started is stopped by the cleanups."""

    longMessage = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, fn in list(vars(cls).items()):
            if name.startswith("test") and callable(fn):
                setattr(cls, name, _attach_logs(fn))

    # per-test resources
    def start_phoenix(self, config, **kwargs):
        px = Phoenix(config, **kwargs)
        self.__dict__.setdefault("_phoenixes", []).append(px)
        self.addCleanup(px.close)
        return px

    def start_upstream(self, name="app", **kwargs):
        up = UpstreamServer(name, **kwargs)
        self.__dict__.setdefault("_upstreams", []).append(up)
        self.addCleanup(up.stop)
        return up

    # per-class resources (call from setUpClass)
    @classmethod
    def start_class_phoenix(cls, config, **kwargs):
        px = Phoenix(config, **kwargs)
        if "_class_phoenixes" not in cls.__dict__:
            cls._class_phoenixes = []
        cls._class_phoenixes.append(px)
        cls.addClassCleanup(px.close)
        return px

    @classmethod
    def start_class_upstream(cls, name="app", **kwargs):
        up = UpstreamServer(name, **kwargs)
        if "_class_upstreams" not in cls.__dict__:
            cls._class_upstreams = []
        cls._class_upstreams.append(up)
        cls.addClassCleanup(up.stop)
        return up

    def _all(self, attr, class_attr):
        return list(type(self).__dict__.get(class_attr, [])) + list(self.__dict__.get(attr, []))

    def diagnostics(self):
        parts = []
        for px in self._all("_phoenixes", "_class_phoenixes"):
            parts.append(px.logs())
        for up in self._all("_upstreams", "_class_upstreams"):
            if up.errors:
                parts.append(f"--- upstream {up.name} protocol errors: {up.errors[:10]!r}")
        return "\n".join(parts)

    def assertNoUpstreamErrors(self, *upstreams):
        for up in upstreams:
            self.assertEqual(up.errors, [], f"upstream {up.name} saw malformed traffic")

    def assertAlive(self, px):
        self.assertTrue(px.running(), f"phoenix is not running any more (rc={px.proc.poll()})")
