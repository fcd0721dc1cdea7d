"""Bodies are streamed, not buffered: 100 MB each way with bounded proxy memory.

Each test also stalls the receiving side part-way (the upstream pauses reading, or the client
stops reading) until the sender is blocked by back-pressure, and checks phoenix's RSS at that
moment: a proxy that buffers instead of applying back-pressure would hold tens of MB there.
Kernel socket buffers do not count in RSS; the small SO_RCVBUF/SO_SNDBUF on the test sockets
keep the amount in flight modest anyway."""

import hashlib
import os
import socket
import json
import threading
import time
import unittest

import h2.events

from harness.base import PhoenixTestCase
from harness.h2client import H2Client
from harness.client import ClientConn
from harness.config import simple_config
from harness.payload import MiB, iter_pattern, pattern_sha256
from harness.process import RssSampler, free_port, read_vmrss_kb

BODY = 100 * MiB
# How much phoenix's RSS may grow over what it was at start while 100 MB pass through: a body
# buffered anywhere would add about 100 MB. Measured as growth, not as a total, because the
# total says more about the build than about buffering (idle: ~12 MB; under ASan, ~75 MB of
# shadow memory and allocator state, and the allocator's own growth adds tens of MB).
RSS_GROWTH_LIMIT_KB = (32 * 1024) if os.environ.get("PHOENIX_SANITIZED") != "1" else 48 * 1024
SOCK_BUF = 256 * 1024


def wait_for_stall(counter, done, timeout=15.0, quiet=0.3):
    """Polls ``counter()`` until it has not changed for ``quiet`` seconds (back-pressure) or
    ``done()``; returns the counter value."""
    deadline = time.monotonic() + timeout
    last = counter()
    last_change = time.monotonic()
    while time.monotonic() < deadline and not done():
        time.sleep(0.05)
        value = counter()
        if value != last:
            last, last_change = value, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return value
    return counter()


