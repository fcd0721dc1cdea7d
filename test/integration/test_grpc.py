"""gRPC through phoenix with the real implementation on both ends (@grpc/grpc-js): a client
calls phoenix over h2c, phoenix calls the gRPC server over HTTP/2 (a cluster with
`protocol: HTTP2`). Every kind of call, trailers intact, deadlines, cancellation, and
phoenix's own answers to gRPC requests as gRPC statuses."""

import json
import subprocess

from harness.base import PhoenixTestCase
from harness.config import make_cluster, route, simple_config
from harness.grpc import (CANCELLED, DEADLINE_EXCEEDED, OK, UNAVAILABLE, GrpcServer, grpc_call,
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
