"""Integration-test harness for Phoenix (Python 3 standard library only).

Everything here talks to real processes over 127.0.0.1. The modules, by concern:

* ``harness.process``: binary locations, free ports, ``wait_until`` (readiness polling) and
  process observation (``RssSampler``).
* ``harness.phoenix``: ``Phoenix``, a launched proxy: writes a config file, starts
  ``$PHOENIX_BIN -c FILE --concurrency N --log-level L``, captures stdout (access log) and
  stderr (process log) to files and waits until ``GET /ready`` on the admin port answers 200.
* ``harness.config``: builders for Bootstrap configs (proto3 JSON mapping).
* ``harness.http1``: the HTTP/1.1 ``Response`` and a response parser.
* ``harness.client``: a tiny HTTP/1.1 client on raw sockets (``ClientConn``, ``raw_request``,
  ``raw_statuses``) for keep-alive, pipelining and malformed-input tests, plus ``http_get``.
* ``harness.payload``: deterministic request/response bodies and their hashes.
* ``harness.upstream``: ``UpstreamServer``, a threaded raw-socket HTTP/1.1 origin server whose
  answers (``harness.behaviours``) are chosen by path; and the real demo app.
* ``harness.grpc``: gRPC with the real grpc-js (test/integration/grpc/, npm modules installed by
  tools/setup.sh): ``GrpcServer`` runs server.js (``phoenix.test.Echo`` of echo.proto over h2c;
  delays, failures on purpose, per-method call counts) and ``grpc_call``/``start_grpc_call``
  run the one-shot client.js and return its status, replies and metadata as a dict.
* ``harness.control_plane``: ``ControlPlane`` runs phoenix-cp (on a directory, or as a
  replica on etcd), ``AdsClient`` a grpc-js ADS stream against it.
* ``harness.etcd``: ``Etcd``, a real etcd (Debian's etcd-server) on free loopback ports in a
  temporary directory, ready once ``etcdctl endpoint health`` says so; stop/start keep its data.
* ``harness.base``: ``PhoenixTestCase``, a ``unittest.TestCase`` base class whose test
  methods report the tail of phoenix's stderr/stdout (and the upstreams' protocol errors)
  when they fail.

Synchronisation is always done by polling something observable with a deadline
(``wait_until``), never by sleeping for a fixed time.
"""
