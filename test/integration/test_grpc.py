"""gRPC through phoenix with the real implementation on both ends (@grpc/grpc-js): a client
calls phoenix over h2c, phoenix calls the gRPC server over HTTP/2 (a cluster with
`protocol: HTTP2`). Every kind of call, trailers intact, deadlines, cancellation, and
phoenix's own answers to gRPC requests as gRPC statuses."""

from harness.base import PhoenixTestCase
from harness.config import route, simple_config
from harness.grpc import (CANCELLED, DEADLINE_EXCEEDED, OK, PERMISSION_DENIED,
                          RESOURCE_EXHAUSTED, UNAVAILABLE, UNIMPLEMENTED, GrpcServer, grpc_call,
                          peer_headers, start_grpc_call)
from harness.process import free_port

SERVICE = "/phoenix.test.Echo/"


def grpc_config(grpc_port, routes=None, cluster_options=None, **hcm_options):
    """Listener "ingress" routing everything to cluster "grpc" (HTTP/2) at ``grpc_port``."""
    port, admin = free_port(), free_port()
    options = {"protocol": "HTTP2"}
    options.update(cluster_options or {})
    config = simple_config(port, admin, [grpc_port], cluster_name="grpc",
                           cluster_options=options,
                           routes=routes or [route({"prefix": "/"}, cluster="grpc", name="grpc")],
                           **hcm_options)
    return port, config


class GrpcProxyTest(PhoenixTestCase):

    def setUp(self):
        self.server = GrpcServer()
        self.addCleanup(self.server.close)

    def diagnostics(self):
        return super().diagnostics() + "\n--- grpc server:\n" + self.server.logs()

    def test_unary_call_passes_through(self):
        port, config = grpc_config(self.server.port)
        px = self.start_phoenix(config)
        result = grpc_call(port, "Unary", message="hi", metadata={"x-tenant": "t1"})
        self.assertEqual(result["code"], OK, result)
        self.assertEqual(result["replies"][0]["message"], "hi")
        seen = peer_headers(result)
        self.assertEqual(seen["x-tenant"], "t1")
        self.assertIn("x-request-id", seen)
        self.assertEqual(seen[":path"], SERVICE + "Unary")
        # Trailers came back intact (the server's own trailer among them).
        self.assertIn("x-echo-attempt", result["trailers"])
        line = px.wait_access_log(lambda l: l["path"] == SERVICE + "Unary")
        self.assertEqual((line["protocol"], line["status"]), ("HTTP/2", 200))
        self.assertEqual(px.stat("cluster.grpc.upstream_cx_total"), 1)

    def test_streaming_calls_pass_through(self):
        port, config = grpc_config(self.server.port)
        self.start_phoenix(config)
        server_stream = grpc_call(port, "ServerStream", message="s", count=50)
        self.assertEqual(server_stream["code"], OK, server_stream)
        self.assertEqual(len(server_stream["replies"]), 50)
        client_stream = grpc_call(port, "ClientStream", message="c", count=20)
        self.assertEqual(client_stream["code"], OK, client_stream)
        bidi = grpc_call(port, "Bidi", message="b", count=10)
        self.assertEqual(bidi["code"], OK, bidi)
        self.assertEqual(len(bidi["replies"]), 10)

    def test_many_calls_share_few_upstream_connections(self):
        port, config = grpc_config(self.server.port)
        px = self.start_phoenix(config, concurrency=1)
        calls = [start_grpc_call(port, "Unary", message=f"m{i}", delay_ms=200) for i in range(8)]
        results = [c.result() for c in calls]
        self.assertEqual([r["code"] for r in results], [OK] * 8)
        self.assertEqual(px.stat("cluster.grpc.upstream_cx_total"), 1)

    def test_error_status_from_the_server_passes_through(self):
        port, config = grpc_config(self.server.port)
        self.start_phoenix(config)
        result = grpc_call(port, "Unary", message="e", fail_code=UNAVAILABLE)
        self.assertEqual(result["code"], UNAVAILABLE, result)
        self.assertEqual(result["details"], "failed on purpose")

    def test_deadline_exceeded(self):
        port, config = grpc_config(self.server.port)
        self.start_phoenix(config)
        result = grpc_call(port, "Unary", message="slow", delay_ms=3000, deadline_ms=300)
        self.assertEqual(result["code"], DEADLINE_EXCEEDED, result)
        self.server.wait_cancelled("Unary")

    def test_cancellation_reaches_the_server(self):
        port, config = grpc_config(self.server.port)
        px = self.start_phoenix(config)
        result = grpc_call(port, "ServerStream", message="c", count=100000, cancel_after_ms=200)
        self.assertEqual(result["code"], CANCELLED, result)
        self.server.wait_cancelled("ServerStream")
        line = px.wait_access_log(lambda l: l["path"] == SERVICE + "ServerStream")
        self.assertIn("DC", line["flag_list"])


