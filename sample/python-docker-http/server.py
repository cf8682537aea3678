"""A fatman of the docker-http job type: a plain HTTP server that keeps the fatman runtime
contract by itself (port 7000, /live, /ready, /health, /api/v1/perform, also under
/pub/fatman/<name>/<version>). Python standard library only."""

import json
import os
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("FATMAN_PORT", "7000"))
PREFIX = re.compile(r"^/pub/fatman/[^/]+/[^/]+")
TRACING_HEADER = os.environ.get("REQUEST_TRACING_HEADER", "X-Request-Tracing-Id")
LAST_CALL = [0.0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def route(self):
        path = PREFIX.sub("", self.path.split("?", 1)[0], count=1) or "/"
        return path.rstrip("/") or "/"

    def reply(self, status, payload, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.headers.get(TRACING_HEADER):
            self.send_header(TRACING_HEADER, self.headers[TRACING_HEADER])
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.route()
        if path == "/live":
            self.reply(200, {"live": True, "deployment_timestamp": os.environ.get("FATMAN_DEPLOYMENT_TIMESTAMP")})
        elif path == "/ready":
            self.reply(200, {"ready": True})
        elif path == "/health":
            self.reply(200, {"service": "fatman", "fatman_name": os.environ.get("FATMAN_NAME"),
                             "status": "pass", "live": True, "ready": True})
        elif path == "/metrics":
            text = f"# TYPE last_call_timestamp gauge\nlast_call_timestamp {LAST_CALL[0]}\n"
            self.reply(200, text.encode(), "text/plain; version=0.0.4")
        else:
            self.reply(404, {"error": f"not found: {path}"})

    def do_POST(self):
        path = self.route()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/api/v1/perform", "/perform"):
            self.reply(404, {"error": f"not found: {path}"})
            return
        try:
            numbers = json.loads(raw or b"{}")["numbers"]
            result = sum(float(n) for n in numbers)
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": f"expected {{\"numbers\": [...]}}: {e}"})
            return
        LAST_CALL[0] = time.time()
        self.reply(200, int(result) if result.is_integer() else result)

    def log_message(self, fmt, *args):
        print(json.dumps({"message": fmt % args}), flush=True)


if __name__ == "__main__":
    # As PID 1 in a container, SIGTERM is ignored unless handled: exit at once on docker stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"message": f"docker-http sample listening on 0.0.0.0:{PORT}"}), flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