class _StreamingFixture(PhoenixTestCase):
    """One upstream with small socket buffers and one single-worker phoenix per class."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app", sock_buf=SOCK_BUF)
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(cls.port, free_port(), [cls.app.port]),
                                         concurrency=1)
        cls.rss_limit_kb = read_vmrss_kb(cls.px.pid) + RSS_GROWTH_LIMIT_KB

    def setUp(self):
        self.app.reset()

    def rss_now(self):
        kb = read_vmrss_kb(self.px.pid)
        self.assertIsNotNone(kb, "cannot read phoenix VmRSS")
        return kb


class StreamingTest(_StreamingFixture):

    def upload(self, chunked):
        sent = [0]
        result = {}

        def client():
            try:
                with ClientConn(self.port, timeout=60, sndbuf=SOCK_BUF) as c:
                    framing = ("Transfer-Encoding: chunked" if chunked
                               else f"Content-Length: {BODY}")
                    c.send(f"POST /sink?pause_after={8 * MiB} HTTP/1.1\r\nHost: s.test\r\n"
                           f"{framing}\r\n\r\n".encode())
                    for piece in iter_pattern(BODY):
                        for off in range(0, len(piece), 64 * 1024):
                            part = piece[off:off + 64 * 1024]
                            c.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                            sent[0] += len(part)
                    if chunked:
                        c.send(b"0\r\n\r\n")
                    result["response"] = c.read_response(timeout=60)
            except Exception as e:  # reported by the main thread
                result["error"] = repr(e)

        with RssSampler(self.px.pid) as sampler:
            t = threading.Thread(target=client, daemon=True)
            t.start()
            self.addCleanup(self.app.gate.set)
            self.assertTrue(self.app.paused.wait(timeout=20),
                            f"upstream never received 8 MB of the body (client sent {sent[0]})"
                            f" {result.get('error', '')}")
            stalled_at = wait_for_stall(lambda: sent[0], lambda: not t.is_alive())
            rss_paused = self.rss_now()
            self.assertLess(stalled_at, BODY,
                            "the whole body was accepted while the upstream was not reading: "
                            "no back-pressure")
            self.assertLess(rss_paused, self.rss_limit_kb,
                            f"phoenix RSS {rss_paused} KiB with {stalled_at} bytes sent and the "
                            "upstream paused: the body is being buffered")
            self.app.gate.set()
            t.join(timeout=120)
            self.assertFalse(t.is_alive(), "upload did not finish")
        self.assertNotIn("error", result, result.get("error"))
        r = result["response"]
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["body_len"], BODY)
        self.assertEqual(echo["body_sha256"], pattern_sha256(BODY))
        self.assertNoUpstreamErrors(self.app)
        self.assertLess(sampler.max_kb, self.rss_limit_kb,
                        f"phoenix peak RSS {sampler.max_kb} KiB during a 100 MB upload")
        self.assertGreater(sampler.samples, 0)

    def test_upload_100mb_chunked(self):
        self.upload(chunked=True)

    def test_upload_100mb_content_length(self):
        self.upload(chunked=False)

    def test_download_100mb(self):
        with RssSampler(self.px.pid) as sampler, \
                ClientConn(self.port, timeout=60, rcvbuf=SOCK_BUF) as c:
            c.request("GET", f"/bytes/{BODY}")
            resp, body = c.read_head_streaming()
            self.assertEqual(resp.status, 200, resp)
            h = hashlib.sha256()
            got = 0
            for piece in body:  # read the first 8 MB, then stop reading
                h.update(piece)
                got += len(piece)
                if got >= 8 * MiB:
                    break
            stalled_at = wait_for_stall(lambda: self.app.bytes_written,
                                        lambda: self.app.bytes_written >= BODY)
            rss_paused = self.rss_now()
            self.assertLess(stalled_at, BODY,
                            "the upstream wrote the whole body while the client was not "
                            "reading: no back-pressure")
            self.assertLess(rss_paused, self.rss_limit_kb,
                            f"phoenix RSS {rss_paused} KiB with the client paused: the response "
                            "is being buffered")
            for piece in body:
                h.update(piece)
                got += len(piece)
        self.assertEqual(got, BODY)
        self.assertEqual(h.hexdigest(), pattern_sha256(BODY))
        self.assertLess(sampler.max_kb, self.rss_limit_kb,
                        f"phoenix peak RSS {sampler.max_kb} KiB during a 100 MB download")


class Http2StreamingTest(_StreamingFixture):
    """The same 100 MB each way over HTTP/2 (h2c): flow control becomes back-pressure. A
    client that stops acknowledging (a zero window) holds the response within its stream's
    buffer; an upstream that stops reading holds the client within one stream window."""

    def test_download_100mb_with_a_stalled_reader(self):
        with RssSampler(self.px.pid) as sampler:
            client = H2Client(self.port)
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
            sid = client.request(f"/bytes/{BODY}")
            h = hashlib.sha256()
            got = [0]
            acknowledge = [True]
            held = [0]  # Bytes read but not acknowledged.

            def take(events):
                for e in events:
                    if isinstance(e, h2.events.DataReceived):
                        h.update(e.data)
                        got[0] += len(e.data)
                        if acknowledge[0]:
                            client.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                        else:
                            held[0] += e.flow_controlled_length
                events.clear()
                client.flush()
                return got[0] >= BODY

            # Read and acknowledge 8 MB, then read on without acknowledging: the window closes.
            client.read_until(lambda ev: take(ev) or got[0] >= 8 * MiB, timeout=30)
            acknowledge[0] = False
            client.read_until(take, timeout=2)
            stalled_at = wait_for_stall(lambda: self.app.bytes_written,
                                        lambda: self.app.bytes_written >= BODY)
            rss_paused = self.rss_now()
            self.assertLess(stalled_at, BODY, "the upstream wrote the whole body while the "
                            "client's window was closed: no back-pressure")
            self.assertLess(rss_paused, self.rss_limit_kb,
                            f"phoenix RSS {rss_paused} KiB with the client's window closed")
            acknowledge[0] = True
            client.conn.acknowledge_received_data(held[0], sid)
            client.flush()
            self.assertTrue(client.read_until(take, timeout=120), f"got {got[0]} bytes")
            client.close()
        self.assertEqual(h.hexdigest(), pattern_sha256(BODY))
        self.assertLess(sampler.max_kb, self.rss_limit_kb,
                        f"phoenix peak RSS {sampler.max_kb} KiB during a 100 MB h2 download")

    def test_upload_100mb_to_a_paused_upstream(self):
        result = {}
        client = H2Client(self.port)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)

        def upload():
            try:
                sid = client.request(f"/sink?pause_after={8 * MiB}", method="POST", end=False)
                for piece in iter_pattern(BODY):
                    client.send_body(sid, piece, end=False, timeout=60)
                client.conn.end_stream(sid)
                client.flush()
                result["response"] = client.response(sid, timeout=60)
            except Exception as e:  # reported by the main thread
                result["error"] = repr(e)

        with RssSampler(self.px.pid) as sampler:
            t = threading.Thread(target=upload, daemon=True)
            t.start()
            self.addCleanup(self.app.gate.set)
            self.assertTrue(self.app.paused.wait(timeout=20),
                            f"upstream never received 8 MB (client sent {client.sent}) "
                            f"{result.get('error', '')}")
            stalled_at = wait_for_stall(lambda: client.sent, lambda: not t.is_alive())
            rss_paused = self.rss_now()
            self.assertLess(stalled_at, BODY, "the whole body was accepted while the upstream "
                            "was not reading: no back-pressure")
            self.assertLess(rss_paused, self.rss_limit_kb,
                            f"phoenix RSS {rss_paused} KiB with the upstream paused")
            self.app.gate.set()
            t.join(timeout=120)
            self.assertFalse(t.is_alive(), "upload did not finish")
        self.assertNotIn("error", result, result.get("error"))
        status, _, body, _ = result["response"]
        self.assertEqual(status, 200)
        echo = json.loads(body)
        self.assertEqual(echo["body_len"], BODY)
        self.assertEqual(echo["body_sha256"], pattern_sha256(BODY))
        self.assertLess(sampler.max_kb, self.rss_limit_kb)


if __name__ == "__main__":
    unittest.main()