ROUTER = {"name": "phoenix.filters.http.router"}


def grpc_route(**action):
    """A route of everything to cluster "grpc" with more RouteAction fields."""
    return {"match": {"prefix": "/"}, "route": {"cluster": "grpc", **action}}


class GrpcLocalReplyTest(PhoenixTestCase):
    """What phoenix answers itself reaches a gRPC client as a gRPC status (a Trailers-Only
    HTTP 200), never as an HTTP error the client cannot read."""

    def setUp(self):
        self.server = GrpcServer()
        self.addCleanup(self.server.close)

    def test_denied_method_is_permission_denied(self):
        deny = {"name": "phoenix.filters.http.access_policy", "typed_config": {
            "@type": "type.googleapis.com/phoenix.config.v1.AccessPolicy",
            "rules": [{"name": "no_bidi", "action": "DENY",
                       "match": {"path": {"exact": SERVICE + "Bidi"}}}]}}
        port, config = grpc_config(self.server.port, http_filters=[deny, ROUTER])
        px = self.start_phoenix(config)
        result = grpc_call(port, "Bidi", message="x", count=1)
        self.assertEqual(result["code"], PERMISSION_DENIED, result)
        self.assertEqual(result["details"], "forbidden")
        self.assertEqual(grpc_call(port, "Unary", message="ok")["code"], OK)
        self.assertEqual(self.server.calls("Bidi"), 0)
        line = px.wait_access_log(lambda l: l["path"] == SERVICE + "Bidi")
        self.assertEqual((line["status"], line["flags"]), (200, "DENY"))

    def test_rate_limited_is_resource_exhausted(self):
        limit = {"name": "phoenix.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/phoenix.config.v1.LocalRateLimit",
            "limits": [{"name": "one", "token_bucket": {"max_tokens": 1, "fill_interval": "60s"}}]}}
        port, config = grpc_config(self.server.port, http_filters=[limit, ROUTER])
        self.start_phoenix(config)
        self.assertEqual(grpc_call(port, "Unary", message="1")["code"], OK)
        result = grpc_call(port, "Unary", message="2")
        self.assertEqual(result["code"], RESOURCE_EXHAUSTED, result)
        self.assertEqual(result["details"], "too many requests")

    def test_no_route_is_unimplemented(self):
        port, config = grpc_config(self.server.port, routes=[
            route({"prefix": SERVICE + "Unary"}, cluster="grpc")])
        self.start_phoenix(config)
        self.assertEqual(grpc_call(port, "Unary", message="x")["code"], OK)
        self.assertEqual(grpc_call(port, "ServerStream", message="x")["code"], UNIMPLEMENTED)

    def test_upstream_down_is_unavailable(self):
        port, config = grpc_config(free_port())  # Nothing listens there.
        self.start_phoenix(config)
        result = grpc_call(port, "Unary", message="x")
        self.assertEqual(result["code"], UNAVAILABLE, result)

    def test_grpc_timeout_is_the_deadline_phoenix_enforces(self):
        port, config = grpc_config(self.server.port, routes=[grpc_route(
            max_stream_duration={"grpc_timeout_header_max": "0.3s"})])
        px = self.start_phoenix(config)
        # The client allows 10 s, the route caps it at 0.3 s: phoenix's deadline fires first.
        result = grpc_call(port, "Unary", message="slow", delay_ms=3000, deadline_ms=10000)
        self.assertEqual(result["code"], DEADLINE_EXCEEDED, result)
        self.assertLess(result["elapsed_ms"], 3000)
        line = px.wait_access_log(lambda l: l["path"] == SERVICE + "Unary")
        self.assertIn("UT", line["flag_list"])

    def test_max_stream_duration_ends_a_long_stream(self):
        port, config = grpc_config(self.server.port, routes=[grpc_route(
            max_stream_duration={"max_stream_duration": "0.5s"})])
        px = self.start_phoenix(config)
        result = grpc_call(port, "ServerStream", message="long", count=100000, delay_ms=0)
        self.assertNotEqual(result["code"], OK, "a 100k-message stream ended within 0.5 s")
        line = px.wait_access_log(lambda l: l["path"] == SERVICE + "ServerStream")
        self.assertIn("UMSDR", line["flag_list"])

    def test_unavailable_is_retried_when_the_route_says_so(self):
        port, config = grpc_config(self.server.port, routes=[grpc_route(
            retry_policy={"retry_on": "unavailable", "num_retries": 2})])
        self.start_phoenix(config)
        result = grpc_call(port, "Unary", message="flaky", fail_code=UNAVAILABLE, fail_times=1)
        self.assertEqual(result["code"], OK, result)
        self.assertEqual(self.server.calls("Unary"), 2)
        # Without the condition, the UNAVAILABLE goes to the client as it came.
        port2, config2 = grpc_config(self.server.port)
        self.start_phoenix(config2)
        result = grpc_call(port2, "Unary", message="flaky2", fail_code=UNAVAILABLE, fail_times=1)
        self.assertEqual(result["code"], UNAVAILABLE, result)


