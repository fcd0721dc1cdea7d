"""Malformed or oversized requests are rejected with a 4xx, the connection is closed and the
request never reaches the upstream; request-headers and idle timeouts close connections."""

import select
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn, raw_request
from harness.config import simple_config
from harness.http1 import parse_response
from harness.process import free_port, wait_until

INTERNAL_WORDS = (b"llhttp", b"HPE_", b"Traceback", b"parser error", b"source/")


class RejectionTest(PhoenixTestCase):
    """One phoenix with small limits: max_request_uri_kb 1, max_request_headers_kb 4,
    max_headers_count 10, request_headers_timeout 0.3s."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(
            cls.port, free_port(), [cls.app.port],
            max_request_uri_kb=1, max_request_headers_kb=4, max_headers_count=10,
            request_headers_timeout="0.3s"))

    def setUp(self):
        self.app.reset()

    def reject(self, data, status, *, reaches_upstream_ok=False, protocol_error=False):
        """Sends ``data`` and checks: ``status``, short body without internal detail,
        connection closed, nothing reached the upstream, protocol-error stat increased."""
        before = self.px.stat("http.ingress.downstream_cx_protocol_error") \
            if protocol_error else None
        logged_before = self.refusals_logged(status)
        res = raw_request(self.port, data, timeout=5)
        self.assertTrue(res, f"no response at all (closed={res.closed}, reset={res.reset})")
        r = parse_response(res, eof=True)[0]
        self.assertEqual(r.status, status, f"response {res[:300]!r}")
        self.assertLessEqual(len(r.body), 1024, f"error body is not short: {r.body[:200]!r}")
        for word in INTERNAL_WORDS:
            self.assertNotIn(word.lower(), bytes(res).lower(),
                             f"error response leaks internal detail: {res[:500]!r}")
        self.assertTrue(res.closed, f"connection not closed after {status} "
                                    f"(waited {res.elapsed:.1f}s): {res[:200]!r}")
        if not reaches_upstream_ok:
            self.assertEqual(self.app.requests_snapshot(), [],
                             "a rejected request reached the upstream")
        if protocol_error:
            value = self.px.wait_for_stat("http.ingress.downstream_cx_protocol_error",
                                          lambda v: v > before)
            self.assertIsNotNone(value, "stat http.ingress.downstream_cx_protocol_error missing")
            self.assertGreater(value, before, "downstream_cx_protocol_error did not increase")
        self.assertTrue(wait_until(lambda: self.refusals_logged(status) > logged_before),
                        f"no access log line with {status} DPE:\n{self.px.stdout_text()[-2000:]}")
        self.assertAlive(self.px)
        return r

    def refusals_logged(self, status):
        """Access log lines of refused requests with ``status`` and flag DPE (with no method
        or path when the head itself was refused)."""
        return sum(1 for e in self.px.access_log() if e["status"] == status and "DPE" in
                   e["flag_list"])

    def test_valid_request_passes(self):
        # Positive control: the same listener forwards a well-formed request.
        res = raw_request(self.port, b"POST /echo HTTP/1.1\r\nHost: ok.test\r\n"
                                     b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
        self.assertEqual(parse_response(res, eof=True)[0].status, 200, res[:300])
        self.assertEqual(len(self.app.requests_snapshot()), 1)

    def test_content_length_and_transfer_encoding(self):
        self.reject(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, protocol_error=True)

    def test_duplicate_differing_content_length(self):
        self.reject(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n"
                    b"Content-Length: 6\r\n\r\nhello!", 400, protocol_error=True)

    def test_invalid_content_length(self):
        self.reject(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: abc\r\n\r\nabc",
                    400, protocol_error=True)

    def test_bad_chunk_size(self):
        # The headers are valid, so the request may already be on its way upstream.
        self.reject(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\nhello\r\n0\r\n\r\n", 400, reaches_upstream_ok=True,
                    protocol_error=True)

    def test_obs_fold_continuation_line(self):
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nX-Folded: a\r\n  b\r\n\r\n", 400,
                    protocol_error=True)

    def test_bare_cr_in_header(self):
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nX-Foo: a\rb\r\n\r\n", 400,
                    protocol_error=True)

    def test_header_name_with_space(self):
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nBad Name: x\r\n\r\n", 400,
                    protocol_error=True)

    def test_header_name_with_paren(self):
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nBad(Name: x\r\n\r\n", 400,
                    protocol_error=True)

    def test_uri_too_long(self):
        target = b"/echo/" + b"a" * 2000
        self.reject(b"GET " + target + b" HTTP/1.1\r\nHost: x.test\r\n\r\n", 414)
        line = [e for e in self.px.access_log() if e["status"] == 414][-1]
        self.assertEqual((line["method"], line["path"], line["flags"]), ("-", "-", "DPE"))

    def test_headers_too_large(self):
        big = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 2000) for i in range(4))  # ~8 KB
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\n" + big + b"\r\n", 431)

    def test_too_many_headers(self):
        many = b"".join(b"X-H-%d: v\r\n" % i for i in range(12))  # 13 with Host; < 4 KB
        self.reject(b"GET /echo HTTP/1.1\r\nHost: x.test\r\n" + many + b"\r\n", 431)

    def test_headers_count_at_limit_accepted(self):
        # Host + 9 = 10 headers == max_headers_count: allowed (the limit is "more than").
        nine = b"".join(b"X-H-%d: v\r\n" % i for i in range(9))
        with ClientConn(self.port, timeout=5) as c:
            c.send(b"GET /echo HTTP/1.1\r\nHost: x.test\r\n" + nine + b"\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(len(r.json()["headers"]), 10)

    def test_uri_at_limit_accepted(self):
        target = b"/echo/" + b"a" * (1024 - len(b"/echo/"))
        self.assertEqual(len(target), 1024)
        res = raw_request(self.port, b"GET " + target + b" HTTP/1.1\r\nHost: x.test\r\n"
                                     b"Connection: close\r\n\r\n")
        r = parse_response(res, eof=True)[0]
        self.assertEqual(r.status, 200, res[:300])
        self.assertEqual(r.json()["path"], target.decode())

    def test_uri_just_over_limit(self):
        target = b"/echo/" + b"a" * (1025 - len(b"/echo/"))
        self.reject(b"GET " + target + b" HTTP/1.1\r\nHost: x.test\r\n\r\n", 414)

    def test_slow_body_not_cut_by_request_headers_timeout(self):
        # request_headers_timeout (0.3s) covers the head only; a body may take longer.
        with ClientConn(self.port, timeout=5) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nContent-Length: 10\r\n\r\n01234")
            # Nothing may come back while the body is still arriving (0.6s > the 0.3s
            # headers timeout).
            readable, _, _ = select.select([c.sock], [], [], 0.6)
            early = c.sock.recv(300) if readable else b""
            self.assertEqual(readable, [], f"proxy answered/closed mid-body: {early!r}")
            c.send(b"56789")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_len"], 10)

    def test_request_headers_timeout(self):
        with ClientConn(self.port, timeout=5) as c:
            t0 = time.monotonic()
            c.send(b"GET /echo HTTP/1.1\r\nHost: slow.test\r\n")  # headers never finish
            closed = c.wait_closed(timeout=3.0)
            elapsed = time.monotonic() - t0
            data = bytes(c.buf)
        self.assertTrue(closed, f"connection still open after {elapsed:.1f}s: {data[:200]!r}")
        self.assertLess(elapsed, 2.0, "request_headers_timeout is 0.3s")
        self.assertGreaterEqual(elapsed, 0.2, "closed before the timeout could have fired")
        r = parse_response(data, eof=True)[0] if data else None
        self.assertIsNotNone(r, "closed without a 408 response")
        self.assertEqual(r.status, 408, data[:200])
        self.assertEqual(self.app.requests_snapshot(), [])
        self.assertTrue(wait_until(lambda: self.refusals_logged(408) >= 1),
                        self.px.stdout_text()[-2000:])

    def test_request_headers_timeout_is_not_reset_by_trickling(self):
        # Slowloris: one header byte every 100 ms keeps the connection busy, but the headers
        # as a whole must arrive within request_headers_timeout.
        with ClientConn(self.port, timeout=5) as c:
            t0 = time.monotonic()
            c.send(b"GET /echo HTTP/1.1\r\nHost: slow.test\r\n")
            closed = False
            while time.monotonic() - t0 < 3.0:
                try:
                    c.send(b"X")
                except OSError:
                    closed = True
                    break
                readable, _, _ = select.select([c.sock], [], [], 0.1)
                if readable and c.wait_closed(timeout=0.05):
                    closed = True
                    break
            elapsed = time.monotonic() - t0
        self.assertTrue(closed, "trickled headers kept the connection open for 3s")
        self.assertLess(elapsed, 2.0)


class RfcExtraRejectionTest(PhoenixTestCase):
    """Beyond the brief's list, but RFC 9112 MUSTs a proxy is expected to enforce."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(cls.port, free_port(), [cls.app.port]))

    def setUp(self):
        self.app.reset()

    def check(self, data, status=400):
        res = raw_request(self.port, data, timeout=5)
        self.assertTrue(res, "no response")
        r = parse_response(res, eof=True)[0]
        self.assertEqual(r.status, status, res[:300])
        self.assertTrue(res.closed, "connection not closed")
        self.assertEqual(self.app.requests_snapshot(), [], "reached the upstream")

    def test_whitespace_before_colon(self):
        # RFC 9112 5.1: MUST reject with 400.
        self.check(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nX-Foo : bar\r\n\r\n")

    def test_http11_without_host(self):
        # RFC 9112 3.2: MUST respond 400 to an HTTP/1.1 request without Host.
        self.check(b"GET /echo HTTP/1.1\r\nX-Foo: bar\r\n\r\n")

    def test_http11_without_host_from_a_half_closed_client(self):
        # The client has sent all it will (shutdown SHUT_WR); its 400 must still reach it.
        res = raw_request(self.port, b"GET /echo HTTP/1.1\r\nX-Foo: bar\r\n\r\n", timeout=5,
                          half_close=True)
        self.assertTrue(res, "no response to a half-closed client")
        self.assertEqual(parse_response(res, eof=True)[0].status, 400, res[:300])
        self.assertEqual(self.app.requests_snapshot(), [], "reached the upstream")

    def test_empty_transfer_encoding_with_content_length(self):
        self.check(b"POST /echo HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding:\r\n"
                   b"Content-Length: 3\r\n\r\nabc")

    def test_empty_header_name(self):
        self.check(b"POST /echo HTTP/1.1\r\nHost: x.test\r\n: chunked\r\n"
                   b"Content-Length: 0\r\n\r\n")

    def test_header_name_starting_with_a_colon(self):
        self.check(b"GET /echo HTTP/1.1\r\nHost: x.test\r\n:path: /admin\r\n\r\n")

    def test_bare_lf_ending_the_head(self):
        self.check(b"GET /echo HTTP/1.1\r\nHost: x.test\r\n\n")


class IdleTimeoutTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(cls.port, free_port(), [cls.app.port],
                                                       idle_timeout="0.3s"))

    def test_idle_connection_closed(self):
        with ClientConn(self.port, timeout=5) as c:
            c.request("GET", "/echo?i=1")
            self.assertEqual(c.read_response().status, 200)
            c.request("GET", "/echo?i=2")  # still open right after a response
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            closed = c.wait_closed(timeout=3.0)
            elapsed = time.monotonic() - t0
        self.assertTrue(closed, "idle connection not closed within 3s (idle_timeout 0.3s)")
        self.assertLess(elapsed, 2.0)
        self.assertGreaterEqual(elapsed, 0.2, "closed before idle_timeout could have fired")

    def test_fresh_connection_without_request_closed(self):
        with ClientConn(self.port, timeout=5) as c:
            t0 = time.monotonic()
            closed = c.wait_closed(timeout=3.0)
            elapsed = time.monotonic() - t0
        self.assertTrue(closed, "a connection that never sent a request stayed open 3s "
                                "(idle_timeout 0.3s)")
        self.assertLess(elapsed, 2.0)

    def test_active_request_not_cut_by_idle_timeout(self):
        # idle_timeout applies only without an active request.
        with ClientConn(self.port, timeout=5) as c:
            c.request("GET", "/slow?ms=800")
            r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"slow ok\n"))


if __name__ == "__main__":
    unittest.main()
