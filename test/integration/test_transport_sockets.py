"""Transport sockets through the real binary: a listener served by an explicit filter chain
with a raw_buffer transport socket, a cluster (requests and health checks) with one, the
switch from the http_connection_manager shorthand to filter_chains on reload, and the config
errors that name file:line:column."""

import os
import subprocess
import tempfile

from harness.base import PhoenixTestCase
from harness.client import ClientConn, http_get
from harness.config import make_cluster, make_config, make_listener, route, virtual_host
from harness.payload import pattern_bytes, pattern_sha256
from harness.process import free_port, require_phoenix_bin, wait_until

RAW = "phoenix.transport_sockets.raw_buffer"
RAW_CONFIG = {"@type": "type.googleapis.com/phoenix.config.v1.RawBuffer"}


def chained_listener(port, transport_socket=None, name="main"):
    """Listener "ingress" whose connection manager sits in filter_chains[0], not in the
    http_connection_manager shorthand."""
    listener = make_listener("ingress", port, [virtual_host("all", ["*"], [
        route({"prefix": "/"}, cluster="app")])])
    chain = {"name": name, "http_connection_manager": listener.pop("http_connection_manager")}
    chain["transport_socket"] = transport_socket or {"name": RAW}
    listener["filter_chains"] = [chain]
    return listener


def raw_cluster(upstream_port, **options):
    return make_cluster("app", [upstream_port],
                        transport_socket={"name": RAW, "typed_config": RAW_CONFIG}, **options)


class RawTransportSocketTest(PhoenixTestCase):

    def test_explicit_chain_and_cluster_transport_socket_proxy_end_to_end(self):
        app = self.start_upstream("app")
        port, admin = free_port(), free_port()
        px = self.start_phoenix(make_config(admin, [chained_listener(port)],
                                            [raw_cluster(app.port)]))
        with ClientConn(port) as conn:
            for i in range(3):  # keep-alive on the one downstream connection
                conn.request("GET", f"/echo/{i}")
                r = conn.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], f"/echo/{i}")
            body = pattern_bytes(256 * 1024)  # large writes take the direct path
            conn.request("POST", "/sink", body=body)
            r = conn.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body_sha256"], pattern_sha256(len(body)))
            conn.request("GET", "/bytes/1000000")
            r = conn.read_response()
            self.assertEqual((r.status, len(r.body)), (200, 1000000))
        self.assertEqual(app.request_count(), 5)
        self.assertEqual(px.wait_for_stat("http.ingress.downstream_rq_2xx", lambda v: v >= 5), 5)
        self.assertNoUpstreamErrors(app)

        listener = px.config_dump()["bootstrap"]["static_resources"]["listeners"][0]
        self.assertEqual(listener["filter_chains"][0]["transport_socket"]["name"], RAW)
        self.assertNotIn("http_connection_manager", listener)
        cluster = px.config_dump()["bootstrap"]["static_resources"]["clusters"][0]
        self.assertEqual(cluster["transport_socket"]["typed_config"]["@type"],
                         RAW_CONFIG["@type"])
        self.assertAlive(px)

    def test_health_checks_use_the_cluster_transport_socket(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(make_config(free_port(), [chained_listener(port)], [raw_cluster(
            app.port, health_checks=[{"interval": "0.05s", "timeout": "0.5s",
                                      "http_health_check": {"path": "/healthz"}}])]))
        self.assertTrue(px.wait_for_stat("cluster.app.health_check.success", lambda v: v >= 2),
                        "no health check passed")
        self.assertTrue(app.find_request(lambda r: r["path"] == "/healthz"))
        self.assertEqual(http_get(port, "/after-checks").status, 200)

    def test_reload_from_shorthand_to_filter_chains_keeps_serving(self):
        app = self.start_upstream("app")
        port, admin = free_port(), free_port()
        shorthand = make_config(admin, [make_listener("ingress", port, [virtual_host(
            "all", ["*"], [route({"prefix": "/"}, cluster="app")])])], [make_cluster(
                "app", [app.port])])
        px = self.start_phoenix(shorthand)
        with ClientConn(port) as conn:
            conn.request("GET", "/before")
            self.assertEqual(conn.read_response().status, 200)
            version = px.config_version()
            chained = make_config(admin, [chained_listener(port, name="renamed")],
                                  [raw_cluster(app.port)])
            chained["static_resources"]["listeners"][0]["filter_chains"][0][
                "http_connection_manager"]["route_config"]["virtual_hosts"][0]["routes"] = [
                    route({"prefix": "/"}, direct_response={"status": 202})]
            px.reload_with(chained)
            self.assertTrue(wait_until(lambda: px.config_version() != version),
                            "the reload was not applied")
            # The open connection stays on the chain it began with; a new one gets the new one.
            conn.request("GET", "/open-connection")
            self.assertEqual(conn.read_response().status, 200)
        self.assertEqual(http_get(port, "/new-connection").status, 202)
        self.assertAlive(px)


class TransportSocketConfigErrorTest(PhoenixTestCase):

    def validate(self, config_text):
        path = os.path.join(tempfile.mkdtemp(prefix="phoenix-ts-"), "bad.yaml")
        self.addCleanup(lambda: __import__("shutil").rmtree(os.path.dirname(path), True))
        with open(path, "w") as f:
            f.write(config_text)
        p = subprocess.run([require_phoenix_bin(), "--mode", "validate", "-c", path],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        return p.returncode, path, (p.stdout + p.stderr).decode("utf-8", "replace")

    def test_unknown_transport_socket_is_named_with_a_suggestion(self):
        rc, path, out = self.validate(
            "static_resources:\n"
            "  listeners:\n"
            "  - name: ingress\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}\n"
            "    filter_chains:\n"
            "    - transport_socket:\n"
            "        name: envoy.transport_sockets.raw_buffer\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:7:9: static_resources.listeners[0].filter_chains[0]"
                      ".transport_socket.name: unknown transport socket "
                      "'envoy.transport_sockets.raw_buffer'; did you mean "
                      f"'{RAW}'?", out)

    def test_shorthand_and_filter_chains_together_are_rejected(self):
        rc, path, out = self.validate(
            "static_resources:\n"
            "  listeners:\n"
            "  - name: ingress\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}\n"
            "    http_connection_manager: {}\n"
            "    filter_chains: [{http_connection_manager: {}}]\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:5:5: static_resources.listeners[0].http_connection_manager: "
                      "give either http_connection_manager or filter_chains/"
                      "default_filter_chain, not both", out)

    def test_sni_match_on_a_raw_chain_is_rejected(self):
        rc, path, out = self.validate(
            "static_resources:\n"
            "  listeners:\n"
            "  - name: ingress\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}\n"
            "    filter_chains:\n"
            "    - filter_chain_match: {server_names: [app.example.com]}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:6:28: static_resources.listeners[0].filter_chains[0]"
                      ".filter_chain_match.server_names: matching on SNI/ALPN needs a TLS "
                      "transport socket", out)