class GrpcStatsTest(PhoenixTestCase):
    """phoenix.filters.http.grpc_stats counts calls per service and method by grpc-status."""

    def setUp(self):
        self.server = GrpcServer()
        self.addCleanup(self.server.close)

    def test_calls_are_counted_by_method_and_status(self):
        stats = {"name": "phoenix.filters.http.grpc_stats", "typed_config": {
            "@type": "type.googleapis.com/phoenix.config.v1.GrpcStats",
            "individual_method_stats_allowlist": {
                "services": [{"name": "phoenix.test.Echo", "method_names": ["Unary"]}]}}}
        port, config = grpc_config(self.server.port, http_filters=[stats, ROUTER])
        px = self.start_phoenix(config)
        self.assertEqual(grpc_call(port, "Unary", message="a")["code"], OK)
        self.assertEqual(grpc_call(port, "Unary", message="b", fail_code=UNAVAILABLE)["code"],
                         UNAVAILABLE)
        self.assertEqual(grpc_call(port, "ServerStream", message="c", count=2)["code"], OK)
        unary = "http.ingress.grpc.phoenix.test.Echo.Unary."
        self.assertEqual(px.wait_for_stat(unary + "total", lambda v: v >= 2), 2)
        self.assertEqual(px.stat(unary + "success"), 1)
        self.assertEqual(px.stat(unary + "failure"), 1)
        self.assertEqual(px.stat(unary + "14"), 1)
        # ServerStream is not on the allow-list: counted as other.
        self.assertEqual(px.wait_for_stat("http.ingress.grpc.other.other.total",
                                          lambda v: v >= 1), 1)
        self.assertEqual(px.stat("http.ingress.grpc.phoenix.test.Echo.ServerStream.total"), 0)
        # A local reply is counted with the status it carried.
        deny_all = {"match": {"prefix": "/"}, "direct_response": {"status": 403}}
        port2, config2 = grpc_config(self.server.port, routes=[deny_all],
                                     http_filters=[stats, ROUTER])
        px2 = self.start_phoenix(config2)
        self.assertEqual(grpc_call(port2, "Unary", message="d")["code"], PERMISSION_DENIED)
        self.assertEqual(px2.wait_for_stat(unary + "7", lambda v: v >= 1), 1)
