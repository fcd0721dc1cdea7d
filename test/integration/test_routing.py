"""Routing: virtual hosts, route matching, route actions and request/response header handling."""

import unittest
import urllib.parse
import uuid

from harness.base import PhoenixTestCase
from harness.client import ClientConn, http_request
from harness.config import (direct_response, header_option, make_cluster, make_config,
                            make_listener, route, virtual_host)
from harness.process import free_port


def dr(body, status=200):
    return {"direct_response": direct_response(status, body)}


class RoutingTest(PhoenixTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.start_class_upstream("app")
        cls.other = cls.start_class_upstream("other")
        cls.port = free_port()
        main_routes = [
            route({"path": "/whoami"}, **dr("vh-main\n")),
            route({"path": "/exact"}, **dr("exact-path\n")),
            route({"path": "/Insensitive", "case_sensitive": False}, **dr("insensitive\n")),
            route({"safe_regex": {"regex": "/users/[0-9]+"}}, **dr("regex-user\n")),
            route({"prefix": "/hdr", "headers": [
                {"name": "x-canary", "string_match": {"exact": "1"}}]}, cluster="other"),
            route({"prefix": "/hdr"}, cluster="app"),
            route({"prefix": "/method", "headers": [
                {"name": ":method", "string_match": {"exact": "POST"}}]}, **dr("method-post\n")),
            route({"prefix": "/method"}, **dr("method-other\n")),
            route({"prefix": "/query", "query_parameters": [
                {"name": "debug", "present_match": True}]}, **dr("query-debug\n")),
            route({"prefix": "/query"}, **dr("query-plain\n")),
            route({"prefix": "/weighted"}, route={"weighted_clusters": {"clusters": [
                {"name": "app", "weight": 1}, {"name": "other", "weight": 1}]}}),
            route({"prefix": "/direct"}, **dr("forbidden\n", status=403)),
            route({"prefix": "/old"}, redirect={"host_redirect": "new.example.com",
                                                "response_code": "PERMANENT_REDIRECT"}),
            route({"prefix": "/v1/"}, route={"cluster": "app", "prefix_rewrite": "/v2/"}),
            route({"prefix": "/hostrw"}, route={"cluster": "app",
                                                "host_rewrite_literal": "rewritten.example.com"}),
            route({"prefix": "/mutate"}, route={"cluster": "app"},
                  request_headers_to_add=[header_option("x-added", "yes")],
                  response_headers_to_add=[header_option("x-resp-added", "yes")],
                  request_headers_to_remove=["x-remove-me"]),
            route({"prefix": "/echo"}, cluster="app"),
            route({"prefix": "/hop-response"}, cluster="app"),
        ]
        vhosts = [
            # The wildcard comes first on purpose: an exact domain must win regardless of order.
            virtual_host("wild", ["*.example.com"], [route({"prefix": "/"}, **dr("vh-wildcard\n"))]),
            virtual_host("exact", ["a.example.com"], [route({"prefix": "/"}, **dr("vh-exact\n"))]),
            virtual_host("main", ["*"], main_routes,
                         request_headers_to_add=[header_option("x-vh-added", "1")]),
        ]
        listener = make_listener("ingress", cls.port, vhosts, stat_prefix="ingress")
        config = make_config(free_port(), [listener],
                             [make_cluster("app", [cls.app.port]),
                              make_cluster("other", [cls.other.port])])
        cls.px = cls.start_class_phoenix(config)

    def setUp(self):
        self.app.reset()
        self.other.reset()

    def get(self, path, host="route.test", headers=None, method="GET", body=None):
        h = {"Host": host}
        h.update(headers or {})
        return http_request(self.port, method, path, headers=h, body=body)

    def upstream_request(self, up, path):
        r = up.find_request(lambda r: r["path"] == path)
        self.assertIsNotNone(r, f"upstream {up.name} did not receive {path}; "
                                f"got {[x['target'] for x in up.requests_snapshot()]}")
        return r

    @staticmethod
    def hdr(req, name):
        vals = [v for k, v in req["headers"] if k.lower() == name.lower()]
        return vals

    # -- virtual hosts --------------------------------------------------------------
    def test_exact_domain(self):
        r = self.get("/anything", host="a.example.com")
        self.assertEqual((r.status, r.body), (200, b"vh-exact\n"))

    def test_exact_domain_beats_wildcard_and_ignores_port(self):
        r = self.get("/anything", host="a.example.com:8080")
        self.assertEqual((r.status, r.body), (200, b"vh-exact\n"))

    def test_exact_domain_case_insensitive(self):
        # Host names are case-insensitive (RFC 9110 4.2.3).
        r = self.get("/anything", host="A.Example.COM")
        self.assertEqual((r.status, r.body), (200, b"vh-exact\n"))

    def test_wildcard_suffix_domain(self):
        for host in ("b.example.com", "deep.b.example.com"):
            r = self.get("/anything", host=host)
            self.assertEqual((r.status, r.body), (200, b"vh-wildcard\n"), host)

    def test_fallback_star_domain(self):
        for host in ("other.test", "example.com", "127.0.0.1"):
            r = self.get("/whoami", host=host)
            self.assertEqual((r.status, r.body), (200, b"vh-main\n"), host)

    # -- path matching --------------------------------------------------------------
    def test_exact_path(self):
        self.assertEqual(self.get("/exact").body, b"exact-path\n")
        self.assertEqual(self.get("/exact?x=1").body, b"exact-path\n",
                         "the query string is not part of the path match")
        self.assertEqual(self.get("/exact/more").status, 404)
        self.assertEqual(self.get("/exactly").status, 404)

    def test_case_insensitive_path(self):
        self.assertEqual(self.get("/insensitive").body, b"insensitive\n")
        self.assertEqual(self.get("/INSENSITIVE").body, b"insensitive\n")

    def test_regex_path_full_match(self):
        r = self.get("/users/12345")
        self.assertEqual((r.status, r.body), (200, b"regex-user\n"))
        self.assertEqual(self.get("/users/abc").status, 404)
        self.assertEqual(self.get("/users/123/x").status, 404, "regex must match the whole path")
        self.assertEqual(self.get("/x/users/123").status, 404, "regex must match the whole path")

    def test_header_match(self):
        r = self.get("/hdr/a", headers={"x-canary": "1"})
        self.assertEqual((r.status, r.header("x-upstream-name")), (200, "other"))
        r = self.get("/hdr/a")
        self.assertEqual((r.status, r.header("x-upstream-name")), (200, "app"))
        r = self.get("/hdr/a", headers={"x-canary": "2"})
        self.assertEqual((r.status, r.header("x-upstream-name")), (200, "app"))

    def test_method_match(self):
        self.assertEqual(self.get("/method", method="POST", body=b"x").body, b"method-post\n")
        self.assertEqual(self.get("/method").body, b"method-other\n")

    def test_query_parameter_present_match(self):
        self.assertEqual(self.get("/query?debug=1").body, b"query-debug\n")
        self.assertEqual(self.get("/query?a=1&debug").body, b"query-debug\n")
        self.assertEqual(self.get("/query?a=1").body, b"query-plain\n")
        self.assertEqual(self.get("/query?nodebug=1").body, b"query-plain\n")

    # -- actions ----------------------------------------------------------------------
    def test_route_to_cluster(self):
        r = self.get("/echo/x")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["upstream"], "app")

    def test_weighted_clusters_spread(self):
        counts = {"app": 0, "other": 0}
        for i in range(50):
            r = self.get(f"/weighted/{i}")
            self.assertEqual(r.status, 200)
            counts[r.header("x-upstream-name")] += 1
        self.assertGreater(counts["app"], 0, counts)
        self.assertGreater(counts["other"], 0, counts)
        self.assertEqual(self.app.request_count() + self.other.request_count(), 50)

    def test_direct_response(self):
        r = self.get("/direct/x")
        self.assertEqual((r.status, r.body), (403, b"forbidden\n"))
        cl = r.header("content-length")
        if cl is not None:
            self.assertEqual(int(cl), len(b"forbidden\n"))
        self.assertEqual(self.app.request_count() + self.other.request_count(), 0,
                         "a direct response must not reach an upstream")

    def test_redirect(self):
        r = self.get("/old/page?y=1", host="old.test")
        self.assertEqual(r.status, 308, r)
        loc = r.header("location")
        self.assertIsNotNone(loc, r)
        u = urllib.parse.urlsplit(loc)
        self.assertEqual((u.scheme, u.netloc, u.path), ("http", "new.example.com", "/old/page"),
                         loc)
        self.assertEqual(u.query, "y=1", f"strip_query is false, so the query stays: {loc}")
        self.assertEqual(self.app.request_count(), 0)

    def test_prefix_rewrite(self):
        r = self.get("/v1/x?q=1")
        self.assertEqual(r.status, 200)
        req = self.upstream_request(self.app, "/v2/x")
        self.assertEqual(req["target"], "/v2/x?q=1")

    def test_host_rewrite_literal(self):
        r = self.get("/hostrw/a", host="original.test")
        self.assertEqual(r.status, 200)
        req = self.upstream_request(self.app, "/hostrw/a")
        self.assertEqual(self.hdr(req, "host"), ["rewritten.example.com"])

    def test_request_headers_to_add(self):
        r = self.get("/mutate/add")
        self.assertEqual(r.status, 200)
        req = self.upstream_request(self.app, "/mutate/add")
        self.assertEqual(self.hdr(req, "x-added"), ["yes"], req["headers"])

    def test_virtual_host_request_headers_to_add(self):
        r = self.get("/mutate/vh")
        self.assertEqual(r.status, 200)
        req = self.upstream_request(self.app, "/mutate/vh")
        self.assertEqual(self.hdr(req, "x-vh-added"), ["1"], req["headers"])

    def test_request_headers_to_remove(self):
        r = self.get("/mutate/rm", headers={"x-remove-me": "secret", "x-keep-me": "1"})
        self.assertEqual(r.status, 200)
        req = self.upstream_request(self.app, "/mutate/rm")
        self.assertEqual(self.hdr(req, "x-remove-me"), [], req["headers"])
        self.assertEqual(self.hdr(req, "x-keep-me"), ["1"], req["headers"])

    def test_response_headers_to_add(self):
        r = self.get("/mutate/resp")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-upstream-name"), "app")
        self.assertEqual(r.header_all("x-resp-added"), ["yes"], r.headers)

    def test_no_route_404_with_nr_flag(self):
        path = f"/no-route-{uuid.uuid4().hex}"
        r = self.get(path)
        self.assertEqual(r.status, 404)
        self.assertEqual(self.app.request_count() + self.other.request_count(), 0)
        entry = self.px.wait_access_log(lambda e: e["path"] == path)
        self.assertIsNotNone(entry, f"no access log line for {path}")
        self.assertEqual(entry["status"], 404)
        self.assertIn("NR", entry["flag_list"], entry)
        self.assertEqual(entry["method"], "GET")

    def test_access_log_line_for_proxied_request(self):
        path = f"/echo/log-{uuid.uuid4().hex}"
        r = self.get(path, host="log.test", headers={"x-request-id": "rid-log-1",
                                                     "User-Agent": "phoenix-it/1"})
        self.assertEqual(r.status, 200)
        entry = self.px.wait_access_log(lambda e: e["path"] == path)
        self.assertIsNotNone(entry, f"no access log line for {path}")
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["flags"], "-")
        self.assertEqual(entry["protocol"], "HTTP/1.1")
        self.assertEqual(entry["request_id"], "rid-log-1")
        self.assertEqual(entry["user_agent"], "phoenix-it/1")
        self.assertEqual(entry["authority"], "log.test")
        self.assertEqual(entry["upstream_host"], f"127.0.0.1:{self.app.port}")
        # BYTES_TX is the response body size in Envoy; allow wire bytes too (spec is silent).
        self.assertGreaterEqual(int(entry["bytes_tx"]), len(r.body), entry)

    # -- forwarded headers ------------------------------------------------------------
    def test_forwarding_headers(self):
        r = self.get("/echo/fwd", host="preserved.test:1234")
        self.assertEqual(r.status, 200)
        headers = r.json()["headers"]
        get = lambda n: [v for k, v in headers if k.lower() == n]
        self.assertEqual(get("host"), ["preserved.test:1234"], "Host must be preserved")
        self.assertEqual(get("x-forwarded-for"), ["127.0.0.1"], headers)
        self.assertEqual(get("x-forwarded-proto"), ["http"], headers)
        rid = get("x-request-id")
        self.assertEqual(len(rid), 1, headers)
        # A version 4, RFC 4122 variant UUID in lowercase hex, as Envoy generates.
        self.assertRegex(rid[0], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

    def test_request_id_generated_unique_and_kept(self):
        ids = set()
        for _ in range(2):
            r = self.get("/echo/rid")
            ids.update(v for k, v in r.json()["headers"] if k.lower() == "x-request-id")
        self.assertEqual(len(ids), 2, f"generated request ids must differ: {ids}")
        r = self.get("/echo/rid", headers={"x-request-id": "my-request-id-42"})
        got = [v for k, v in r.json()["headers"] if k.lower() == "x-request-id"]
        self.assertEqual(got, ["my-request-id-42"])

    def test_hop_by_hop_headers_not_forwarded(self):
        with ClientConn(self.port) as c:
            c.request("GET", "/echo/hop", host="hop.test", headers=[
                ("Connection", "keep-alive, x-custom-hop"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "gzip"),
                ("Upgrade", "foo/1"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Custom-Hop", "secret"),
                ("X-Normal", "kept"),
            ])
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        headers = r.json()["headers"]
        names = [k.lower() for k, _ in headers]
        self.assertIn("x-normal", names, "end-to-end headers must be forwarded")
        for h in ("keep-alive", "te", "upgrade", "proxy-connection", "x-custom-hop"):
            self.assertNotIn(h, names, f"hop-by-hop header {h!r} was forwarded: {headers}")
        for k, v in headers:
            if k.lower() == "connection":
                self.assertNotIn("x-custom-hop", v.lower(),
                                 f"the client's Connection header was forwarded: {headers}")

    def test_hop_by_hop_response_headers_not_forwarded(self):
        # RFC 9110 7.6.1: a proxy removes hop-by-hop fields in both directions.
        r = self.get("/hop-response")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"hop\n")
        names = [k.lower() for k, _ in r.headers]
        self.assertIn("x-up-normal", names)
        for h in ("keep-alive", "proxy-connection", "x-up-hop"):
            self.assertNotIn(h, names, f"upstream hop-by-hop header {h!r} reached the client")
        for v in r.header_all("connection"):
            self.assertNotIn("x-up-hop", v.lower())


if __name__ == "__main__":
    unittest.main()
