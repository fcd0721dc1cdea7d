"""HTTP/1.1 semantics through the proxy: keep-alive, pipelining, HTTP/1.0, framing, HEAD,
204, Expect: 100-continue, trailers."""

import http.client
import json
import os
import unittest

from harness.base import PhoenixTestCase
from harness.client import ClientConn, raw_request
from harness.config import simple_config
from harness.payload import pattern_bytes, sha256_hex
from harness.process import free_port


class Http1Test(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.port = free_port()
        cls.px = cls.start_class_phoenix(simple_config(cls.port, free_port(), [cls.app.port]))

    def setUp(self):
        self.app.reset()

    def conn(self, **kw):
        c = ClientConn(self.port, **kw)
        self.addCleanup(c.close)
        return c

    # -- connection management ------------------------------------------------------------
    def test_keepalive_reuses_connections(self):
        c = self.conn()
        for i in range(20):
            c.request("GET", f"/echo?i={i}")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["target"], f"/echo?i={i}")
        self.assertFalse(c.eof, "proxy closed a keep-alive client connection")
        self.assertEqual(self.app.request_count(), 20)
        self.assertLessEqual(self.app.accepted, 2,
                             f"upstream accepted {self.app.accepted} connections for 20 "
                             "sequential requests: upstream keep-alive is not reused")
        conn_ids = {r["conn_id"] for r in self.app.requests_snapshot()}
        self.assertLessEqual(len(conn_ids), 2, conn_ids)

    def test_keepalive_upstream_reuse_stat(self):
        before = self.px.stat("cluster.app.upstream_cx_reuse")
        c = self.conn()
        for i in range(5):
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)
        value = self.px.wait_for_stat("cluster.app.upstream_cx_reuse",
                                      lambda v: v >= before + 3)
        self.assertIsNotNone(value, "stat cluster.app.upstream_cx_reuse missing")
        self.assertGreaterEqual(value, before + 3)

    def test_pipelining_answers_in_order(self):
        # The first request is slow so that an implementation answering out of order shows.
        data = (b"GET /slow?ms=200 HTTP/1.1\r\nHost: p.test\r\n\r\n"
                b"GET /echo?n=2 HTTP/1.1\r\nHost: p.test\r\n\r\n"
                b"GET /echo?n=3 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        c = self.conn()
        c.send(data)
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertEqual((r1.status, r1.body), (200, b"slow ok\n"))
        self.assertEqual(r2.json()["target"], "/echo?n=2")
        self.assertEqual(r3.json()["target"], "/echo?n=3")
        # and the connection is still usable
        c.request("GET", "/echo?n=4")
        self.assertEqual(c.read_response().json()["target"], "/echo?n=4")

    def test_connection_close_honored(self):
        res = raw_request(self.port, b"GET /echo HTTP/1.1\r\nHost: c.test\r\n"
                                     b"Connection: close\r\n\r\n", timeout=5)
        self.assertTrue(res.closed, f"connection not closed after Connection: close: {res!r}")
        r = res.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/echo")

    def test_http10_closes_by_default(self):
        res = raw_request(self.port, b"GET /echo HTTP/1.0\r\nHost: h10.test\r\n\r\n")
        self.assertTrue(res.closed, f"HTTP/1.0 connection not closed: {res!r}")
        r = res.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/echo")

    def test_http10_keepalive_when_requested(self):
        c = self.conn()
        for i in range(2):
            c.request("GET", f"/echo?i={i}", version="HTTP/1.0",
                      headers=[("Connection", "keep-alive")])
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["target"], f"/echo?i={i}")
            self.assertIsNone(r.header("transfer-encoding"),
                              "chunked must not be sent to an HTTP/1.0 client")
        self.assertFalse(c.eof)

    def test_http10_chunked_upstream_is_dechunked(self):
        res = raw_request(self.port, b"GET /chunked/5000 HTTP/1.0\r\nHost: h10.test\r\n\r\n")
        self.assertTrue(res.closed, res[:300])
        r = res.response()
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("transfer-encoding"),
                          "chunked must not be sent to an HTTP/1.0 client")
        self.assertEqual(r.body, pattern_bytes(5000))

    def test_pipelined_post_body_then_get(self):
        # The body boundary of the first request must be respected (no smuggling into #2).
        body = b"GET /smuggled HTTP/1.1\r\nHost: s\r\n\r\n"
        c = self.conn()
        c.send(b"POST /echo?n=1 HTTP/1.1\r\nHost: p.test\r\nContent-Length: %d\r\n\r\n%s"
               b"GET /echo?n=2 HTTP/1.1\r\nHost: p.test\r\n\r\n" % (len(body), body))
        r1, r2 = c.read_response(), c.read_response()
        self.assertEqual(r1.json()["body_sha256"], sha256_hex(body))
        self.assertEqual(r2.json()["target"], "/echo?n=2")
        self.assertEqual([r["target"] for r in self.app.requests_snapshot()],
                         ["/echo?n=1", "/echo?n=2"])

    def test_upstream_connection_close_not_reused(self):
        # The upstream says "Connection: close" but leaves the socket open; the next request
        # must go to a new upstream connection rather than hang on that one.
        c = self.conn(timeout=4)
        c.request("GET", "/linger-close")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"linger close\n"))
        c.request("GET", "/echo?after=linger")
        r2 = c.read_response()
        self.assertEqual(r2.json()["target"], "/echo?after=linger")
        first, second = self.app.requests_snapshot()
        self.assertNotEqual(first["conn_id"], second["conn_id"],
                            "an upstream connection marked Connection: close was reused")

    def test_repeated_headers_preserved(self):
        c = self.conn()
        c.request("GET", "/echo", headers=[("X-Dup", "one"), ("X-Other", "x"),
                                           ("X-Dup", "two")])
        headers = c.read_response().json()["headers"]
        dups = [v for k, v in headers if k.lower() == "x-dup"]
        self.assertIn(dups, (["one", "two"], ["one, two"]), headers)
        c.request("GET", "/setcookies")
        r = c.read_response()
        self.assertEqual(r.header_all("set-cookie"), ["a=1; Path=/", "b=2, c=3"],
                         "Set-Cookie headers must be forwarded separately, in order")

    def test_large_headers_forwarded_intact(self):
        # Well inside the 60 KiB default: 40 headers plus one 20 KB value.
        sent = [(f"X-Many-{i}", f"value-{i}-" + "z" * i) for i in range(40)]
        sent.append(("X-Huge", "h" * 20_000))
        c = self.conn()
        c.request("GET", "/echo", headers=sent)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        got = {k.lower(): v for k, v in r.json()["headers"]}
        for k, v in sent:
            self.assertEqual(got.get(k.lower()), v, f"header {k} mangled")

    # -- bodies and framing -----------------------------------------------------------------
    def test_chunked_request_body_forwarded_intact(self):
        body = os.urandom(200_000)
        pieces = [body[:1], body[1:70_001], body[70_001:70_003], body[70_003:]]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("POST", "/echo", body=iter(pieces))  # iterable -> chunked
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        echo = json.loads(r.read())
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (len(body), sha256_hex(body)))
        self.assertNoUpstreamErrors(self.app)

    def test_content_length_request_body_forwarded_intact(self):
        body = os.urandom(300_000)
        c = self.conn()
        c.request("PUT", "/echo", body=body)
        echo = c.read_response().json()
        self.assertEqual(echo["method"], "PUT")
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (len(body), sha256_hex(body)))

    def test_chunked_response(self):
        c = self.conn()
        for n in (1, 1000, 300_000):
            c.request("GET", f"/chunked/{n}")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), n)
            self.assertEqual(r.body, pattern_bytes(n))

    def test_read_to_close_upstream_to_http11_client(self):
        n = 100_000
        c = self.conn()
        c.request("GET", f"/noclen/{n}")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), n)
        self.assertEqual(r.body, pattern_bytes(n))
        # The proxy must frame this for a keep-alive HTTP/1.1 client: chunked (spec), so the
        # client connection survives.
        self.assertEqual((r.header("transfer-encoding") or "").lower(), "chunked",
                         f"read-to-close body should be re-framed as chunked: {r.headers}")
        c.request("GET", "/echo?after=1")
        self.assertEqual(c.read_response().json()["target"], "/echo?after=1")

    def test_read_to_close_upstream_to_http10_client(self):
        n = 100_000
        res = raw_request(self.port, b"GET /noclen/%d HTTP/1.0\r\nHost: h.test\r\n\r\n" % n)
        self.assertTrue(res.closed)
        r = res.response()
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("transfer-encoding"))
        self.assertEqual(r.body, pattern_bytes(n))

    def test_head_has_no_body(self):
        c = self.conn()
        c.request("HEAD", "/bytes/5000")
        r = c.read_response(head=True)
        self.assertEqual(r.status, 200)
        cl = r.header("content-length")
        if cl is not None:
            self.assertEqual(cl, "5000", "HEAD should carry the GET Content-Length")
        # If the proxy sent body bytes after the HEAD response, the next response is garbage.
        c.request("GET", "/echo?after=head")
        r2 = c.read_response()
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json()["target"], "/echo?after=head")
        self.assertEqual(self.app.requests_snapshot()[0]["method"], "HEAD")

    def test_204_has_no_body(self):
        c = self.conn()
        c.request("GET", "/status/204")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertIsNone(r.header("transfer-encoding"), "204 must not be chunked")
        c.request("GET", "/echo?after=204")
        r2 = c.read_response()
        self.assertEqual(r2.json()["target"], "/echo?after=204")

    def test_status_passthrough(self):
        c = self.conn()
        for code in (201, 404, 500, 503):
            c.request("GET", f"/status/{code}")
            r = c.read_response()
            self.assertEqual((r.status, r.body), (code, f"status {code}\n".encode()))

    def test_expect_100_continue(self):
        body = b"hello world"
        c = self.conn()
        c.send(b"POST /echo HTTP/1.1\r\nHost: e.test\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        interim = c.read_response(skip_interim=False, timeout=3)
        self.assertEqual(interim.status, 100, f"expected 100 Continue first, got {interim!r}")
        c.send(body)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        echo = r.json()
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (len(body), sha256_hex(body)))

    def test_request_trailers_pass_through(self):
        c = self.conn()
        c.send(b"POST /echo HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n"
               b"Trailer: x-trailer-a\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer-a: one\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (11, sha256_hex(b"hello world")))
        self.assertIn(["x-trailer-a", "one"], [[k.lower(), v] for k, v in echo["trailers"]],
                      f"request trailers did not reach the upstream: {echo['trailers']}")

    def test_response_trailers_pass_through(self):
        # Spec-implied (the /trailers upstream behaviour): an HTTP/1.1 client receiving a
        # chunked response gets the upstream's trailer.
        c = self.conn()
        c.request("GET", "/trailers", headers=[("TE", "trailers")])
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"trailers body\n"))
        self.assertIn(("x-upstream-trailer", "yes"),
                      [(k.lower(), v) for k, v in r.trailers],
                      f"response trailers lost: chunked={r.chunked} trailers={r.trailers}")


if __name__ == "__main__":
    unittest.main()
