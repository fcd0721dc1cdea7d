"""The global_ratelimit filter through real binaries and a real redis-server: one limit held by
two phoenix processes together, the FAIL_OPEN / FAIL_CLOSED outcome while Redis is down and the
limit back once it returns (the client reconnects), keys over their limit answered without a
round trip, and config errors with file:line:column."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import simple_config
from harness.process import die_with_parent, free_port, phoenix_bin, wait_until

ROUTER = {"name": "phoenix.filters.http.router"}
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A redis-server on a loopback port, with no persistence, and a minimal RESP client."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="phoenix-redis-")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent)

        def pong():
            try:
                return self.command("PING") == "PONG"
            except OSError:
                return False
        if not wait_until(pong, timeout=10):
            raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = [f"*{len(args)}\r\n".encode()]
            for a in args:
                a = str(a).encode()
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
            s.sendall(b"".join(out))
            return self._read(s.makefile("rb"))

    def _read(self, f):
        line = f.readline()
        if not line:
            raise OSError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise AssertionError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self._read(f) for _ in range(int(rest))]
        raise AssertionError(f"unexpected RESP {line!r}")

    def command_calls(self, name):
        """How many times the server ran `name` (INFO commandstats)."""
        m = re.search(rf"cmdstat_{name}:calls=(\d+)", self.command("INFO", "commandstats"))
        return int(m.group(1)) if m else 0


def global_filter(redis_port, limits, failure_mode="FAIL_OPEN", timeout="0.2s", max_lease=0):
    return {"name": "phoenix.filters.http.global_ratelimit",
            "typed_config": {"@type": "type.googleapis.com/phoenix.config.v1.GlobalRateLimit",
                             "stat_prefix": "grl", "domain": "it",
                             "redis": {"addresses": [f"127.0.0.1:{redis_port}"],
                                       "timeout": timeout},
                             "failure_mode": failure_mode, "limits": limits,
                             "max_lease": max_lease}}


def per_user(n, unit="HOUR", window="FIXED"):
    return [{"name": "certs", "match": {"path": {"prefix": "/generatecert"}},
             "key": {"header": "x-user"}, "requests_per_unit": n, "unit": unit,
             "window": window}]


class GlobalRateLimitTest(PhoenixTestCase):

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.close)
        self.app = self.start_upstream("app")

    def start_proxy(self, limits, concurrency=1, **options):
        port, admin = free_port(), free_port()
        px = self.start_phoenix(simple_config(
            port, admin, [self.app.port],
            http_filters=[global_filter(self.redis.port, limits, **options), ROUTER]),
            concurrency=concurrency)
        px.listen_port = port
        return px

    @staticmethod
    def get(px, user, path="/generatecert"):
        return http_get(px.listen_port, path, headers={"x-user": user}, timeout=5)

    def test_two_proxies_hold_one_limit_together(self):
        self.check_two_proxies_hold_one_limit(max_lease=0)

    def test_two_proxies_with_token_leases_hold_one_limit_in_fewer_round_trips(self):
        calls = self.check_two_proxies_hold_one_limit(max_lease=50)
        # Exact counting makes one round trip per request (900); leases far fewer.
        self.assertLess(calls, 300)

    def check_two_proxies_hold_one_limit(self, max_lease):
        """3x a limit of 300 through 2 proxies x 2 workers; returns the Redis increments."""
        limit = 300
        proxies = [self.start_proxy(per_user(limit), concurrency=2, max_lease=max_lease)
                   for _ in range(2)]
        for attempt in range(2):
            user = f"run{attempt}"
            calls_before = self.redis.command_calls("incrby")
            hour = int(time.time()) // 3600
            statuses, lock = {0: [], 1: []}, threading.Lock()

            def run(which, count):
                for _ in range(count):
                    status = self.get(proxies[which], user).status
                    with lock:
                        statuses[which].append(status)

            # 3x the limit, from 4 threads per proxy, fresh connections (every worker).
            threads = [threading.Thread(target=run, args=(n % 2, 3 * limit // 8))
                       for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if int(time.time()) // 3600 != hour:
                continue  # The run crossed into a new window: run again.
            every = statuses[0] + statuses[1]
            self.assertEqual(set(every), {200, 429})
            allowed = every.count(200)
            self.assertLessEqual(abs(allowed - limit), limit * 0.03,
                                 f"{allowed} allowed of a limit of {limit}")
            self.assertGreater(statuses[0].count(200), 0)
            self.assertGreater(statuses[1].count(200), 0)
            self.assertEqual(self.app.request_count(), allowed)
            self.assertEqual(sum(px.stat("http.ingress.global_ratelimit.grl.certs.allowed")
                                 for px in proxies), allowed)
            self.assertEqual(sum(px.stat("http.ingress.global_ratelimit.grl.redis_error")
                                 for px in proxies), 0)
            leased = sum(px.stat("http.ingress.global_ratelimit.grl.lease_hit") for px in proxies)
            if max_lease:
                self.assertGreater(leased, 0)
            else:
                self.assertEqual(leased, 0)
            calls = self.redis.command_calls("incrby") - calls_before
            r = self.get(proxies[0], user)
            self.assertEqual(r.status, 429)
            self.assertEqual(r.header("x-ratelimit-limit"), str(limit))
            self.assertEqual(r.header("x-ratelimit-remaining"), "0")
            self.assertTrue(1 <= int(r.header("retry-after")) <= 3600, r.headers)
            self.assertEqual(r.header("retry-after"), r.header("x-ratelimit-reset"))
            entry = proxies[0].wait_access_log(lambda e: e["status"] == 429)
            self.assertIsNotNone(entry)
            self.assertIn("RL", entry["flag_list"], entry)
            return calls
        self.fail("both runs crossed an hour boundary")

    def test_a_sliding_window_counts_in_redis(self):
        px = self.start_proxy(per_user(3, unit="HOUR", window="SLIDING"))
        self.assertEqual([self.get(px, "s").status for _ in range(4)], [200, 200, 200, 429])
        hour = int(time.time()) // 3600
        self.assertEqual(self.redis.command("GET", f"phx_rl:it:certs:{hour}:s"), "4")
        self.assertGreater(self.redis.command("TTL", f"phx_rl:it:certs:{hour}:s"), 3600)

    def test_over_limit_keys_cost_no_round_trip(self):
        px = self.start_proxy(per_user(3))
        self.assertEqual([self.get(px, "carol").status for _ in range(4)], [200, 200, 200, 429])
        calls = self.redis.command_calls("incrby")
        self.assertEqual(calls, 4)
        self.assertEqual([self.get(px, "carol").status for _ in range(10)], [429] * 10)
        self.assertEqual(self.redis.command_calls("incrby"), calls, "a cached key asked Redis")
        self.assertEqual(px.stat("http.ingress.global_ratelimit.grl.over_limit_cache_hit"), 10)
        self.assertEqual(px.stat("http.ingress.global_ratelimit.grl.certs.limited"), 11)
        self.assertEqual(self.get(px, "dave").status, 200, "other keys still count")
        self.assertEqual(self.redis.command_calls("incrby"), calls + 1)

    def test_a_flushed_script_cache_is_loaded_again(self):
        px = self.start_proxy(per_user(100), failure_mode="FAIL_CLOSED")
        # The first increment goes out with the script (EVAL) before SCRIPT LOAD has answered.
        self.assertEqual([self.get(px, "ivy").status for _ in range(2)], [200, 200])
        self.assertEqual(self.redis.command_calls("eval"), 1)
        self.assertEqual(self.redis.command_calls("evalsha"), 1)
        self.redis.command("SCRIPT", "FLUSH")
        # The first increment after the flush meets NOSCRIPT (FAIL_CLOSED: 500); phoenix then
        # sends the script whole until it is loaded again.
        self.assertEqual([self.get(px, "ivy").status for _ in range(3)], [500, 200, 200])
        self.assertEqual(px.stat("http.ingress.global_ratelimit.grl.redis_error"), 1)
        self.assertEqual(self.redis.command("GET", f"phx_rl:it:certs:{int(time.time()) // 3600}"
                                                   ":ivy"), "4")

    def wait_reconnected(self, px, stat):
        """Until a request is counted by Redis again (not decided by failure_mode)."""
        def counted():
            before = px.stat(stat)
            self.get(px, "probe")
            return px.stat(stat) == before
        self.assertTrue(wait_until(counted, timeout=10), "phoenix did not reconnect to Redis")

    def test_fail_open_while_redis_is_down_then_the_limit_holds_again(self):
        px = self.start_proxy(per_user(2))
        self.assertEqual([self.get(px, "erin").status for _ in range(3)], [200, 200, 429])
        # Load in the background through the kill and the restart: calls in flight when the
        # connection drops must end cleanly (every key is fresh, so FAIL_OPEN lets all on).
        background, stop = [], threading.Event()

        def load():
            i = 0
            while not stop.is_set():
                try:
                    background.append(self.get(px, f"bg{i}").status)
                except OSError as e:
                    background.append(repr(e))
                i += 1
        loader = threading.Thread(target=load)
        loader.start()
        self.addCleanup(loader.join)
        self.addCleanup(stop.set)
        wait_until(lambda: len(background) >= 20)
        self.redis.kill()
        wait_until(lambda: len(background) >= 40)
        self.assertEqual([self.get(px, f"u{i}").status for i in range(5)], [200] * 5)
        self.assertGreaterEqual(
            px.stat("http.ingress.global_ratelimit.grl.failure_mode_allowed"), 5)
        self.assertGreaterEqual(px.stat("http.ingress.global_ratelimit.grl.redis_error"), 5)
        self.assertEqual(self.get(px, "erin").status, 429, "the over-limit cache still holds")
        self.redis.start()  # Same port, empty counters.
        self.wait_reconnected(px, "http.ingress.global_ratelimit.grl.failure_mode_allowed")
        count = len(background)
        wait_until(lambda: len(background) >= count + 20)
        stop.set()
        loader.join()
        self.assertEqual(set(background), {200})
        self.assertEqual([self.get(px, "frank").status for _ in range(3)], [200, 200, 429])
        self.assertEqual(self.redis.command("GET", f"phx_rl:it:certs:{int(time.time()) // 3600}"
                                                   ":frank"), "3")

    def test_fail_closed_refuses_while_redis_is_down(self):
        px = self.start_proxy(per_user(100), failure_mode="FAIL_CLOSED")
        self.assertEqual(self.get(px, "gina").status, 200)
        self.redis.kill()
        r = self.get(px, "gina")
        self.assertEqual(r.status, 500)
        self.assertEqual(self.get(px, "other", path="/free").status, 200,
                         "requests no limit covers need no Redis")
        self.assertEqual(px.stat("http.ingress.global_ratelimit.grl.failure_mode_denied"), 1)
        entry = px.wait_access_log(lambda e: e["status"] == 500)
        self.assertIsNotNone(entry)
        self.assertIn("RLSE", entry["flag_list"], entry)
        self.redis.start()
        self.wait_reconnected(px, "http.ingress.global_ratelimit.grl.failure_mode_denied")
        self.assertEqual(self.get(px, "gina").status, 200)

    def test_a_redis_slower_than_the_timeout_decides_by_failure_mode(self):
        px = self.start_proxy(per_user(100), failure_mode="FAIL_CLOSED", timeout="0.05s")
        self.assertEqual(self.get(px, "hal").status, 200)
        self.redis.proc.send_signal(signal.SIGSTOP)  # Connected, but silent.
        try:
            start = time.monotonic()
            self.assertEqual(self.get(px, "hal").status, 500)
            self.assertLess(time.monotonic() - start, 2.0)
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.assertEqual(px.stat("http.ingress.global_ratelimit.grl.failure_mode_denied"), 1)


class GlobalRateLimitConfigTest(unittest.TestCase):

    def validate(self, typed_config):
        config = simple_config(free_port(), free_port(), [free_port()], http_filters=[
            {"name": "phoenix.filters.http.global_ratelimit", "typed_config": typed_config},
            ROUTER])
        text = json.dumps(config, indent=2)
        directory = tempfile.mkdtemp(prefix="phoenix-grl-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "phoenix.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([phoenix_bin(), "--mode", "validate", "-c", path],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        return p.returncode, (p.stdout + p.stderr).decode(), text

    @staticmethod
    def line_of(text, needle):
        return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)

    def test_bad_address_and_missing_fields_name_file_line_column(self):
        rc, out, text = self.validate({
            "@type": "type.googleapis.com/phoenix.config.v1.GlobalRateLimit",
            "stat_prefix": "grl",
            "redis": {"addresses": ["nowhere"]},
            "limits": [{"name": "a", "unit": "MINUTE"}]})
        self.assertNotEqual(rc, 0, out)
        line = self.line_of(text, '"nowhere"')
        self.assertRegex(out, rf"phoenix\.yaml:{line}:\d+: \S*redis\.addresses\[0\]: "
                              r"'nowhere' is not host:port")
        line = self.line_of(text, '"name": "a"')
        self.assertRegex(out, rf"phoenix\.yaml:\d+:\d+: \S*limits\[0\]\.requests_per_unit: "
                              r"must be > 0")
        rc, out, text = self.validate({
            "@type": "type.googleapis.com/phoenix.config.v1.GlobalRateLimit",
            "stat_prefix": "grl",
            "limits": [{"name": "a", "unit": "MINUTE", "requests_per_unit": 1}]})
        self.assertNotEqual(rc, 0, out)
        line = self.line_of(text, '"typed_config"')
        self.assertRegex(out, rf"phoenix\.yaml:{line}:\d+: \S*typed_config\.redis: "
                              r"set redis\.addresses")

    def test_a_good_config_validates(self):
        rc, out, _ = self.validate({
            "@type": "type.googleapis.com/phoenix.config.v1.GlobalRateLimit",
            "stat_prefix": "grl", "failure_mode": "FAIL_CLOSED",
            "redis": {"addresses": ["127.0.0.1:6379", "[::1]:6380"], "timeout": "0.02s"},
            "limits": per_user(100, unit="MINUTE", window="SLIDING")})
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
