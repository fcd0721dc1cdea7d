"""phoenix-cp with mutual TLS (--tls-cert, --tls-key, --client-ca, --principals): a real
phoenix proxy takes its config over ADS with its client certificate, phoenixctl applies and
reads with the admin certificate, callers without a certificate or with one of another CA are
refused with a message that says what to do, a certificate bound to one node never gets
another node's secrets, and grpc-js (Node's OpenSSL) speaks the same TLS. The demo PKI is
tools/certs.sh's. Every wait is on an observable state (a response, a status, a log line),
never a sleep."""

import json
import os
import shutil
import subprocess
import tempfile

from harness.base import PhoenixTestCase
from harness.control_plane import (
    AdsClient, ControlPlane, ads_bootstrap, http_body, rds_listener, write_resource_file)
from harness.grpc import GRPC_DIR, require_node
from harness.process import free_port, phoenix_cp_bin, phoenixctl_bin, wait_until
from harness.tls import cert_path

ADMIN = "spiffe://phoenix.local/ns/ops/sa/admin"
WEB = "spiffe://phoenix.local/ns/default/sa/web"
WEB_ROTATED = "spiffe://phoenix.local/ns/default/sa/web-rotated"
NODE_2_TOKEN = "node-2-token"
PERMISSION_DENIED = 7


def listener_file(port):
    return {"listeners": [rds_listener(port)]}


