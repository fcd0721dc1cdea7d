"""Clusters that name their endpoints: STRICT_DNS and LOGICAL_DNS with `localhost` (resolved
through /etc/hosts, so no network is needed), re-resolution every dns_refresh_rate, a name that
does not resolve (503 and update_failure), a reload that keeps the resolved hosts, and STATIC
refusing a host name at validation."""

import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.config import simple_config
from harness.process import free_port, wait_until


def dns_config(port, admin, upstream_port, cluster_type, address="localhost",
               connect_timeout="1s", **options):
    cfg = simple_config(port, admin, [upstream_port], connect_timeout=connect_timeout,
                        cluster_options=dict({"type": cluster_type, "dns_refresh_rate": "0.1s"},
                                             **options))
    endpoint = cfg["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"] = address
    return cfg


def cluster_hosts(px):
    _, body = px.admin_get("/clusters")
    text = body.decode() if isinstance(body, bytes) else body
    return sorted({line.split("::")[1] for line in text.splitlines() if "::priority::" in line})


class DnsClusterTest(PhoenixTestCase):

    def serving(self, port, path="/"):
        return wait_until(lambda: http_get(port, path).status == 200, timeout=10)

    def check_localhost_cluster(self, cluster_type, expected_host):
        app = self.start_upstream("app")
        port = free_port()
        # One worker: one pool, so reused connections can be counted.
        px = self.start_phoenix(dns_config(port, free_port(), app.port, cluster_type),
                                concurrency=1)
        # The first resolution starts when the config is applied; poll until it is done.
        self.assertTrue(self.serving(port), f"{cluster_type} localhost never served")
        self.assertEqual(cluster_hosts(px), [expected_host.format(port=app.port)])
        self.assertGreaterEqual(px.stat("cluster.app.update_success"), 1)
        self.assertEqual(px.stat("cluster.app.update_failure"), 0)
        self.assertEqual(px.stat("cluster.app.membership_hosts"), 1)

        # Names are resolved again every dns_refresh_rate; a host that stays keeps its
        # connections: requests across several refreshes reuse the first one.
        connections = px.stat("cluster.app.upstream_cx_total")
        attempts = px.stat("cluster.app.update_attempt")
        for i in range(5):
            self.assertEqual(http_get(port, f"/r{i}").status, 200)
        px.wait_for_stat("cluster.app.update_success", lambda v: v >= attempts + 3, timeout=10)
        self.assertGreaterEqual(px.stat("cluster.app.update_attempt"), attempts + 3)
        for i in range(5):
            self.assertEqual(http_get(port, f"/s{i}").status, 200)
        self.assertEqual(px.stat("cluster.app.upstream_cx_total"), connections)
        self.assertEqual(app.request_count(), 11)
        self.assertNoUpstreamErrors(app)

    def test_strict_dns_resolves_localhost(self):
        self.check_localhost_cluster("STRICT_DNS", "127.0.0.1:{port}")

    def test_logical_dns_resolves_localhost(self):
        self.check_localhost_cluster("LOGICAL_DNS", "localhost:{port}")

    def test_a_name_that_does_not_resolve_answers_503_and_counts_failures(self):
        port = free_port()
        px = self.start_phoenix(dns_config(port, free_port(), free_port(), "STRICT_DNS",
                                           address="nonexistent.invalid"))
        px.wait_for_stat("cluster.app.update_failure", lambda v: v >= 1, timeout=30)
        self.assertGreaterEqual(px.stat("cluster.app.update_failure"), 1)
        self.assertEqual(px.stat("cluster.app.update_success"), 0)
        response = http_get(port, "/nowhere")
        self.assertEqual(response.status, 503)
        entry = px.wait_access_log(lambda e: e.get("path") == "/nowhere")
        self.assertIsNotNone(entry, px.stdout_text())
        self.assertIn("UH", entry["flag_list"])
        self.assertEqual(cluster_hosts(px), [])
        self.assertAlive(px)

    def test_resolved_hosts_are_health_checked(self):
        app = self.start_upstream("app")
        port = free_port()
        px = self.start_phoenix(dns_config(port, free_port(), app.port, "STRICT_DNS",
                                           health_checks=[{
                                               "interval": "0.05s", "timeout": "0.5s",
                                               "unhealthy_threshold": 1, "healthy_threshold": 1,
                                               "http_health_check": {"path": "/healthz"}}]))
        # The cluster had no hosts when its checker was made: checks start as names resolve.
        px.wait_for_stat("cluster.app.health_check.success", lambda v: v >= 2, timeout=10)
        self.assertIsNotNone(app.find_request(lambda r: r["path"] == "/healthz"))
        self.assertEqual(px.stat("cluster.app.health_check.failure"), 0)
        _, body = px.admin_get("/stats/prometheus")
        text = body.decode() if isinstance(body, bytes) else body
        self.assertRegex(text, r'update_success_total\{cluster_name="app"\} [1-9]')

    def test_a_changed_dns_cluster_serves_through_a_reload(self):
        app = self.start_upstream("app")
        port, admin = free_port(), free_port()
        px = self.start_phoenix(dns_config(port, admin, app.port, "STRICT_DNS",
                                           dns_refresh_rate="60s"))
        self.assertTrue(self.serving(port))
        v0 = px.config_version()
        successes = px.stat("cluster.app.update_success")
        # Another connect_timeout: a new cluster, which starts from the old one's addresses
        # rather than from none while its first resolution runs.
        px.write_config(dns_config(port, admin, app.port, "STRICT_DNS", dns_refresh_rate="60s",
                                   connect_timeout="2s"))
        status, body = px.admin_post("/reload")
        self.assertEqual(status, 200, body)
        self.assertGreater(px.config_version(), v0)
        self.assertEqual(http_get(port, "/after").status, 200)
        # Its own first resolution finds the same address: the hosts never changed.
        px.wait_for_stat("cluster.app.update_success", lambda v: v >= successes + 1)
        self.assertEqual(px.stderr_text().count("cluster app: hosts now"), 1, px.stderr_text())


class StaticHostNameTest(PhoenixTestCase):

    def test_a_host_name_in_a_static_cluster_is_an_error_at_the_field(self):
        rc, path, out = self.validate_config(
            "static_resources:\n"
            "  listeners:\n"
            "  - name: l\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 18080}}\n"
            "    http_connection_manager:\n"
            "      route_config: {virtual_hosts: [{name: v, domains: ['*'], routes: "
            "[{match: {prefix: /}, route: {cluster: a}}]}]}\n"
            "  clusters:\n"
            "  - name: a\n"
            "    load_assignment:\n"
            "      endpoints:\n"
            "      - lb_endpoints:\n"
            "        - endpoint: {address: {socket_address: {address: localhost, "
            "port_value: 80}}}\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{path}:12:49: static_resources.clusters[0].load_assignment.endpoints[0]"
                      ".lb_endpoints[0].endpoint.address.socket_address.address: 'localhost' is "
                      "not an IP address", out)
        self.assertIn("STRICT_DNS or LOGICAL_DNS", out)


if __name__ == "__main__":
    unittest.main()
