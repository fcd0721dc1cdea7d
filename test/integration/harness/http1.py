"""HTTP/1.1 responses: the ``Response`` value and a parser for (pipelined) responses as
received on a raw connection."""

import json


class IncompleteResponse(Exception):
    """More data is needed before the response can be parsed."""


class Response:
    """One response: status line, headers and trailers as received, and the whole body."""

    def __init__(self, version, status, reason, headers, body=b"", trailers=None,
                 chunked=False):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) as received
        self.body = body
        self.trailers = trailers or []  # list of (name, value)
        self.chunked = chunked

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        body = self.body[:200]
        return (f"<Response {self.version} {self.status} {self.reason!r} "
                f"headers={self.headers!r} body[:200]={body!r}>")


def parse_head(data, start=0):
    """Parses the head at ``data[start:]``: ``(version, status, reason, headers, body_start)``."""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise IncompleteResponse()
    block = bytes(data[start:end]).decode("latin-1")
    lines = block.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return version, status, reason, headers, end + 4


def _response_has_no_body(status, head):
    return head or 100 <= status < 200 or status in (204, 304)


def body_framing(headers):
    """How the body after these response headers ends: its length (an int), "chunked" or
    "close" (read to close)."""
    te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
    if te:
        return "chunked" if te.replace(" ", "").split(",")[-1] == "chunked" else "close"
    cls = [v for k, v in headers if k.lower() == "content-length"]
    if cls:
        if len(set(c.strip() for c in cls)) != 1 or not cls[0].strip().isdigit():
            raise ValueError(f"bad content-length {cls!r}")
        return int(cls[0])
    return "close"


def parse_response(data, head=False, eof=False, start=0):
    """Parses one response from ``data[start:]``. Returns ``(Response, end_offset)``.

    Raises IncompleteResponse when more data is needed; ``eof`` says the connection is closed
    (so a read-to-close body ends at the end of ``data``). Interim 1xx responses are returned
    like any other response."""
    version, status, reason, headers, pos = parse_head(data, start)
    if _response_has_no_body(status, head):
        return Response(version, status, reason, headers), pos
    framing = body_framing(headers)
    if isinstance(framing, int):
        if len(data) - pos < framing:
            raise IncompleteResponse()
        return Response(version, status, reason, headers, bytes(data[pos:pos + framing])), \
            pos + framing
    if framing == "close":
        if not eof:
            raise IncompleteResponse()
        return Response(version, status, reason, headers, bytes(data[pos:])), len(data)
    # chunked
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            raise IncompleteResponse()
        size_text = bytes(data[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError(f"bad chunk size line {bytes(data[pos:line_end])!r}")
        pos = line_end + 2
        if size == 0:
            trailers = []
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    raise IncompleteResponse()
                line = bytes(data[pos:line_end]).decode("latin-1")
                pos = line_end + 2
                if line == "":
                    return Response(version, status, reason, headers, bytes(body), trailers,
                                    chunked=True), pos
                name, _, value = line.partition(":")
                trailers.append((name.strip(), value.strip()))
        if len(data) < pos + size + 2:
            raise IncompleteResponse()
        body += data[pos:pos + size]
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk not terminated by CRLF")
        pos += size + 2


def parse_responses(data, heads=(), eof=True):
    """All complete final responses in ``data`` (interim 1xx skipped). ``heads``: indexes of
    responses that answer HEAD requests."""
    out = []
    pos = 0
    while pos < len(data):
        try:
            resp, pos = parse_response(data, head=(len(out) in heads), eof=eof, start=pos)
        except IncompleteResponse:
            break
        if 100 <= resp.status < 200:
            continue
        out.append(resp)
    return out
