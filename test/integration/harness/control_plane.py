"""phoenix-cp and a real xDS client for it: ``ControlPlane`` runs the binary on a resource
directory (ADS on a port it picks) and ``AdsClient`` runs grpc/ads_client.js (grpc-js) against
it. Both collect their output lines as they come, and ``wait_for_line`` waits for one (with a
deadline, never a fixed sleep)."""

import json
import os
import subprocess
import threading
import time

from .grpc import GRPC_DIR, require_node
from .process import die_with_parent, phoenix_cp_bin

ADS_CLIENT_JS = os.path.join(GRPC_DIR, "ads_client.js")


class LineCollector:
    """Reads a pipe on a thread and keeps its lines; waiters are woken per line."""

    def __init__(self, pipe):
        self.lines = []
        self.closed = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self._cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.closed = True
            self._cv.notify_all()

    def wait_for(self, predicate, timeout=5.0, start=0):
        """The first line from index ``start`` on that satisfies ``predicate`` (None on
        timeout or when the pipe closes first)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            index = start
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return self.lines[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return None
                self._cv.wait(remaining)

    def count(self):
        with self._cv:
            return len(self.lines)

    def text(self):
        with self._cv:
            return "\n".join(self.lines)


class ControlPlane:
    """phoenix-cp --resources DIR --listen 127.0.0.1:0; ready once it prints its port. With
    ``etcd`` (an endpoint URL), a replica of the HA mode: --etcd URL, and --resources DIR only
    when given (it seeds an empty etcd)."""

    def __init__(self, resources_dir, audit_log=None, extra_args=(), wait_ready=True,
                 listen="127.0.0.1:0", etcd=None):
        if etcd is None:
            self.audit_log = audit_log or os.path.join(resources_dir, "audit.jsonl")
            args = [phoenix_cp_bin(), "--resources", resources_dir, "--listen", listen,
                    "--audit-log", self.audit_log, *extra_args]
        else:
            self.audit_log = None
            args = [phoenix_cp_bin(), "--etcd", etcd, "--listen", listen, *extra_args]
            if resources_dir:
                args += ["--resources", resources_dir]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        self.stderr = LineCollector(self.proc.stderr)
        self.port = None
        if wait_ready:
            line = self.stderr.wait_for(lambda l: "phoenix-cp: serving ADS on" in l, timeout=10)
            if line is None:
                raise AssertionError(f"phoenix-cp did not start:\n{self.stderr.text()}")
            self.port = int(line.split(":")[-1].split(",")[0])

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def wait_for_log(self, text, timeout=5.0, start=0):
        return self.stderr.wait_for(lambda l: text in l, timeout=timeout, start=start)

    def audit_lines(self):
        with open(self.audit_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def kill(self):
        """Dies at once (SIGKILL), as a crashed control plane would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def logs(self):
        return f"--- phoenix-cp stderr ---\n{self.stderr.text()}"


class AdsClient:
    """node ads_client.js: one ADS stream; ``responses`` are its JSON lines."""

    def __init__(self, target, node, *args):
        node_bin = require_node()
        self.proc = subprocess.Popen([node_bin, ADS_CLIENT_JS, "--target", target, "--node", node,
                                      *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.stdout = LineCollector(self.proc.stdout)

    def wait_for_response(self, type_name, version=None, timeout=5.0, start=0):
        """The first response of ``type_name`` (with ``version``, when given), as a dict."""
        def matches(line):
            try:
                response = json.loads(line)
            except ValueError:
                return False
            return (response.get("type") == type_name
                    and (version is None or response.get("version_info") == version))
        line = self.stdout.wait_for(matches, timeout=timeout, start=start)
        return json.loads(line) if line is not None else None

    def responses(self):
        out = []
        for line in self.stdout.text().splitlines():
            try:
                response = json.loads(line)
            except ValueError:
                continue
            if "type" in response:
                out.append(response)
        return out

    def kill(self):
        """Dies at once (SIGKILL), as a crashed control plane would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # Half-closes the stream: the client ends.
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        try:
            self.proc.stdin.close()  # Also when the stream ended on its own (a refusal).
        except OSError:
            pass
        self.proc.stdout.close()

    def logs(self):
        return f"--- ads_client.js ---\n{self.stdout.text()}"


def ads_bootstrap(admin_port, targets, node_id="sidecar-1", token=None, channel_credentials=None,
                  metadata=()):
    """A phoenix bootstrap that takes everything from phoenix-cp over ADS (Envoy's shape), from
    each of ``targets`` ("host:port") in turn: with a bearer ``token`` (initial_metadata), extra
    ``metadata`` entries, and ``channel_credentials`` (TLS), when given."""
    initial_metadata = list(metadata)
    if token is not None:
        initial_metadata.append({"key": "authorization", "value": f"Bearer {token}"})
    services = []
    for target in targets:
        google_grpc = {"target_uri": target}
        if channel_credentials is not None:
            google_grpc["channel_credentials"] = channel_credentials
        service = {"google_grpc": google_grpc}
        if initial_metadata:
            service["initial_metadata"] = initial_metadata
        services.append(service)
    return {
        "node": {"id": node_id, "cluster": "web"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "dynamic_resources": {
            "lds_config": {"ads": {}},
            "cds_config": {"ads": {}},
            "ads_config": {
                "api_type": "GRPC",
                "grpc_services": services,
                "reconnect_base_interval": "0.05s",
                "reconnect_max_interval": "0.2s",
            },
        },
    }


def http_body(port, path="/"):
    """The body of a 200 answer to GET ``path`` (decoded); None for anything else."""
    from harness.client import http_get
    try:
        response = http_get(port, path, timeout=2.0)
    except OSError:
        return None
    return response.body.decode() if response.status == 200 else None


def write_resource_file(path, document=None, raw=None):
    """Writes a resource file as phoenix-cp wants to see it change: whole (a temp name it
    ignores, then a rename). ``document`` as JSON (YAML reads it), or ``raw`` text."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(raw if raw is not None else json.dumps(document, indent=1))
    os.rename(path + ".tmp", path)
    return path


def rds_listener(port, name="ingress", route_config_name="main"):
    """A plaintext listener on 127.0.0.1:``port`` whose routes come by name (RDS)."""
    return {"name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "http_connection_manager": {"stat_prefix": name,
                                        "rds": {"route_config_name": route_config_name}}}
