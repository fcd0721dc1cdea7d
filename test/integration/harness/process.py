"""Processes, ports and readiness: where the binaries are, free TCP ports, polling with a
deadline (``wait_until``) and observing a running process (``RssSampler``)."""

import os
import random
import signal
import socket
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


# --------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------

def phoenix_bin():
    """$PHOENIX_BIN (set by ctest), else build/phoenix."""
    return os.environ.get("PHOENIX_BIN") or os.path.join(REPO_ROOT, "build", "phoenix")


def phoenix_cp_bin():
    """$PHOENIX_CP_BIN (set by ctest), else build/phoenix-cp."""
    return os.environ.get("PHOENIX_CP_BIN") or os.path.join(REPO_ROOT, "build", "phoenix-cp")


def phoenixctl_bin():
    """$PHOENIXCTL_BIN (set by ctest), else build/phoenixctl."""
    return os.environ.get("PHOENIXCTL_BIN") or os.path.join(REPO_ROOT, "build", "phoenixctl")


def demo_app_bin():
    """$PHOENIX_DEMO_APP (set by ctest), else build/phoenix-demo-app."""
    return (os.environ.get("PHOENIX_DEMO_APP")
            or os.path.join(REPO_ROOT, "build", "phoenix-demo-app"))


def require_phoenix_bin():
    path = phoenix_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            f"phoenix binary not found or not executable at {path!r} "
            "(build it, or set PHOENIX_BIN to its absolute path)")
    return path


def die_with_parent():
    """preexec_fn: SIGKILL the child if the test process dies (no orphaned processes)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------------------
# Ports and readiness
# --------------------------------------------------------------------------------------

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


def free_port_range(n):
    """The first of `n` consecutive TCP ports on 127.0.0.1 that were free a moment ago (a
    supervised app's port_range), above free_port()'s and below the ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(32100, 32700)
        try:
            for port in range(base, base + n):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range found")


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
    """True when a TCP connect to the port succeeds."""
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


# --------------------------------------------------------------------------------------
# Observing a process
# --------------------------------------------------------------------------------------

def tail_text(path, max_lines=40, max_bytes=64 * 1024):
    """The last ``max_lines`` lines of a (log) file, for failure messages."""
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
