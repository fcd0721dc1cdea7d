"""Origins behind the proxy: ``UpstreamServer``, a threaded raw-socket HTTP/1.1 server that
records every request and answers by path (``harness.behaviours``), and the real demo app
(``start_demo_app``)."""

import hashlib
import http.client
import socket
import ssl
import subprocess
import threading
import urllib.parse

from .behaviours import respond
from .process import demo_app_bin, die_with_parent, port_accepting, wait_until


class _UpstreamProtocolError(Exception):
    pass


class _Reader:
    """Buffered reads from a socket: lines and bounded pieces."""

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
    path, query, version, headers [(name, value)], body_len, body_sha256, trailers, conn_id).
    Bodies are streamed and hashed, never held in memory. What it answers depends on the path:
    see ``harness.behaviours``; ``fail_next`` overrides that for the next requests.
    """

    def __init__(self, name="upstream", sock_buf=None, port=0, tls=None):
        """``tls``: an ``ssl.SSLContext`` (server side) to speak HTTPS; the handshake errors go
        to ``tls_errors`` and each connection's peer certificate to ``tls_peers[conn_id]``."""
        self.name = name
        self.tls = tls
        self.tls_errors = []
        self.tls_peers = {}
        self.requests = []
        self.errors = []
        self.accepted = 0
        self.bytes_written = 0            # body bytes written by /bytes, /chunked and /noclen
        self.gate = threading.Event()     # releases /sink?pause_after=N
        self.paused = threading.Event()   # set when a /sink reached its pause point
        self.stopped = threading.Event()  # set by stop()
        self._lock = threading.Lock()
        self._conns = set()
        self._conn_ids = 0
        self._failures = []               # queued overrides, see fail_next()
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
        self.stopped.set()
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

    # -- for the behaviours ---------------------------------------------------------
    def send_response(self, conn, status, headers, body=b"", keep_alive=True, head=False):
        """Writes a response head (with ``x-upstream-name``) and, unless ``head``, ``body``."""
        reason = http.client.responses.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}", f"x-upstream-name: {self.name}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not keep_alive:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            data += body
        conn.sendall(data)

    def count_written(self, n):
        """Adds ``n`` generated body bytes to ``bytes_written``."""
        with self._lock:
            self.bytes_written += n

    # -- internals ------------------------------------------------------------------
    def _accept_loop(self):
        while not self.stopped.is_set():
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
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with self._lock:
                    self.tls_errors.append(str(e))
                conn.close()
                return
            with self._lock:
                self.tls_peers[conn_id] = conn.getpeercert()
        reader = _Reader(conn)
        try:
            while not self.stopped.is_set():
                if not self._handle_one(conn, reader, conn_id):
                    break
        except (EOFError, ConnectionError, socket.timeout, OSError):
            pass
        except _UpstreamProtocolError as e:
            if not self.stopped.is_set():
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

    def _read_head(self, reader, conn_id):
        """Reads a request line and headers; returns the request record (without body)."""
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
        return {"method": method, "target": target, "path": split.path, "query": split.query,
                "version": version, "headers": headers, "body_len": None,
                "body_sha256": None, "trailers": [], "conn_id": conn_id}

    def _read_body(self, reader, req, pause_after=None):
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

    def _handle_one(self, conn, reader, conn_id):
        """Reads and answers one request; returns whether the connection stays open."""
        req = self._read_head(reader, conn_id)
        with self._lock:
            self.requests.append(req)
        headers = req["headers"]
        lower = {}
        for k, v in headers:
            lower.setdefault(k.lower(), v)

        conn_hdr = ",".join(v for k, v in headers if k.lower() == "connection").lower()
        conn_tokens = {t.strip() for t in conn_hdr.split(",")}
        if req["version"] == "HTTP/1.1":
            keep_alive = "close" not in conn_tokens
        else:
            keep_alive = "keep-alive" in conn_tokens
        has_body = "transfer-encoding" in lower or lower.get("content-length", "0") != "0"
        if lower.get("expect", "").lower() == "100-continue" and has_body:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        pause_after = None
        if req["path"] == "/sink":
            query = urllib.parse.parse_qs(req["query"])
            if "pause_after" in query:
                pause_after = int(query["pause_after"][0])
        self._read_body(reader, req, pause_after=pause_after)
        head = req["method"] == "HEAD"

        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure == "close":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if failure is not None:
            body = f"failing with {failure}\n".encode()
            self.send_response(conn, failure, [("Content-Length", str(len(body)))], body,
                               keep_alive, head)
            return keep_alive
        return respond(self, conn, req, keep_alive, head)


def start_demo_app(port, name, timeout=10.0):
    """Starts the real demo app (tools/demo_app) on ``port``; returns its Popen once the port
    accepts connections. The caller kills it."""
    proc = subprocess.Popen([demo_app_bin(), "--port", str(port), "--name", name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    if not wait_until(lambda: port_accepting(port), timeout=timeout):
        proc.kill()
        proc.wait()
        raise AssertionError(f"demo app did not start on port {port}")
    return proc
