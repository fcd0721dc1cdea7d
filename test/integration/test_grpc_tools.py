"""The gRPC test tooling on its own, without phoenix: harness.grpc's client (client.js,
grpc-js) straight to its server (server.js, grpc-js) over h2c — every method, a deadline, a
cancellation, failures on purpose and fail_times — so that a gRPC test through phoenix that
fails points at phoenix, not at the tools."""

import unittest

from harness import grpc
from harness.base import PhoenixTestCase
from harness.grpc import GrpcServer, grpc_call, peer_headers, start_grpc_call
from harness.process import free_port


class GrpcToolsTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = GrpcServer("echo")
        cls.addClassCleanup(cls.server.close)

    def diagnostics(self):
        return "\n".join(filter(None, [super().diagnostics(), self.server.logs()]))

    def call(self, method, **options):
        return grpc_call(self.server.target, method, **options)

    def assertStatus(self, result, code, details=None):
        self.assertEqual(result["code"], code, result)
        if details is not None:
            self.assertEqual(result["details"], details, result)

    # -- the four methods ---------------------------------------------------------------
    def test_unary(self):
        before = self.server.calls("Unary")
        result = self.call("Unary", message="one", deadline_ms=10000,
                           metadata={"x-test": "a", "x-token-bin": "AAEC"})
        self.assertStatus(result, grpc.OK, "OK")
        self.assertEqual([(r["message"], r["index"]) for r in result["replies"]], [("one", 0)])
        self.assertEqual(result["headers"]["x-echo-method"], "Unary")
        self.assertEqual(result["trailers"]["x-echo-attempt"], "1")
        seen = peer_headers(result)
        self.assertEqual(seen["x-test"], "a")
        self.assertEqual(seen["x-token-bin"], "AAEC")
        self.assertEqual(seen[":path"], "/phoenix.test.Echo/Unary")
        self.assertEqual(seen[":authority"], self.server.target)
        self.assertTrue(seen["user-agent"].startswith("grpc-node-js/"), seen)
        self.assertTrue(0 < seen[":deadline-ms"] <= 10000, seen)
        # The stats count a call before the client has its status.
        self.assertEqual(self.server.calls("Unary"), before + 1)
        self.assertEqual(self.server.active(), 0)

    def test_server_stream(self):
        result = self.call("ServerStream", message="many", count=3)
        self.assertStatus(result, grpc.OK)
        self.assertEqual([(r["message"], r["index"]) for r in result["replies"]],
                         [("many", 0), ("many", 1), ("many", 2)])
        self.assertEqual(peer_headers(result, 2)[":path"], "/phoenix.test.Echo/ServerStream")
        self.assertNotIn(":deadline-ms", peer_headers(result))  # no deadline, none sent

    def test_server_stream_of_no_message(self):
        result = self.call("ServerStream", message="none", count=0)
        self.assertStatus(result, grpc.OK)
        self.assertEqual(result["replies"], [])
        self.assertEqual(result["trailers"]["x-echo-attempt"], "1")

    def test_client_stream(self):
        result = self.call("ClientStream", message="up", count=3)
        self.assertStatus(result, grpc.OK)
        self.assertEqual([(r["message"], r["index"]) for r in result["replies"]],
                         [("up,up,up", 3)])
        self.assertEqual(result["headers"]["x-echo-method"], "ClientStream")

    def test_bidi_ping_pong(self):
        result = self.call("Bidi", message="pong", count=3, delay_ms=20)
        self.assertStatus(result, grpc.OK)
        self.assertEqual([(r["message"], r["index"]) for r in result["replies"]],
                         [("pong", 0), ("pong", 1), ("pong", 2)])
        # Ping-pong: each request waited for the previous reply, each reply for 20 ms.
        self.assertGreaterEqual(result["elapsed_ms"], 60)

    # -- deadlines and cancellation -----------------------------------------------------
    def test_deadline_exceeded(self):
        before = self.server.cancelled("Unary")
        result = self.call("Unary", message="late", delay_ms=5000, deadline_ms=200)
        self.assertStatus(result, grpc.DEADLINE_EXCEEDED)
        self.assertEqual(result["replies"], [])
        self.assertLess(result["elapsed_ms"], 4000)
        # The server may notice only when its 5 s delay ends: wait past that, with room.
        self.assertTrue(self.server.wait_cancelled("Unary", before + 1, timeout=15),
                        "the server never saw the deadline pass")

    def test_cancellation(self):
        before = self.server.cancelled("ServerStream")
        result = self.call("ServerStream", message="cut", count=10, delay_ms=100,
                           cancel_after_ms=250)
        self.assertStatus(result, grpc.CANCELLED, "Cancelled on client")
        self.assertLess(len(result["replies"]), 10, result)
        self.assertTrue(self.server.wait_cancelled("ServerStream", before + 1),
                        "the server never saw the cancellation")

    # -- failures on purpose ------------------------------------------------------------
    def test_fail_code_unavailable(self):
        before = self.server.statuses("Unary").get(grpc.UNAVAILABLE, 0)
        result = self.call("Unary", message="broken", fail_code=grpc.UNAVAILABLE)
        self.assertStatus(result, grpc.UNAVAILABLE, "failed on purpose")
        self.assertEqual(result["replies"], [])
        self.assertEqual(result["trailers"]["x-echo-attempt"], "1")
        self.assertEqual(self.server.statuses("Unary").get(grpc.UNAVAILABLE), before + 1)
        # Failing streams too: before any reply (gRPC's Trailers-Only answer).
        methods = ("ServerStream", "ClientStream", "Bidi")
        calls = [start_grpc_call(self.server.target, method, message=f"broken-{method}",
                                 count=2, fail_code=grpc.UNAVAILABLE) for method in methods]
        for method, call in zip(methods, calls):
            result = call.result()
            self.assertStatus(result, grpc.UNAVAILABLE, "failed on purpose")
            self.assertEqual(result["replies"], [], method)

    def test_fail_times_then_succeed(self):
        codes, attempts = [], []
        for _ in range(3):
            result = self.call("Unary", message="flaky", fail_code=grpc.UNAVAILABLE,
                               fail_times=2)
            codes.append(result["code"])
            attempts.append(result["trailers"]["x-echo-attempt"])
        self.assertEqual(codes, [grpc.UNAVAILABLE, grpc.UNAVAILABLE, grpc.OK])
        self.assertEqual(attempts, ["1", "2", "3"])
        # Counted per message: another message starts failing afresh.
        result = self.call("Unary", message="flaky-2", fail_code=grpc.UNAVAILABLE, fail_times=2)
        self.assertStatus(result, grpc.UNAVAILABLE)

    # -- the tools themselves -----------------------------------------------------------
    def test_unreachable_target_is_unavailable(self):
        result = grpc_call(free_port(), "Unary", message="nobody")
        self.assertStatus(result, grpc.UNAVAILABLE)

    def test_concurrent_calls(self):
        calls = [start_grpc_call(self.server.target, "Unary", message=f"c{i}", delay_ms=200)
                 for i in range(4)]
        results = [c.result() for c in calls]
        self.assertEqual([r["replies"][0]["message"] for r in results],
                         ["c0", "c1", "c2", "c3"])

    def test_client_usage_error_fails_loudly(self):
        with self.assertRaisesRegex(AssertionError, "exited 2"):
            grpc_call(self.server.target, "Unary", message="x", metadata={"Bad Key": "v"})

    def test_server_exits_cleanly_on_sigterm(self):
        server = GrpcServer("short-lived")
        self.addCleanup(server.close)
        self.assertStatus(grpc_call(server.target, "Unary", message="hi"), grpc.OK)
        self.assertEqual(server.stop(), 0)
        self.assertEqual(server.calls("Unary"), 1)


if __name__ == "__main__":
    unittest.main()
