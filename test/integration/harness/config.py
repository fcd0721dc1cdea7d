"""Config builders: a Bootstrap as a dict in the proto3 JSON mapping, written by ``Phoenix``
as JSON (which is YAML)."""


def socket_address(port, host="127.0.0.1"):
    return {"socket_address": {"address": host, "port_value": port}}


def make_config(admin_port, listeners=(), clusters=(), drain_timeout=None):
    cfg = {
        "node": {"id": "phoenix-it", "cluster": "phoenix-it"},
        "admin": {"address": socket_address(admin_port)},
        "static_resources": {"listeners": list(listeners), "clusters": list(clusters)},
    }
    if drain_timeout is not None:
        cfg["drain_timeout"] = drain_timeout
    return cfg


def make_listener(name, port, virtual_hosts, stat_prefix=None, access_log=True, **hcm_options):
    """A listener with its HTTP connection manager. ``hcm_options`` are HttpConnectionManager
    fields (request_headers_timeout, idle_timeout, max_request_headers_kb, ...)."""
    hcm = {
        "stat_prefix": stat_prefix or name,
        "route_config": {"name": f"{name}_routes", "virtual_hosts": list(virtual_hosts)},
    }
    if access_log:
        hcm["access_log"] = [{"path": "/dev/stdout"}]
    hcm.update(hcm_options)
    return {"name": name, "address": socket_address(port), "http_connection_manager": hcm}


def make_cluster(name, ports, lb_policy=None, connect_timeout="1s", **options):
    endpoints = [{"lb_endpoints": [{"endpoint": {"address": socket_address(p)}} for p in ports]}]
    cluster = {
        "name": name,
        "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
    }
    if lb_policy is not None:
        cluster["lb_policy"] = lb_policy
    cluster.update(options)
    return cluster


def virtual_host(name, domains, routes, **options):
    vh = {"name": name, "domains": list(domains), "routes": list(routes)}
    vh.update(options)
    return vh


def route(match, cluster=None, name=None, **extra):
    """A route; with ``cluster`` it forwards (``route: {cluster: ...}``), otherwise ``extra``
    must contain the action (route / redirect / direct_response)."""
    r = {"match": match}
    if name:
        r["name"] = name
    if cluster is not None:
        r["route"] = {"cluster": cluster}
    r.update(extra)
    return r


def direct_response(status, body=None):
    dr = {"status": status}
    if body is not None:
        dr["body"] = {"inline_string": body}
    return dr


def header_option(key, value, append=None):
    opt = {"header": {"key": key, "value": value}}
    if append is not None:
        opt["append"] = append
    return opt


def simple_config(listen_port, admin_port, upstream_ports, *, routes=None, virtual_hosts=None,
                  cluster_name="app", lb_policy=None, connect_timeout="1s",
                  cluster_options=None, extra_clusters=(), drain_timeout=None, **hcm_options):
    """One listener "ingress" (stat_prefix "ingress", access log on stdout) with one virtual
    host "*" routing prefix "/" to cluster "app" whose endpoints are ``upstream_ports``.

    ``routes`` replaces the routes of the "*" virtual host, ``virtual_hosts`` replaces all
    virtual hosts; other keyword options are HttpConnectionManager fields."""
    if virtual_hosts is None:
        if routes is None:
            routes = [route({"prefix": "/"}, cluster=cluster_name, name="default")]
        virtual_hosts = [virtual_host("default", ["*"], routes)]
    listener = make_listener("ingress", listen_port, virtual_hosts, **hcm_options)
    clusters = [make_cluster(cluster_name, upstream_ports, lb_policy=lb_policy,
                             connect_timeout=connect_timeout, **(cluster_options or {}))]
    clusters.extend(extra_clusters)
    return make_config(admin_port, [listener], clusters, drain_timeout=drain_timeout)
