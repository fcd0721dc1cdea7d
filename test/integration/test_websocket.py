"""WebSocket through phoenix (HTTP/1.1 Upgrade, Envoy's upgrade_configs): a real client and a
real server (python3-websockets) on either side, echo both ways, routes that refuse the
upgrade (403, as Envoy), the upgrade stats, the stream idle timeout on a quiet tunnel, bounded
memory under a reader that stops, and the access log line (status 101)."""

import asyncio
import os
import threading
import time
import unittest

import websockets
import websockets.exceptions

from harness.base import PhoenixTestCase
from harness.config import make_cluster, make_config, make_listener, route, virtual_host
from harness.process import RssSampler, free_port, read_vmrss_kb

MiB = 1024 * 1024
FLOOD_MESSAGES = 64  # of 1 MiB each, from the upstream to a client that stops reading
RSS_GROWTH_LIMIT_KB = (32 * 1024) if os.environ.get("PHOENIX_SANITIZED") != "1" else 48 * 1024
WEBSOCKET = [{"upgrade_type": "websocket"}]


def wait_for_stall(counter, done, timeout=15.0, quiet=0.3):
    """Polls ``counter()`` until it has not changed for ``quiet`` seconds (back-pressure) or
    ``done()``; returns the counter value. (As test_streaming.py.)"""
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


