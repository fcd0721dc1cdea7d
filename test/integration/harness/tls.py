"""TLS for the integration tests: the demo PKI from tools/certs.sh, transport socket configs,
and real clients (Python's ssl module, openssl s_client, curl) to talk to Phoenix with."""

import http.client
import os
import socket
import ssl
import subprocess
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TLS = "phoenix.transport_sockets.tls"
DOWNSTREAM = "type.googleapis.com/phoenix.config.v1.DownstreamTlsContext"
UPSTREAM = "type.googleapis.com/phoenix.config.v1.UpstreamTlsContext"
TRUST_DOMAIN = "phoenix.local"

_certs_dir = None


def certs():
    """The directory of the demo PKI (tools/certs.sh), made once per test process."""
    global _certs_dir
    if _certs_dir is None:
        _certs_dir = tempfile.mkdtemp(prefix="phoenix-certs-")
        subprocess.run([os.path.join(REPO, "tools", "certs.sh"), _certs_dir], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
    return _certs_dir


def cert_path(name):
    return os.path.join(certs(), name)


def certificate(name):
    """A TlsCertificate from the files <name>.crt / <name>.key of the demo PKI."""
    return {"certificate_chain": {"filename": cert_path(name + ".crt")},
            "private_key": {"filename": cert_path(name + ".key")}}


def downstream_tls(certificates=("server-ecdsa",), **context):
    """A listener's transport_socket: TLS with the named certificates. ``context`` adds
    DownstreamTlsContext fields; ``common`` (a dict) adds CommonTlsContext fields."""
    common = {"tls_certificates": [certificate(c) for c in certificates]}
    common.update(context.pop("common", {}))
    typed = {"@type": DOWNSTREAM, "common_tls_context": common}
    typed.update(context)
    return {"name": TLS, "typed_config": typed}


def upstream_tls(ca="ca.crt", sni="localhost", client_cert=None, **context):
    """A cluster's transport_socket: TLS verified against ``ca`` (a file of the demo PKI)."""
    common = {}
    if ca is not None:
        common["validation_context"] = {"trusted_ca": {"filename": cert_path(ca)}}
    if client_cert is not None:
        common["tls_certificates"] = [certificate(client_cert)]
    common.update(context.pop("common", {}))
    typed = {"@type": UPSTREAM, "common_tls_context": common, "sni": sni}
    typed.update(context)
    return {"name": TLS, "typed_config": typed}


def tls_listener(listener, transport_socket, chain_name="tls"):
    """Moves ``listener``'s connection manager into a filter chain served over TLS."""
    chain = {"name": chain_name, "http_connection_manager": listener.pop("http_connection_manager"),
             "transport_socket": transport_socket}
    listener["filter_chains"] = [chain]
    return listener


def client_context(ca="ca.crt", cert=None, minimum=None, maximum=None, alpn=None):
    ctx = ssl.create_default_context(cafile=cert_path(ca))
    if cert is not None:
        ctx.load_cert_chain(cert_path(cert + ".crt"), cert_path(cert + ".key"))
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


def server_context(cert="server-ecdsa", client_ca=None):
    """A server-side context for a TLS upstream; with ``client_ca`` it requires client certs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path(cert + ".crt"), cert_path(cert + ".key"))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cert_path(client_ca))
    return ctx


class TlsConn:
    """One TLS connection to 127.0.0.1:port with SNI ``server_name``, for HTTP/1.1 requests."""

    def __init__(self, port, context=None, server_name="localhost", session=None, timeout=5.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = (context or client_context()).wrap_socket(
            raw, server_hostname=server_name, session=session)

    def get(self, path, headers=None):
        lines = [f"GET {path} HTTP/1.1", "Host: localhost"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(self.sock, method="GET")
        response.begin()
        body = response.read()
        return response.status, body

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def https_get(port, path="/", **kwargs):
    """(status, body) of one GET over a new TLS connection."""
    with TlsConn(port, **kwargs) as conn:
        return conn.get(path)


def s_client(port, *args, stdin=b"Q\n", timeout=10):
    """openssl s_client's output (stdout and stderr) for one connection to ``port``."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                            input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout)
    return result.stdout.decode(errors="replace")