def routes(body):
    return {"route_configurations": [{"name": "main", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": body}}}]}]}]}


def ca_secret(name):
    return {"secrets": [{"name": name, "validation_context": {"trusted_ca": {
        "filename": cert_path("ca.crt")}}}]}


def ssl_credentials(client):
    """GoogleGrpc.channel_credentials with the demo CA and the client certificate ``client``
    (a name of the demo PKI, or a (cert, key) pair of paths)."""
    chain, key = client if isinstance(client, tuple) else (cert_path(client + ".crt"),
                                                           cert_path(client + ".key"))
    return {"ssl_credentials": {"root_certs": {"filename": cert_path("ca.crt")},
                                "cert_chain": {"filename": chain},
                                "private_key": {"filename": key}}}


class ControlPlaneTlsTest(PhoenixTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="phoenix-cp-tls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.resources = os.path.join(self.dir, "resources")
        self.port = free_port()
        self.write(os.path.join(self.resources, "listeners.yaml"), listener_file(self.port))
        self.write(os.path.join(self.resources, "routes.yaml"), routes("v1"))
        self.write(os.path.join(self.resources, "nodes", "sidecar-1", "secrets.yaml"),
                   ca_secret("sidecar-1-ca"))
        self.write(os.path.join(self.resources, "nodes", "sidecar-2", "secrets.yaml"),
                   ca_secret("sidecar-2-ca"))
        self.principals = self.write(os.path.join(self.dir, "principals"), raw=(
            f"# who each certificate is\n{ADMIN} admin\n{WEB} node:sidecar-1\n"
            f"{WEB_ROTATED} node:sidecar-1\n"))
        self.tokens = self.write(os.path.join(self.dir, "tokens"),
                                 raw=f"{NODE_2_TOKEN} sidecar-2 node:sidecar-2\n")
        self.cp = self.start_cp()

    def start_cp(self, port=0):
        cp = ControlPlane(self.resources, audit_log=os.path.join(self.dir, "audit.jsonl"),
                          listen=f"127.0.0.1:{port}", extra_args=(
                              "--tls-cert", cert_path("server-ecdsa.crt"),
                              "--tls-key", cert_path("server-ecdsa.key"),
                              "--client-ca", cert_path("ca.crt"),
                              "--principals", self.principals, "--tokens", self.tokens))
        self.addCleanup(cp.close)
        return cp

    def write(self, path, document=None, raw=None):
        return write_resource_file(path, document, raw)

    def ctl(self, *args, client="client-admin", ca="ca.crt"):
        """Runs phoenixctl with the demo CA and the client certificate ``client`` (None:
        none; ca None: plaintext); returns (exit code, stdout, stderr)."""
        command = [phoenixctl_bin(), "--server", self.cp.target]
        if ca is not None:
            command += ["--ca", cert_path(ca)]
        if client is not None:
            command += ["--client-cert", cert_path(client + ".crt"),
                        "--client-key", cert_path(client + ".key")]
        done = subprocess.run(command + list(args), capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout, done.stderr

    def ctl_json(self, *args):
        code, out, err = self.ctl(*args, "-o", "json")
        self.assertEqual(code, 0, f"phoenixctl {args}: {err}\n{self.cp.logs()}")
        return json.loads(out)

    def start_proxy(self, node="sidecar-1", client="client-web", metadata=()):
        return self.start_phoenix(ads_bootstrap(
            free_port(), [self.cp.target], node_id=node,
            channel_credentials=ssl_credentials(client), metadata=metadata))

    def body(self):
        return http_body(self.port)

    def proxy_status(self, node):
        for proxy in self.ctl_json("status")["proxies"]:
            if proxy["node_id"] == node:
                return proxy
        return None

    def acked(self, node, type_name):
        proxy = self.proxy_status(node) or {"types": []}
        for t in proxy["types"]:
            if t["type"] == type_name:
                return t["acked_version"]
        return None

    def ads_client(self, node, client, *args):
        ads = AdsClient(self.cp.target, node, "--ca", cert_path("ca.crt"),
                        "--cert", cert_path(client + ".crt"), "--key", cert_path(client + ".key"),
                        *args)
        self.addCleanup(ads.close)
        return ads

    def test_a_proxy_gets_its_config_with_its_certificate_and_status_names_it(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10),
                        f"the proxy never served v1\n{self.cp.logs()}")
        self.assertTrue(wait_until(lambda: self.acked("sidecar-1", "Listener") == "1", timeout=10),
                        f"status never showed the ACK\n{self.cp.logs()}")
        self.assertEqual(self.proxy_status("sidecar-1")["principal"], WEB)
        code, out, err = self.ctl("status")
        self.assertEqual(code, 0, err)
        self.assertIn(f"as {WEB}", out)
        self.assertIsNotNone(self.cp.wait_for_log(f"node sidecar-1 connected"), self.cp.logs())
        self.assertIsNotNone(self.cp.wait_for_log(f"as {WEB}"), self.cp.logs())

    def test_phoenixctl_with_the_admin_certificate_applies_and_gets(self):
        self.start_proxy()
        self.assertTrue(wait_until(lambda: self.body() == "v1", timeout=10), self.cp.logs())
        new = self.write(os.path.join(self.dir, "work", "routes.yaml"), routes("v2"))
        code, out, err = self.ctl("apply", "-f", new)
        self.assertEqual(code, 0, err)
        self.assertIn("applied: version 2", out)
        self.assertTrue(wait_until(lambda: self.body() == "v2", timeout=10),
                        f"the apply never reached the proxy\n{self.cp.logs()}")
        [route] = self.ctl_json("get", "routes", "main")
        self.assertEqual(route["resource"]["virtual_hosts"][0]["routes"][0]["direct_response"]
                         ["body"]["inline_string"], "v2")
        self.assertEqual(self.ctl_json("audit")["entries"][-1]["who"], ADMIN)

    def test_phoenixctl_without_the_right_certificate_is_refused_and_told_what_to_do(self):
        code, _, err = self.ctl("status", client=None, ca=None)  # Plaintext.
        self.assertEqual(code, 3, err)
        self.assertIn("if it serves TLS, pass --ca FILE", err)
        code, _, err = self.ctl("status", client=None)  # TLS, no client certificate.
        self.assertEqual(code, 3, err)
        self.assertIn("wants a client certificate: pass --client-cert and --client-key", err)
        code, _, err = self.ctl("status", client="client-other")  # Signed by another CA.
        self.assertEqual(code, 3, err)
        self.assertIn("refused the client certificate: is --client-cert signed by the CA "
                      "phoenix-cp trusts", err)
        code, _, err = self.ctl("status", client="client-web")  # A proxy's certificate.
        self.assertEqual(code, 3, err)
        self.assertIn(f"{WEB} is not an admin (its role is node:sidecar-1)", err)
        code, _, err = self.ctl("status", ca="other-ca.crt")  # phoenix-cp not trusted.
        self.assertEqual(code, 3, err)
        self.assertIn("showed a certificate that --ca did not sign", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)  # No gRPC log lines.
        new = self.write(os.path.join(self.dir, "work", "routes.yaml"), routes("v2"))
        code, _, _ = self.ctl("apply", "-f", new, client=None)
        self.assertEqual(code, 3)
        with open(os.path.join(self.resources, "routes.yaml")) as f:
            self.assertIn("v1", f.read())

    def test_a_certificate_bound_to_one_node_never_gets_another_nodes_secrets(self):
        # grpc-js with the web certificate (node sidecar-1) claiming sidecar-2: refused.
        intruder = self.ads_client("sidecar-2", "client-web", "--types", "Secret")
        line = intruder.stdout.wait_for(lambda l: '"status"' in l, timeout=10)
        self.assertIsNotNone(line, intruder.logs())
        self.assertEqual(json.loads(line)["status"], PERMISSION_DENIED, line)
        self.assertEqual(intruder.responses(), [])
        self.assertIsNotNone(self.cp.wait_for_log(
            f"{WEB} may only ask for node sidecar-1, not sidecar-2"), self.cp.logs())
        # The real proxy with that certificate claiming sidecar-2: refused, never served.
        proxy = self.start_proxy(node="sidecar-2")
        self.assertTrue(wait_until(lambda: "PERMISSION_DENIED" in proxy.stderr_text()
                                   or "may only ask for node" in proxy.stderr_text(),
                                   timeout=10), proxy.stderr_text())
        self.assertNotIn("sidecar-2-ca", json.dumps(proxy.config_dump()))
        # The same certificate as its own node gets its own secret only.
        owner = self.ads_client("sidecar-1", "client-web", "--types", "Secret")
        response = owner.wait_for_response("Secret")
        self.assertIsNotNone(response, owner.logs())
        self.assertEqual(response["resources"], ["sidecar-1-ca"])

    def test_a_bearer_token_still_works_over_tls_and_goes_first(self):
        # The web certificate is for sidecar-1, but the call shows sidecar-2's token.
        ads = self.ads_client("sidecar-2", "client-web", "--types", "Secret",
                              "--token", NODE_2_TOKEN)
        response = ads.wait_for_response("Secret")
        self.assertIsNotNone(response, ads.logs())
        self.assertEqual(response["resources"], ["sidecar-2-ca"])

    def test_a_grpc_js_admin_client_speaks_the_same_mtls(self):
        node = require_node()

        def status(client):
            done = subprocess.run(
                [node, os.path.join(GRPC_DIR, "admin_client.js"), "--target", self.cp.target,
                 "--ca", cert_path("ca.crt"), "--cert", cert_path(client + ".crt"),
                 "--key", cert_path(client + ".key"), "--method", "Status"],
                capture_output=True, text=True, timeout=30, cwd=GRPC_DIR)
            return done.returncode, json.loads(done.stdout)

        code, answer = status("client-admin")
        self.assertEqual(code, 0, answer)
        self.assertEqual(answer["version"], "1")
        code, answer = status("client-web")
        self.assertEqual(code, 1, answer)
        self.assertEqual(answer["code"], PERMISSION_DENIED)

    def test_a_rotated_client_certificate_is_used_from_the_next_connection_on(self):
        chain = os.path.join(self.dir, "proxy.crt")
        key = os.path.join(self.dir, "proxy.key")
        shutil.copy(cert_path("client-web.crt"), chain)
        shutil.copy(cert_path("client-web.key"), key)
        self.start_proxy(client=(chain, key))
        self.assertTrue(wait_until(lambda: (self.proxy_status("sidecar-1") or {}).get(
            "principal") == WEB, timeout=10), self.cp.logs())
        # The files change under the proxy; the stream it has keeps its certificate.
        issue_certificate(WEB_ROTATED, chain + ".new", key + ".new")
        os.replace(key + ".new", key)
        os.replace(chain + ".new", chain)
        # A new control plane on the same port: the proxy reconnects with the new files.
        port = self.cp.port
        self.cp.close()
        self.cp = self.start_cp(port)
        self.assertTrue(wait_until(lambda: (self.proxy_status("sidecar-1") or {}).get(
            "principal") == WEB_ROTATED, timeout=10), self.cp.logs())

    def test_a_missing_certificate_file_in_the_bootstrap_names_the_field(self):
        code, path, out = self.validate_config(
            "dynamic_resources:\n"
            "  lds_config: {ads: {}}\n"
            "  ads_config:\n"
            "    grpc_services:\n"
            "    - google_grpc:\n"
            "        target_uri: 127.0.0.1:18000\n"
            "        channel_credentials:\n"
            "          ssl_credentials:\n"
            f"            root_certs: {{filename: {cert_path('ca.crt')}}}\n"
            "            cert_chain: {filename: /nonexistent/web.crt}\n"
            f"            private_key: {{filename: {cert_path('client-web.key')}}}\n")
        self.assertEqual(code, 1, out)
        self.assertIn(f"{path}:10:13: dynamic_resources.ads_config.grpc_services[0].google_grpc"
                      ".channel_credentials.ssl_credentials.cert_chain: cannot read "
                      "/nonexistent/web.crt", out)


class ServerOnlyTlsTest(PhoenixTestCase):
    """phoenix-cp with TLS but no --client-ca: no client certificate is asked for, and bearer
    tokens authenticate, over TLS."""

    def test_tokens_authenticate_over_tls(self):
        work = tempfile.mkdtemp(prefix="phoenix-cp-tls-only-")
        self.addCleanup(shutil.rmtree, work, True)
        resources = os.path.join(work, "resources")
        os.makedirs(resources)
        with open(os.path.join(resources, "routes.yaml"), "w") as f:
            json.dump(routes("v1"), f)
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            f.write("admin-token alice admin\nnode-token sidecar-1 node:sidecar-1\n")
        token_file = os.path.join(work, "admin.token")
        with open(token_file, "w") as f:
            f.write("admin-token\n")
        cp = ControlPlane(resources, extra_args=(
            "--tls-cert", cert_path("server-ecdsa.crt"), "--tls-key", cert_path("server-ecdsa.key"),
            "--tokens", tokens))
        self.addCleanup(cp.close)
        self.assertIsNotNone(cp.wait_for_log("phoenix-cp: TLS with"), cp.logs())

        def ctl(*args):
            return subprocess.run([phoenixctl_bin(), "--server", cp.target, *args, "status",
                                   "-o", "json"], capture_output=True, text=True, timeout=30)

        done = ctl("--ca", cert_path("ca.crt"), "--token-file", token_file)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["version"], "1")
        done = ctl("--ca", cert_path("ca.crt"))
        self.assertEqual(done.returncode, 3)
        self.assertIn("pass an admin token: --token-file FILE", done.stderr)
        ads = AdsClient(cp.target, "sidecar-1", "--types", "RouteConfiguration",
                        "--ca", cert_path("ca.crt"), "--token", "node-token")
        self.addCleanup(ads.close)
        self.assertIsNotNone(ads.wait_for_response("RouteConfiguration", "1"), ads.logs())


class ControlPlaneTlsFlagsTest(PhoenixTestCase):
    """phoenix-cp refuses TLS flags that do not make sense together, before it listens."""

    def test_flag_combinations_are_checked(self):
        resources = tempfile.mkdtemp(prefix="phoenix-cp-flags-")
        self.addCleanup(shutil.rmtree, resources, True)
        def run(*args):
            done = subprocess.run([phoenix_cp_bin(), "--resources", resources, *args],
                                  capture_output=True, text=True, timeout=20)
            return done.returncode, done.stderr

        code, err = run("--tls-cert", cert_path("server-ecdsa.crt"))
        self.assertEqual((code, err.strip()),
                         (2, "phoenix-cp: --tls-cert and --tls-key go together"))
        code, err = run("--tls-cert", cert_path("server-ecdsa.crt"),
                        "--tls-key", cert_path("server-ecdsa.key"), "--client-ca",
                        cert_path("ca.crt"))
        self.assertEqual(code, 2)
        self.assertIn("--client-ca needs --principals FILE", err)
        code, err = run("--tls-cert", cert_path("server-ecdsa.crt"),
                        "--tls-key", cert_path("server-rsa.key"), "--listen", "127.0.0.1:0")
        self.assertEqual(code, 1)
        self.assertIn("server-rsa.key", err)


def issue_certificate(uri, chain, key):
    """A client certificate for ``uri`` signed by the demo CA, written to ``chain``/``key``."""
    work = tempfile.mkdtemp(prefix="phoenix-issue-")
    try:
        extensions = os.path.join(work, "ext")
        with open(extensions, "w") as f:
            f.write(f"subjectAltName=URI:{uri}\nextendedKeyUsage=clientAuth\n")
        request = os.path.join(work, "req.csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj",
                        "/CN=web-rotated", "-out", request], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", request, "-CA", cert_path("ca.crt"),
                        "-CAkey", cert_path("ca.key"), "-CAcreateserial", "-CAserial",
                        os.path.join(work, "serial"), "-days", "2", "-extfile", extensions,
                        "-out", chain], check=True, capture_output=True)
    finally:
        shutil.rmtree(work, True)