class WsUpstream:
    """A WebSocket server on its own event loop thread. ``/echo*`` echoes every message;
    ``/flood`` sends FLOOD_MESSAGES binary messages of 1 MiB as fast as the client takes
    them, counting what it has sent."""

    def __init__(self):
        self.port = free_port()
        self.handshakes = 0
        self.flood_sent = 0
        self.flood_payload = os.urandom(MiB)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(websockets.serve(
                self._handle, "127.0.0.1", self.port, max_size=None, compression=None))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise AssertionError("the WebSocket upstream did not start")

    async def _handle(self, ws):
        self.handshakes += 1
        try:
            if ws.path.startswith("/flood"):
                for _ in range(FLOOD_MESSAGES):
                    await ws.send(self.flood_payload)
                    self.flood_sent += len(self.flood_payload)
                await ws.close()
                return
            async for message in ws:
                await ws.send(message)
        except websockets.exceptions.ConnectionClosed:
            pass

    def close(self):
        async def stop():
            self._server.close()
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class WebSocketTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = WsUpstream()
        cls.addClassCleanup(cls.ws.close)
        cls.port, cls.plain_port, cls.short_port = free_port(), free_port(), free_port()
        ingress = make_listener("ingress", cls.port, [virtual_host("all", ["*"], [
            route({"prefix": "/off"}, name="off",
                  route={"cluster": "ws", "upgrade_configs": [
                      {"upgrade_type": "websocket", "enabled": False}]}),
            route({"prefix": "/"}, cluster="ws", name="default"),
        ])], upgrade_configs=WEBSOCKET)
        # No upgrade_configs on the connection manager: only a route that enables it upgrades.
        plain = make_listener("plain", cls.plain_port, [virtual_host("all", ["*"], [
            route({"prefix": "/on"}, name="on",
                  route={"cluster": "ws", "upgrade_configs": [{"upgrade_type": "WebSocket"}]}),
            route({"prefix": "/"}, cluster="ws", name="default"),
        ])])
        short = make_listener("short", cls.short_port,
                              [virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="ws")])],
                              upgrade_configs=WEBSOCKET, stream_idle_timeout="0.5s")
        config = make_config(free_port(), [ingress, plain, short],
                             [make_cluster("ws", [cls.ws.port])])
        cls.px = cls.start_class_phoenix(config, concurrency=1)
        cls.rss_limit_kb = read_vmrss_kb(cls.px.pid) + RSS_GROWTH_LIMIT_KB

    def uri(self, path, port=None):
        return f"ws://127.0.0.1:{port or self.port}{path}"

    def test_echo_text_and_1mb_binary(self):
        payload = os.urandom(MiB)

        async def talk():
            async with websockets.connect(self.uri("/echo"), max_size=None,
                                          compression=None) as ws:
                await ws.send("hello through phoenix")
                text = await ws.recv()
                await ws.send(payload)
                binary = await ws.recv()
                return text, binary

        text, binary = run(talk())
        self.assertEqual(text, "hello through phoenix")
        self.assertEqual(binary, payload)

    def test_many_messages_both_ways_on_one_tunnel(self):
        async def talk():
            async with websockets.connect(self.uri("/echo/many")) as ws:
                got = []
                for i in range(200):
                    await ws.send(f"m{i}")
                    got.append(await ws.recv())
                return got

        self.assertEqual(run(talk()), [f"m{i}" for i in range(200)])

    def assertRefused(self, uri):
        before = self.ws.handshakes

        async def talk():
            async with websockets.connect(uri):
                pass

        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
            run(talk())
        self.assertEqual(refused.exception.status_code, 403)
        self.assertEqual(self.ws.handshakes, before, "a refused upgrade reached the upstream")

    def test_connection_manager_without_upgrade_configs_refuses_403(self):
        before = self.px.stat("http.plain.downstream_rq_ws_on_non_ws_route")
        self.assertRefused(self.uri("/echo", self.plain_port))
        self.assertEqual(self.px.stat("http.plain.downstream_rq_ws_on_non_ws_route"), before + 1)
        self.assertEqual(self.px.stat("http.plain.downstream_cx_upgrades_total"), 0)

    def test_route_disabling_the_upgrade_refuses_403(self):
        self.assertRefused(self.uri("/off/echo"))

    def test_route_enabling_the_upgrade_overrides_the_connection_manager(self):
        async def talk():
            async with websockets.connect(self.uri("/on/echo", self.plain_port)) as ws:
                await ws.send("on")
                return await ws.recv()

        self.assertEqual(run(talk()), "on")

    def test_upgrades_are_counted(self):
        total = self.px.stat("http.ingress.downstream_cx_upgrades_total")

        async def talk():
            async with websockets.connect(self.uri("/echo/count")) as ws:
                await ws.send("x")
                await ws.recv()
                return self.px.stat("http.ingress.downstream_cx_upgrades_active")

        self.assertGreaterEqual(run(talk()), 1, "an open tunnel is an active upgrade")
        self.assertEqual(self.px.stat("http.ingress.downstream_cx_upgrades_total"), total + 1)
        self.assertEqual(
            self.px.wait_for_stat("http.ingress.downstream_cx_upgrades_active", lambda v: v == 0),
            0, "the upgrade is still active after its tunnel closed")

    def test_access_log_shows_101(self):
        async def talk():
            async with websockets.connect(self.uri("/echo/logged")) as ws:
                await ws.send("12345")
                await ws.recv()

        run(talk())
        entry = self.px.wait_access_log(lambda e: e["path"] == "/echo/logged")
        self.assertIsNotNone(entry, "no access log line for the tunnel")
        self.assertEqual(entry["method"], "GET")
        self.assertEqual(entry["status"], 101)
        self.assertEqual(entry["flag_list"], [])

    def test_idle_tunnel_is_closed_by_the_stream_idle_timeout(self):
        before = self.px.stat("http.short.downstream_rq_idle_timeout")

        async def talk():
            # No pings: nothing moves on the tunnel once the echo is done.
            async with websockets.connect(self.uri("/echo/idle", self.short_port),
                                          ping_interval=None) as ws:
                await ws.send("once")
                await ws.recv()
                start = time.monotonic()
                await asyncio.wait_for(ws.wait_closed(), 10)
                return time.monotonic() - start

        idle_for = run(talk())
        self.assertGreaterEqual(idle_for, 0.4)
        self.assertEqual(self.px.stat("http.short.downstream_rq_idle_timeout"), before + 1)
        entry = self.px.wait_access_log(lambda e: e["path"] == "/echo/idle")
        self.assertIsNotNone(entry)
        self.assertEqual(entry["status"], 101)
        self.assertIn("SI", entry["flag_list"])

    def test_a_reader_that_stops_holds_the_upstream_back_within_bounded_memory(self):
        self.ws.flood_sent = 0
        total = FLOOD_MESSAGES * MiB
        with RssSampler(self.px.pid) as sampler:
            async def talk():
                # max_queue=1: the client library stops reading once a message waits unread.
                async with websockets.connect(self.uri("/flood"), max_size=None, max_queue=1,
                                              compression=None) as ws:
                    first = await ws.recv()
                    stalled_at = await asyncio.get_running_loop().run_in_executor(
                        None, wait_for_stall, lambda: self.ws.flood_sent,
                        lambda: self.ws.flood_sent >= total)
                    rss_paused = read_vmrss_kb(self.px.pid)
                    got = len(first)
                    try:
                        while True:
                            got += len(await ws.recv())
                    except websockets.exceptions.ConnectionClosedOK:
                        pass
                    return stalled_at, rss_paused, got

            stalled_at, rss_paused, got = run(talk(), timeout=120)
        self.assertLess(stalled_at, total,
                        "the upstream sent everything while the client was not reading: "
                        "no back-pressure through the tunnel")
        self.assertLess(rss_paused, self.rss_limit_kb,
                        f"phoenix RSS {rss_paused} KiB with the client not reading")
        self.assertEqual(got, total)
        self.assertLess(sampler.max_kb, self.rss_limit_kb,
                        f"phoenix peak RSS {sampler.max_kb} KiB during a {total} byte flood")


if __name__ == "__main__":
    unittest.main()
