"""HTTP/2 downstream through the real binary with real clients: curl (--http2-prior-knowledge,
--http2 over TLS by ALPN), nghttp and h2load, and python3-h2 for frames no polite client sends.
The upstream is HTTP/1.1, so every test also checks the translation: :authority to Host,
cookie crumbs joined, trailers carried, connection-specific headers refused."""

import json
import socket
import subprocess

import h2.errors
import h2.events

from harness.base import PhoenixTestCase
from harness.client import ClientConn
from harness.h2client import H2Client
from harness.config import direct_response, route, simple_config
from harness.process import free_port, wait_until
from harness.tls import cert_path, downstream_tls, server_context, tls_listener, upstream_tls


def curl(*args, timeout=20):
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code} %{http_version}", *args],
                         capture_output=True, text=True, timeout=timeout)
    body, _, tail = out.stdout.rpartition("\n")
    code, _, version = tail.partition(" ")
    return body, code, version, out.stderr


def echoed_headers(echo):
    """The headers the echo upstream received, by lowercase name."""
    return {k.lower(): v for k, v in echo["headers"]}


def h2_config(app_port, **hcm_options):
    port, admin = free_port(), free_port()
    return port, simple_config(port, admin, [app_port], **hcm_options)


class Http2DownstreamTest(PhoenixTestCase):

    def setUp(self):
        self.app = self.start_upstream("app")

    def test_curl_prior_knowledge_reaches_the_http1_upstream(self):
        port, config = h2_config(self.app.port)
        px = self.start_phoenix(config)
        body, code, version, err = curl("--http2-prior-knowledge",
                                        f"http://127.0.0.1:{port}/echo/a?x=1")
        self.assertEqual((code, version), ("200", "2"), err)
        echo = json.loads(body)
        self.assertEqual(echo["path"], "/echo/a")
        self.assertEqual(echo["version"], "HTTP/1.1")
        headers = echoed_headers(echo)
        self.assertEqual(headers["host"], f"127.0.0.1:{port}")
        self.assertEqual(headers["x-forwarded-proto"], "http")
        line = px.wait_access_log(lambda l: l["path"] == "/echo/a?x=1")
        self.assertEqual(line["protocol"], "HTTP/2")
        self.assertEqual(px.stat("http.ingress.downstream_cx_http2_total"), 1)
        self.assertEqual(px.stat("http.ingress.downstream_rq_http2_total"), 1)
        self.assertNoUpstreamErrors(self.app)

    def test_http1_and_h2c_share_one_listener(self):
        port, config = h2_config(self.app.port)
        px = self.start_phoenix(config)
        _, code1, version1, _ = curl("--http1.1", f"http://127.0.0.1:{port}/echo/1")
        _, code2, version2, _ = curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/echo/2")
        self.assertEqual([(code1, version1), (code2, version2)], [("200", "1.1"), ("200", "2")])
        self.assertEqual(px.stat("http.ingress.downstream_cx_http1_total"), 1)
        self.assertEqual(px.stat("http.ingress.downstream_cx_http2_total"), 1)

    def test_codec_type_http1_refuses_the_preface(self):
        port, config = h2_config(self.app.port, codec_type="HTTP1")
        self.start_phoenix(config)
        _, code, _, _ = curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/echo/2")
        self.assertNotEqual(code, "200")

    def test_h2_by_alpn_over_tls(self):
        port, config = h2_config(self.app.port)
        listener = config["static_resources"]["listeners"][0]
        tls_listener(listener, downstream_tls(common={"alpn_protocols": ["h2", "http/1.1"]}))
        self.start_phoenix(config)
        resolve = ["--cacert", cert_path("ca.crt"), "--resolve", f"localhost:{port}:127.0.0.1"]
        _, code, version, err = curl("--http2", *resolve, f"https://localhost:{port}/echo/tls")
        self.assertEqual((code, version), ("200", "2"), err)
        _, code, version, err = curl("--http1.1", *resolve, f"https://localhost:{port}/echo/t1")
        self.assertEqual((code, version), ("200", "1.1"), err)

    def test_many_concurrent_streams_on_one_connection(self):
        port, config = h2_config(self.app.port)
        px = self.start_phoenix(config)
        out = subprocess.run(["h2load", "-n", "2000", "-c", "2", "-m", "20",
                              f"http://127.0.0.1:{port}/echo/load"],
                             capture_output=True, text=True, timeout=60)
        self.assertIn("2000 succeeded, 0 failed, 0 errored", out.stdout, out.stdout + out.stderr)
        self.assertIn("status codes: 2000 2xx", out.stdout)
        self.assertEqual(px.stat("http.ingress.downstream_rq_http2_total"), 2000)

    def test_request_body_trailers_and_cookie_crumbs_reach_the_upstream(self):
        port, config = h2_config(self.app.port)
        self.start_phoenix(config)
        client = H2Client(port)
        body = b"x" * 100_000
        sid = client.request("/echo/body", method="POST",
                             headers=[("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers")],
                             body=body, end=False)
        client.conn.send_headers(sid, [("x-request-trailer", "t1")], end_stream=True)
        client.flush()
        status, _, response, _ = client.response(sid)
        self.assertEqual(status, 200)
        echo = json.loads(response)
        self.assertEqual(echo["body_len"], len(body))
        headers = echoed_headers(echo)
        self.assertEqual(headers["cookie"], "a=1; b=2")
        self.assertNotIn("te", headers)
        self.assertEqual(echo["trailers"], [["x-request-trailer", "t1"]])

    def test_upstream_trailers_reach_the_h2_client(self):
        port, config = h2_config(self.app.port)
        self.start_phoenix(config)
        client = H2Client(port)
        status, headers, body, trailers = client.response(client.request("/trailers"))
        self.assertEqual(status, 200)
        self.assertEqual(body, b"trailers body\n")
        self.assertEqual(trailers, {"x-upstream-trailer": "yes"})
        self.assertNotIn("transfer-encoding", headers)

    def test_connection_specific_header_resets_the_stream(self):
        port, config = h2_config(self.app.port)
        px = self.start_phoenix(config)
        client = H2Client(port)
        sid = client.request("/echo/bad", headers=[("connection", "keep-alive")])
        client.read_until(lambda ev: any(isinstance(e, h2.events.StreamReset) for e in ev))
        reset = next(e for e in client.events if isinstance(e, h2.events.StreamReset))
        self.assertEqual(reset.stream_id, sid)
        # The connection goes on serving other streams.
        status, _, _, _ = client.response(client.request("/echo/good"))
        self.assertEqual(status, 200)
        self.assertGreaterEqual(px.stat("http.ingress.http2.rx_messaging_error"), 1)
        self.assertIsNone(self.app.find_request(lambda r: r["path"] == "/echo/bad"))

    def test_local_replies_and_deny_rules_hold_for_h2(self):
        port, config = h2_config(self.app.port, routes=[
            route({"prefix": "/crash"}, name="deny", direct_response=direct_response(403, "no\n")),
            route({"prefix": "/"}, cluster="app")])
        self.start_phoenix(config)
        client = H2Client(port)
        status, _, body, _ = client.response(client.request("/crash/../crash"))
        self.assertEqual((status, body), (403, b"no\n"))
        status, _, _, _ = client.response(client.request("/nope%2Fx"))
        self.assertEqual(status, 400)

    def test_oversized_header_block_gets_431_and_the_connection_goes_on(self):
        port, config = h2_config(self.app.port, max_request_headers_kb=4)
        px = self.start_phoenix(config)
        client = H2Client(port)
        status, _, _, _ = client.response(client.request("/echo/big",
                                                         headers=[("x-big", "a" * 8000)]))
        self.assertEqual(status, 431)
        status, _, _, _ = client.response(client.request("/echo/small"))
        self.assertEqual(status, 200)
        self.assertEqual(px.stat("http.ingress.http2.header_overflow"), 1)
        # Refused by the codec, yet in the access log like every request.
        entry = px.wait_access_log(lambda e: e["path"] == "/echo/big")
        self.assertIsNotNone(entry, "the refused h2 request is not in the access log")
        self.assertEqual((entry["status"], entry["flag_list"]), (431, ["DPE"]), entry)

    def test_streams_over_the_concurrency_cap_are_refused(self):
        port, config = h2_config(self.app.port,
                                 http2_protocol_options={"max_concurrent_streams": 2})
        px = self.start_phoenix(config)
        client = H2Client(port)
        # Three streams at once, sent before the client has read the server's SETTINGS.
        ids = [client.request("/slow?ms=300") for _ in range(3)]
        results = [client.response(sid) for sid in ids]
        self.assertEqual([r[0] for r in results[:2]], [200, 200])
        refused = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
        self.assertEqual([(e.stream_id, e.error_code) for e in refused],
                         [(ids[2], h2.errors.ErrorCodes.REFUSED_STREAM)])
        self.assertEqual(client.conn.remote_settings.max_concurrent_streams, 2)
        self.assertEqual(px.stat("http.ingress.downstream_rq_http2_total"), 2)

    def test_drain_sends_goaway(self):
        port, config = h2_config(self.app.port)
        px = self.start_phoenix(config)
        client = H2Client(port)
        status, _, _, _ = client.response(client.request("/echo/1"))
        self.assertEqual(status, 200)
        px.proc.send_signal(15)
        self.assertTrue(client.read_until(lambda ev: client.goaway() is not None))
        self.assertEqual(client.goaway().error_code, 0)


