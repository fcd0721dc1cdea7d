#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to HOST:PORT and hold them.

Each connection sends one `GET /` and reads the full response; after that it
stays open and idle. With --tls each connection first completes a full TLS
handshake (a fresh session each: nothing is resumed), verifying the server's
certificate for --server-name against --cafile when given. Prints "ready" on
stdout once all N have their response, then holds them until SIGTERM/SIGINT,
or until stdin reaches EOF when stdin is a pipe, fifo, socket or tty (so
`</dev/null` means "hold until signalled").
Stdlib only; used by tools/bench/run.sh and tls.sh to measure proxy RSS per idle conn.
"""
import argparse
import errno
import os
import resource
import selectors
import signal
import socket
import ssl
import stat
import sys
import time


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft < want:
        sys.exit(f"idle_conns: RLIMIT_NOFILE hard limit {hard} < {want} needed")


def response_complete(buf):
    """True once buf holds a whole response; raises on a non-2xx status."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buf[:head_end].decode("latin-1").lower().split("\r\n")
    status = head[0].split(" ")
    if len(status) < 2 or not status[1].startswith("2"):
        raise RuntimeError(f"bad status line: {head[0]!r}")
    body = buf[head_end + 4:]
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            return len(body) >= int(value)
        if name.strip() == "transfer-encoding" and "chunked" in value:
            return body.endswith(b"0\r\n\r\n")
    raise RuntimeError("response without Content-Length or chunked body")


class Conn:
    """One connection being opened: connect, [TLS handshake], request, response."""
    __slots__ = ("sock", "buf", "phase")

    def __init__(self, sock):
        self.sock, self.buf, self.phase = sock, bytearray(), "connect"


def recv_tls(s):
    """All the application data the TLS socket has now (b"" at EOF); None if none yet."""
    try:
        data = s.recv(65536)
    except ssl.SSLWantReadError:  # a record without application data, e.g. a TLS 1.3 ticket
        return None
    while data and s.pending():  # a response may span several records
        data += s.recv(65536)
    return data


def open_all(addr, count, window, timeout, tls=None, server_name=None):
    """Open `count` connections, at most `window` in flight at once."""
    request = f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    done, started, inflight, shown = [], 0, 0, False
    deadline = time.monotonic() + timeout
    while len(done) < count:
        while inflight < window and started < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, f"connect: {os.strerror(err)}")
            sel.register(s, selectors.EVENT_WRITE, Conn(s))
            started += 1
            inflight += 1
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            if c.phase == "connect":  # connect finished
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect: {os.strerror(err)}")
                if tls is None:
                    c.sock.send(request)  # tiny; always fits a fresh socket buffer
                    c.phase = "response"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                sel.unregister(c.sock)  # wrap_socket detaches the plain socket
                c.sock = tls.wrap_socket(c.sock, server_hostname=server_name,
                                         do_handshake_on_connect=False)
                c.phase = "handshake"
                sel.register(c.sock, selectors.EVENT_WRITE, c)
            if c.phase == "handshake":
                try:
                    c.sock.do_handshake()
                except ssl.SSLWantReadError:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                except ssl.SSLWantWriteError:
                    sel.modify(c.sock, selectors.EVENT_WRITE, c)
                    continue
                if not shown:
                    print(f"idle_conns: {c.sock.version()} {c.sock.cipher()[0]}", file=sys.stderr)
                    shown = True
                c.sock.send(request)  # tiny: one record into a fresh socket buffer
                c.phase = "response"
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            chunk = c.sock.recv(65536) if tls is None else recv_tls(c.sock)
            if chunk is None:
                continue
            if not chunk:
                raise RuntimeError("server closed connection before response")
            c.buf += chunk
            if response_complete(c.buf):
                sel.unregister(c.sock)
                done.append(c.sock)
                inflight -= 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(done)}/{count} ready after {timeout}s")
    sel.close()
    return done


def hold(conns, tls):
    """Block until signal / stdin EOF; report server-side closes on stderr."""
    sel = selectors.DefaultSelector()
    mode = os.fstat(0).st_mode
    if os.isatty(0) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    for s in conns:
        sel.register(s, selectors.EVENT_READ, "conn")
    closed = 0
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                if not os.read(0, 4096):
                    return
                continue
            if tls:  # a late TLS 1.3 ticket is not a close
                try:
                    if recv_tls(key.fileobj) is None:
                        continue
                except OSError:
                    pass
            # idle conn readable: the server closed (or sent junk)
            sel.unregister(key.fileobj)
            closed += 1
            print(f"idle_conns: server closed {closed} idle conns", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--window", type=int, default=256, help="max conns in flight while opening")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--tls", action="store_true", help="HTTPS: a full TLS handshake per conn")
    ap.add_argument("--cafile", help="with --tls: verify the server's certificate against this CA")
    ap.add_argument("--server-name", default="localhost", help="with --tls: SNI and name to verify")
    args = ap.parse_args()

    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2+, OpenSSL's default groups
        if args.cafile:
            tls.load_verify_locations(args.cafile)
        else:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    raise_nofile(args.count + 64)
    t0 = time.monotonic()
    conns = open_all((args.host, args.port), args.count, args.window, args.timeout,
                     tls, args.server_name)
    print(f"idle_conns: {len(conns)} conns open in {time.monotonic() - t0:.2f}s", file=sys.stderr)
    print("ready", flush=True)
    hold(conns, tls is not None)


if __name__ == "__main__":
    main()
