"""A python3-h2 (Debian's) HTTP/2 client on a raw socket, for tests that need frames no polite
client sends, or control over flow control."""

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class H2Client:
    """A python3-h2 client on a raw socket: sends whatever frames a test asks for and reads
    events until a condition holds (or the server closes)."""

    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                      validate_outbound_headers=False,
                                      normalize_outbound_headers=False,
                                      validate_inbound_headers=False))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False
        self.sent = 0

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def request(self, path, method="GET", headers=(), body=None, end=True, authority="localhost"):
        stream_id = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", authority),
                (":path", path), *headers]
        self.conn.send_headers(stream_id, hdrs, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.send_body(stream_id, body, end)
        return stream_id

    def send_body(self, stream_id, body, end=True, timeout=10.0):
        """Sends ``body`` as the server's flow-control windows allow; ``self.sent`` counts
        the bytes sent so far."""
        while body:
            if not self.read_until(lambda ev: self.conn.local_flow_control_window(stream_id) > 0,
                                   timeout):
                raise AssertionError("the server's window stayed closed")
            n = min(len(body), self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size)
            self.conn.send_data(stream_id, body[:n])
            body = body[n:]
            self.sent += n
            self.flush()
        if end:
            self.conn.end_stream(stream_id)
            self.flush()

    def read_until(self, predicate, timeout=5.0):
        """Reads events until ``predicate(events)`` is true or the connection closes."""
        deadline = time.monotonic() + timeout
        while not predicate(self.events) and not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            try:
                self.events.extend(self.conn.receive_data(data))
            except h2.exceptions.ProtocolError:
                self.closed = True
            self.flush()
        return predicate(self.events)

    def response(self, stream_id, timeout=5.0):
        """(status, headers dict, body bytes, trailers dict) once the stream ends."""
        def ended(events):
            return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                       and e.stream_id == stream_id for e in events)
        self.read_until(ended, timeout)
        status, headers, body, trailers = None, {}, b"", {}
        for e in self.events:
            if getattr(e, "stream_id", None) != stream_id:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                headers = dict(e.headers)
                status = int(headers[":status"])
            elif isinstance(e, h2.events.DataReceived):
                body += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, stream_id)
            elif isinstance(e, h2.events.TrailersReceived):
                trailers = dict(e.headers)
        self.flush()
        return status, headers, body, trailers

    def goaway(self):
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)),
                    None)

    def close(self):
        self.sock.close()
