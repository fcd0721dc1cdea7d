#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to HOST:PORT and hold them.

Each connection sends one `GET /` and reads the full response; after that it
stays open and idle. Prints "ready" on stdout once all N have their response,
then holds them until SIGTERM/SIGINT, or until stdin reaches EOF when stdin is
a pipe, fifo, socket or tty (so `</dev/null` means "hold until signalled").
Stdlib only; used by tools/bench/run.sh to measure proxy RSS per idle conn.
"""
import argparse
import errno
import os
import resource
import selectors
import signal
import socket
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


def open_all(addr, count, window, timeout):
    """Open `count` connections, at most `window` in flight at once."""
    request = f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    done, started, inflight = [], 0, 0
    deadline = time.monotonic() + timeout
    while len(done) < count:
        while inflight < window and started < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, f"connect: {os.strerror(err)}")
            sel.register(s, selectors.EVENT_WRITE, bytearray())
            started += 1
            inflight += 1
        for key, events in sel.select(timeout=1.0):
            s, buf = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:  # connect finished
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect: {os.strerror(err)}")
                s.send(request)  # tiny; always fits a fresh socket buffer
                sel.modify(s, selectors.EVENT_READ, buf)
                continue
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("server closed connection before response")
            buf += chunk
            if response_complete(buf):
                sel.unregister(s)
                done.append(s)
                inflight -= 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(done)}/{count} ready after {timeout}s")
    sel.close()
    return done


def hold(conns):
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
            else:  # idle conn readable: the server closed (or sent junk)
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
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    raise_nofile(args.count + 64)
    t0 = time.monotonic()
    conns = open_all((args.host, args.port), args.count, args.window, args.timeout)
    print(f"idle_conns: {len(conns)} conns open in {time.monotonic() - t0:.2f}s", file=sys.stderr)
    print("ready", flush=True)
    hold(conns)


if __name__ == "__main__":
    main()