class Http2AbuseTest(PhoenixTestCase):
    """Each known HTTP/2 attack against a real phoenix, with python3-h2 as the attacker: the
    connection is closed (GOAWAY), the stat counts it, and other clients are still served."""

    def setUp(self):
        self.app = self.start_upstream("app")
        self.port, config = h2_config(self.app.port)
        self.px = self.start_phoenix(config)

    def assertServedStill(self):
        client = H2Client(self.port)
        status, _, _, _ = client.response(client.request("/echo/after"))
        self.assertEqual(status, 200)
        client.close()

    def assertGoaway(self, client, code):
        self.assertTrue(client.read_until(lambda ev: client.goaway() is not None or client.closed,
                                          timeout=10))
        if client.goaway() is not None:
            self.assertEqual(client.goaway().error_code, code)
        client.read_until(lambda ev: False, timeout=2)
        self.assertTrue(client.closed)

    def test_rapid_reset_closes_the_connection(self):
        client = H2Client(self.port)
        for _ in range(150):
            sid = client.request("/slow?ms=1000")
            client.conn.reset_stream(sid)
            client.flush()
            if client.closed:
                break
        self.assertGoaway(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertEqual(self.px.stat("http.ingress.http2.premature_reset_flood"), 1)
        self.assertServedStill()

    def test_empty_data_frame_flood_closes_the_connection(self):
        client = H2Client(self.port)
        sid = client.request("/echo/x", method="POST", end=False)
        for _ in range(5):
            client.conn.send_data(sid, b"", end_stream=False)
        client.flush()
        self.assertGoaway(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertEqual(self.px.stat("http.ingress.http2.inbound_empty_frames_flood"), 1)
        self.assertServedStill()

    def test_priority_flood_closes_the_connection(self):
        client = H2Client(self.port)
        for i in range(300):
            client.conn.prioritize(2 * i + 1, weight=16)
        client.flush()
        self.assertGoaway(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertEqual(self.px.stat("http.ingress.http2.inbound_priority_frames_flood"), 1)
        self.assertServedStill()

    def test_ping_flood_from_a_client_that_does_not_read_is_bounded(self):
        client = H2Client(self.port)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
        sent = 0
        client.sock.settimeout(2)
        try:
            for _ in range(200):
                client.sock.sendall(ping * 1000)
                sent += 1000
        except OSError:
            pass
        self.assertTrue(wait_until(
            lambda: self.px.stat("http.ingress.http2.outbound_flood") >= 1, timeout=10),
            f"sent {sent} pings")
        self.assertServedStill()

    def test_settings_flood_is_bounded(self):
        client = H2Client(self.port)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        client.sock.settimeout(2)
        try:
            for _ in range(200):
                client.sock.sendall(settings * 1000)
        except OSError:
            pass
        self.assertTrue(wait_until(
            lambda: self.px.stat("http.ingress.http2.outbound_flood") >= 1, timeout=10))
        self.assertServedStill()

    def test_continuation_flood_closes_the_connection(self):
        client = H2Client(self.port)
        sid = client.conn.get_next_available_stream_id()
        block = client.conn.encoder.encode([(":method", "GET"), (":scheme", "http"),
                                            (":authority", "x"), (":path", "/")])
        # HEADERS without END_HEADERS, then CONTINUATION frames that never end.
        client.send_raw(len(block).to_bytes(3, "big") + b"\x01\x00" + sid.to_bytes(4, "big")
                        + block)
        cont = b"\x00\x00\x01\x09\x00" + sid.to_bytes(4, "big") + b"\x40"
        for _ in range(50):
            client.send_raw(cont)
        self.assertGoaway(client, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        self.assertServedStill()

    def test_invalid_frame_gets_goaway_protocol_error(self):
        client = H2Client(self.port)
        # A DATA frame on stream 0 is a connection error (RFC 9113 6.1).
        client.send_raw(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
        self.assertGoaway(client, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        self.assertServedStill()

    def test_garbage_after_the_preface_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except OSError:
                pass
        self.assertIn(b"\x07", data[:64])  # A GOAWAY frame (type 7) before the close.
        self.assertServedStill()


class StreamIdleTimeoutTest(PhoenixTestCase):
    """stream_idle_timeout ends a stream that nothing moves on, either way."""

    def setUp(self):
        self.app = self.start_upstream("app")

    def test_a_stalled_h2_reader_loses_its_stream_not_its_connection(self):
        port, config = h2_config(self.app.port, stream_idle_timeout="0.5s")
        px = self.start_phoenix(config)
        client = H2Client(port)
        # Asks for 10 MB and never acknowledges a byte: its window closes at 64 KiB.
        sid = client.request(f"/bytes/{10 * 1024 * 1024}")
        self.assertTrue(client.read_until(
            lambda ev: any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid
                           for e in ev), timeout=10))
        line = px.wait_access_log(lambda l: l["path"].startswith("/bytes/"))
        self.assertIn("SI", line["flag_list"])
        self.assertEqual(px.stat("http.ingress.downstream_rq_idle_timeout"), 1)
        # The connection itself goes on.
        status, _, _, _ = client.response(client.request("/echo/after"))
        self.assertEqual(status, 200)

    def test_a_request_waiting_on_a_silent_upstream_gets_408(self):
        port, config = h2_config(self.app.port, stream_idle_timeout="0.3s")
        px = self.start_phoenix(config)
        _, code, _, _ = curl("--http1.1", f"http://127.0.0.1:{port}/slow?ms=3000")
        self.assertEqual(code, "408")
        line = px.wait_access_log(lambda l: l["path"].startswith("/slow"))
        self.assertEqual((line["status"], line["flags"]), (408, "SI"))


class Http1ClientToHttp2UpstreamTest(PhoenixTestCase):
    """An HTTP/1.1 client reaches an HTTP/2 upstream: phoenix "edge" speaks HTTP/2 to phoenix
    "inner" (a cluster with protocol HTTP2; inner's listener takes h2c), which serves the
    HTTP/1.1 echo app. What the app sees shows what crossed the HTTP/2 hop."""

    def test_head_body_and_trailers_cross_the_http2_hop(self):
        app = self.start_upstream("app")
        inner_port, inner_config = h2_config(app.port)
        inner = self.start_phoenix(inner_config)
        edge_port, admin = free_port(), free_port()
        edge_config = simple_config(edge_port, admin, [inner_port], cluster_name="inner",
                                    cluster_options={"protocol": "HTTP2"},
                                    routes=[route({"prefix": "/"}, cluster="inner")])
        edge = self.start_phoenix(edge_config)
        with ClientConn(edge_port) as c:
            c.send(b"POST /echo/x HTTP/1.1\r\nHost: svc.example\r\nTransfer-Encoding: chunked\r\n"
                   b"Cookie: a=1\r\nTE: trailers\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        headers = echoed_headers(echo)
        self.assertEqual(headers["host"], "svc.example")
        self.assertEqual(headers["cookie"], "a=1")
        self.assertEqual(echo["body_len"], 5)
        self.assertEqual(echo["trailers"], [["x-t", "1"]])
        self.assertEqual(inner.stat("http.ingress.downstream_rq_http2_total"), 1)
        self.assertEqual(edge.stat("cluster.inner.upstream_cx_total"), 1)
        line = inner.wait_access_log(lambda l: l["path"] == "/echo/x")
        self.assertEqual(line["protocol"], "HTTP/2")


def _health_check(path="/healthz"):
    return {"interval": "0.05s", "timeout": "1s", "unhealthy_threshold": 1,
            "healthy_threshold": 1, "http_health_check": {"path": path}}


class AutoUpstreamProtocolTest(PhoenixTestCase):
    """`protocol: AUTO` on a TLS cluster: each host's handshake picks HTTP/2 ("h2" by ALPN) or
    HTTP/1.1. phoenix "edge" reaches phoenix "inner" over TLS, inner offering the ALPN
    protocols the test says and serving the HTTP/1.1 echo app; inner's stats and access log
    show what edge spoke."""

    def start_pair(self, inner_alpn, cluster_options=None):
        app = self.start_upstream("app")
        inner_port, inner_config = h2_config(app.port)
        common = {"alpn_protocols": inner_alpn} if inner_alpn else {}
        tls_listener(inner_config["static_resources"]["listeners"][0],
                     downstream_tls(common=common))
        inner = self.start_phoenix(inner_config)
        edge_port, admin = free_port(), free_port()
        options = {"protocol": "AUTO", "transport_socket": upstream_tls()}
        options.update(cluster_options or {})
        # One worker: one pool, so one connection when the handshake says h2.
        edge = self.start_phoenix(simple_config(edge_port, admin, [inner_port],
                                                cluster_name="inner", cluster_options=options),
                                  concurrency=1)
        return edge_port, edge, inner

    def get_at_once(self, port, count):
        """``count`` HTTP/1.1 requests sent at the same moment, on connections of their own."""
        conns = [ClientConn(port) for _ in range(count)]
        try:
            for i, c in enumerate(conns):
                c.send(f"GET /echo/{i} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
            return [c.read_response().status for c in conns]
        finally:
            for c in conns:
                c.close()

    def test_h2_by_alpn_multiplexes_requests_that_waited_for_the_handshake(self):
        edge_port, edge, inner = self.start_pair(["h2", "http/1.1"])
        self.assertEqual(self.get_at_once(edge_port, 8), [200] * 8)
        self.assertEqual(self.get_at_once(edge_port, 4), [200] * 4)
        self.assertEqual(inner.stat("http.ingress.downstream_rq_http2_total"), 12)
        self.assertEqual(inner.stat("http.ingress.downstream_rq_http1_total"), 0)
        self.assertEqual(edge.stat("cluster.inner.upstream_cx_total"), 1)
        line = inner.wait_access_log(lambda l: l["path"] == "/echo/0")
        self.assertEqual(line["protocol"], "HTTP/2")

    def test_a_host_that_agrees_on_http_1_1_gets_http_1_1(self):
        edge_port, edge, inner = self.start_pair(None)  # inner's default ALPN: http/1.1
        self.assertEqual(self.get_at_once(edge_port, 3), [200] * 3)
        self.assertEqual(inner.stat("http.ingress.downstream_rq_http1_total"), 3)
        self.assertEqual(inner.stat("http.ingress.downstream_rq_http2_total"), 0)

    def test_a_host_without_alpn_gets_http_1_1(self):
        app = self.start_upstream("app", tls=server_context())  # Python's ssl: no ALPN
        port, admin = free_port(), free_port()
        self.start_phoenix(simple_config(port, admin, [app.port], cluster_options={
            "protocol": "AUTO", "transport_socket": upstream_tls()}))
        with ClientConn(port) as c:
            for i in range(2):
                c.send(f"GET /echo/{i} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["version"], "HTTP/1.1")
        self.assertEqual(app.request_count(), 2)

    def test_a_failed_first_connection_fails_its_requests_and_the_next_one_tries_again(self):
        port, admin, closed_port = free_port(), free_port(), free_port()
        px = self.start_phoenix(simple_config(port, admin, [closed_port], cluster_options={
            "protocol": "AUTO", "transport_socket": upstream_tls()}), concurrency=1)
        with ClientConn(port) as c:
            for i in range(2):
                c.send(f"GET /x{i} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
                self.assertEqual(c.read_response().status, 503)
        self.assertEqual(px.stat("cluster.app.upstream_cx_connect_fail"), 2)
        line = px.wait_access_log(lambda l: l["path"] == "/x1")
        self.assertEqual(line["flags"], "UF")

    def test_health_checks_speak_what_alpn_agreed(self):
        _, edge, inner = self.start_pair(["h2", "http/1.1"],
                                         {"health_checks": [_health_check()]})
        line = inner.wait_access_log(lambda l: l["path"] == "/healthz")
        self.assertIsNotNone(line, inner.stdout_text())
        self.assertEqual((line["protocol"], line["status"]), ("HTTP/2", 200))
        edge.wait_for_stat("cluster.inner.health_check.success", lambda v: v >= 1)
        self.assertEqual(edge.stat("cluster.inner.health_check.failure"), 0)

    def test_auto_without_tls_is_a_config_error_naming_the_field(self):
        rc, path, out = self.validate_config(
            "static_resources:\n"
            "  clusters:\n"
            "  - name: app\n"
            "    protocol: AUTO\n"
            "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
            "{socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:4:5: static_resources.clusters[0].protocol: AUTO picks HTTP/2 "
                      "or HTTP/1.1 by ALPN in the TLS handshake", out)


class Http2HealthCheckTest(PhoenixTestCase):
    """A cluster with protocol HTTP2 health-checks its hosts over HTTP/2, as its requests go."""

    def test_h2c_health_checks_pass_and_fail_by_status(self):
        app = self.start_upstream("app")
        inner_port, inner_config = h2_config(app.port)
        inner = self.start_phoenix(inner_config)
        edge_port, admin = free_port(), free_port()
        edge = self.start_phoenix(simple_config(edge_port, admin, [inner_port],
                                                cluster_name="inner", cluster_options={
                                                    "protocol": "HTTP2",
                                                    "health_checks": [_health_check()]}))
        line = inner.wait_access_log(lambda l: l["path"] == "/healthz")
        self.assertIsNotNone(line, inner.stdout_text())
        self.assertEqual(line["protocol"], "HTTP/2")
        edge.wait_for_stat("cluster.inner.health_check.success", lambda v: v >= 1)
        app.fail_next(100000, status=503)
        edge.wait_for_stat("cluster.inner.health_check.failure", lambda v: v >= 1)
