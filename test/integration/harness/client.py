"""A tiny HTTP/1.1 client: raw sockets for exact bytes on the wire (keep-alive, pipelining,
partial sends, malformed input) and ``http.client`` for plain requests."""

import http.client
import socket
import time

from .http1 import (IncompleteResponse, Response, body_framing, parse_head, parse_response,
                    parse_responses)


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


def raw_request(port, data, timeout=5.0, host="127.0.0.1", half_close=False):
    """Connects, sends ``data`` (then, with ``half_close``, shuts down its sending side) and
    reads until the peer closes or ``timeout`` passes."""
    t0 = time.monotonic()
    chunks = []
    closed = reset = False
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
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
                        "connection closed before a complete response; "
                        f"got {bytes(self.buf[:300])!r}")
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
                version, status, reason, headers, pos = parse_head(self.buf)
                break
            except IncompleteResponse:
                if self.eof or time.monotonic() > deadline:
                    raise ConnectionError(f"no response head; got {bytes(self.buf[:300])!r}")
                self._recv(deadline - time.monotonic())
        del self.buf[:pos]
        resp = Response(version, status, reason, headers)
        framing = body_framing(headers)
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
