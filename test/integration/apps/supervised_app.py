"""A small HTTP app for the supervisor's tests, started by phoenix with PORT set.

  GET /          200, body "pid <pid> port <port>"
  GET /crash     exits at once with status 3, without answering
  GET /slow?ms=N answers after N ms
  GET /healthz   200, or 503 while the file named by NOT_READY_FILE exists
On SIGTERM it prints "got SIGTERM" and exits 0, unless IGNORE_SIGTERM=1 (then only SIGKILL
stops it). With CHILD=1 it starts a `sleep` of its own (a grandchild) and prints its pid."""

import http.server
import os
import signal
import subprocess
import sys
import time
import urllib.parse

PORT = int(os.environ["PORT"])
NOT_READY_FILE = os.environ.get("NOT_READY_FILE", "")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/crash":
            print(f"pid {os.getpid()}: /crash: exiting with status 3", flush=True)
            os._exit(3)
        if url.path == "/healthz":
            if NOT_READY_FILE and os.path.exists(NOT_READY_FILE):
                self.reply(503, "not ready")
            else:
                self.reply(200, "ok")
            return
        if url.path == "/slow":
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["100"])[0])
            time.sleep(ms / 1000)
        if url.path == "/burn":  # CPU for ms milliseconds (the app's /generatecert)
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["100"])[0])
            end = time.process_time() + ms / 1000
            while time.process_time() < end:
                pass
        self.reply(200, f"pid {os.getpid()} port {PORT}")


def main():
    if os.environ.get("IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def on_term(signum, frame):
            print(f"pid {os.getpid()}: got SIGTERM", flush=True)
            os._exit(0)
        signal.signal(signal.SIGTERM, on_term)
    if os.environ.get("CHILD") == "1":
        child = subprocess.Popen(["sleep", "600"])
        print(f"grandchild {child.pid}", flush=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"pid {os.getpid()} listening on {PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
