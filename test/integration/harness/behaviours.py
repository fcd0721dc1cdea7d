"""What ``UpstreamServer`` answers, chosen by the request path:

  /echo, /echo/...  200 JSON of the request (method, path, target, query, version, headers,
                    body_len, body_sha256, trailers, upstream, conn_id)
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
  /one-digit-status answers "HTTP/1.1 2 OK" (a malformed status line), with a body
  /two-spaces-status answers "HTTP/1.1  200 OK" (two spaces before the code), with a body
  /trailers         chunked response body "trailers body\\n" + trailer
                    x-upstream-trailer: yes
  anything else     200 "ok from <name>\\n"

Every response carries ``x-upstream-name: <name>``. Pattern bytes: ``harness.payload``.

Each behaviour takes ``(up, conn, req, keep_alive, head)``: the server, the connection, the
request record (body already read), whether the connection may stay open and whether the
request is a HEAD; it returns whether the connection stays open.
"""

import json
import re
import socket
import time
import urllib.parse

from .payload import iter_pattern


def respond(up, conn, req, keep_alive, head):
    """Answers ``req`` according to its path; returns whether the connection stays open."""
    path = req["path"]
    if path == "/echo" or path.startswith("/echo/"):
        return _echo(up, conn, req, keep_alive, head)
    behaviour = _BY_PATH.get(path)
    if behaviour is not None:
        return behaviour(up, conn, req, keep_alive, head)
    m = re.fullmatch(r"/status/(\d{3})", path)
    if m:
        return _status(up, conn, int(m.group(1)), keep_alive, head)
    m = re.fullmatch(r"/(bytes|chunked|noclen)/(\d+)", path)
    if m:
        return _GENERATED[m.group(1)](up, conn, int(m.group(2)), keep_alive, head)
    body = f"ok from {up.name}\n".encode()
    up.send_response(conn, 200, [("Content-Type", "text/plain"),
                                 ("Content-Length", str(len(body)))], body, keep_alive, head)
    return keep_alive


def _json(up, conn, value, keep_alive, head):
    body = json.dumps(value).encode()
    up.send_response(conn, 200, [("Content-Type", "application/json"),
                                 ("Content-Length", str(len(body)))], body, keep_alive, head)
    return keep_alive


def _echo(up, conn, req, keep_alive, head):
    return _json(up, conn, {
        "method": req["method"], "path": req["path"], "target": req["target"],
        "query": req["query"], "version": req["version"], "headers": req["headers"],
        "body_len": req["body_len"], "body_sha256": req["body_sha256"],
        "trailers": req["trailers"], "upstream": up.name, "conn_id": req["conn_id"],
    }, keep_alive, head)


def _sink(up, conn, req, keep_alive, head):
    # The body was streamed in (and paused, with ?pause_after=N) by the server.
    return _json(up, conn, {"body_len": req["body_len"], "body_sha256": req["body_sha256"]},
                 keep_alive, head)


def _close(up, conn, req, keep_alive, head):
    conn.shutdown(socket.SHUT_RDWR)
    return False


def _respond_close(up, conn, req, keep_alive, head):
    # Answers with Connection: close, then closes: the next request needs a new connection.
    body = b"closing\n"
    up.send_response(conn, 200, [("Content-Length", str(len(body)))], body, keep_alive=False)
    return False


def _status(up, conn, status, keep_alive, head):
    if 100 <= status < 200 or status in (204, 304):
        up.send_response(conn, status, [], b"", keep_alive, head)
    else:
        body = f"status {status}\n".encode()
        up.send_response(conn, status, [("Content-Length", str(len(body)))], body,
                         keep_alive, head)
    return keep_alive


def _bytes(up, conn, n, keep_alive, head):
    up.send_response(conn, 200, [("Content-Type", "application/octet-stream"),
                                 ("Content-Length", str(n))], b"", keep_alive)
    if not head:
        for piece in iter_pattern(n):
            conn.sendall(piece)
            up.count_written(len(piece))
    return keep_alive


