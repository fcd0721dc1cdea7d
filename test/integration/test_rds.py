"""Route configurations by name (RDS-style): a listener's connection manager names a
RouteConfiguration that the YAML file delivers apart, under static_resources.route_configurations;
a reload that changes only that route configuration reaches the listener's requests."""

import unittest

from harness.base import PhoenixTestCase
from harness.client import http_get
from harness.process import free_port


def rds_yaml(admin_port, port, cluster_ports, target, route_config_name="main"):
    """One listener naming route configuration ``route_config_name``; the route configuration
    "main" sends every path to cluster ``target``; clusters "a" and "b" each have one host."""
    clusters = "".join(
        f"""
  - name: {name}
    connect_timeout: 1s
    load_assignment:
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}
""" for name, p in zip(("a", "b"), cluster_ports))
    return f"""
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    http_connection_manager:
      stat_prefix: ingress
      rds: {{route_config_name: {route_config_name}}}
      access_log: [{{path: /dev/stdout}}]
  route_configurations:
  - name: main
    virtual_hosts:
    - name: all
      domains: ["*"]
      routes:
      - match: {{prefix: /}}
        route: {{cluster: {target}}}
  clusters:{clusters}"""


def versions(px):
    """{resource type name: version in force} from /config_dump."""
    return {r["type_url"].rsplit(".", 1)[-1]: r["version_info"]
            for r in px.config_dump()["resources"]}


class RdsTest(PhoenixTestCase):

    def setUp(self):
        self.ups = [self.start_upstream("app-a"), self.start_upstream("app-b")]
        self.port, self.admin_port = free_port(), free_port()
        self.px = self.start_phoenix(self.yaml("a"), admin_port=self.admin_port,
                                     listener_ports={"ingress": self.port})

    def yaml(self, target, route_config_name="main"):
        return rds_yaml(self.admin_port, self.port, [u.port for u in self.ups], target,
                        route_config_name)

    def test_a_named_route_configuration_routes_to_a_real_upstream(self):
        response = http_get(self.port, "/hello")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("x-upstream-name"), "app-a")
        self.assertEqual(self.ups[0].request_count(), 1)
        self.assertNoUpstreamErrors(*self.ups)

    def test_a_reload_that_changes_only_the_route_configuration(self):
        before = versions(self.px)
        self.assertEqual(set(before), {"Listener", "RouteConfiguration", "Cluster", "Secret"})
        self.px.write_config(self.yaml("b"))
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 200, body)
        after = versions(self.px)
        self.assertNotEqual(after["RouteConfiguration"], before["RouteConfiguration"])
        self.assertEqual(after["Listener"], before["Listener"])
        self.assertEqual(after["Cluster"], before["Cluster"])
        response = http_get(self.port, "/hello")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("x-upstream-name"), "app-b")
        self.assertNoUpstreamErrors(*self.ups)

    def test_a_reload_naming_an_unknown_route_configuration_is_rejected(self):
        self.px.write_config(self.yaml("b", route_config_name="mian"))
        status, body = self.px.admin_post("/reload")
        self.assertEqual(status, 400, body)
        self.assertIn("phoenix.yaml:9:", body)
        self.assertIn("static_resources.listeners[0].http_connection_manager.rds"
                      ".route_config_name: unknown route configuration 'mian'; did you mean "
                      "'main'?", body)
        response = http_get(self.port, "/hello")
        self.assertEqual(response.header("x-upstream-name"), "app-a")


if __name__ == "__main__":
    unittest.main()