def _chunked(up, conn, n, keep_alive, head):
    up.send_response(conn, 200, [("Content-Type", "application/octet-stream"),
                                 ("Transfer-Encoding", "chunked")], b"", keep_alive)
    if not head:
        chunk = min(65536, max(1, (n + 4) // 5))  # >= 5 chunks when small
        for piece in iter_pattern(n):
            for off in range(0, len(piece), chunk):
                part = piece[off:off + chunk]
                conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                up.count_written(len(part))
        conn.sendall(b"0\r\n\r\n")
    return keep_alive


def _noclen(up, conn, n, keep_alive, head):
    # Read-to-close: the end of the body is the end of the connection.
    up.send_response(conn, 200, [("Content-Type", "application/octet-stream")], b"",
                     keep_alive=False)
    if not head:
        for piece in iter_pattern(n):
            conn.sendall(piece)
            up.count_written(len(piece))
    conn.shutdown(socket.SHUT_WR)
    return False


def _slow(up, conn, req, keep_alive, head):
    ms = int(urllib.parse.parse_qs(req["query"]).get("ms", ["100"])[0])
    # The delay is the behaviour under test (a slow origin), not synchronisation.
    time.sleep(ms / 1000.0)
    body = b"slow ok\n"
    up.send_response(conn, 200, [("Content-Length", str(len(body)))], body, keep_alive, head)
    return keep_alive


def _linger_close(up, conn, req, keep_alive, head):
    # Announces Connection: close but keeps the socket open (not reading) for a while:
    # a proxy that wrongly pools this connection would hang on it.
    body = b"linger close\n"
    up.send_response(conn, 200, [("Content-Length", str(len(body)))], body, keep_alive=False)
    up.stopped.wait(timeout=5)
    return False


def _setcookies(up, conn, req, keep_alive, head):
    body = b"cookies\n"
    up.send_response(conn, 200, [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2, c=3"),
                                 ("Content-Length", str(len(body)))], body, keep_alive, head)
    return keep_alive


def _hop_response(up, conn, req, keep_alive, head):
    body = b"hop\n"
    up.send_response(conn, 200, [("Connection", "x-up-hop"), ("Keep-Alive", "timeout=5"),
                                 ("Proxy-Connection", "keep-alive"), ("X-Up-Hop", "1"),
                                 ("X-Up-Normal", "1"), ("Content-Length", str(len(body)))],
                     body, keep_alive, head)
    return keep_alive


def _garbage(up, conn, req, keep_alive, head):
    conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    conn.shutdown(socket.SHUT_RDWR)
    return False


def _raw_status_line(line):
    def answer(up, conn, req, keep_alive, head):
        conn.sendall(line + b"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad")
        conn.shutdown(socket.SHUT_RDWR)
        return False
    return answer


def _trailers(up, conn, req, keep_alive, head):
    up.send_response(conn, 200, [("Transfer-Encoding", "chunked"),
                                 ("Trailer", "x-upstream-trailer")], b"", keep_alive)
    if not head:
        conn.sendall(b"9\r\ntrailers \r\n5\r\nbody\n\r\n"
                     b"0\r\nx-upstream-trailer: yes\r\n\r\n")
    return keep_alive


_BY_PATH = {
    "/sink": _sink,
    "/close": _close,
    "/respond-close": _respond_close,
    "/slow": _slow,
    "/linger-close": _linger_close,
    "/setcookies": _setcookies,
    "/hop-response": _hop_response,
    "/garbage": _garbage,
    "/one-digit-status": _raw_status_line(b"HTTP/1.1 2 OK"),
    "/two-spaces-status": _raw_status_line(b"HTTP/1.1  200 OK"),
    "/trailers": _trailers,
}

_GENERATED = {"bytes": _bytes, "chunked": _chunked, "noclen": _noclen}
