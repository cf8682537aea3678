"""HTTP server of the fatman (``http.server.ThreadingHTTPServer``, one thread per connection).

Every route is served at the root and under ``/pub/fatman/<FATMAN_NAME>/<any version>`` because
PUB forwards the full incoming path. Until the entrypoint is constructed only ``/live``, ``/ready``,
``/health`` and ``/metrics`` answer; the rest answers 503.
"""

import base64
import dataclasses
import datetime
import decimal
import inspect
import io
import json
import math
import os
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from . import __version__, docs
from . import entrypoint as ep
from .logs import get_logger, tracing_id_var
from .metrics import Metrics

DEFAULT_TRACING_HEADER = "X-Request-Tracing-Id"
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
STATUS_PATHS = ("/live", "/ready", "/health", "/metrics")
PREFIX_RE = re.compile(r"^/pub/fatman/([^/]+)/([^/]+)(/.*)?$")
WEBVIEW_PATH = ep.API_PREFIX + "/webview"


@dataclasses.dataclass
class Request:
    """What user code sees through ``request_context.get()``."""

    method: str
    path: str  # the path as received, without the query string
    route: str  # the path relative to the fatman's base path, e.g. /api/v1/perform
    base_path: str  # "" or /pub/fatman/<name>/<version>
    query: str
    headers: "email.message.Message"  # noqa: F821  (case-insensitive .get / [])
    body: bytes
    tracing_id: str
    client: str


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: List[Tuple[str, str]] = dataclasses.field(default_factory=list)


def json_response(status: int, payload) -> Response:
    return Response(status, json.dumps(payload, ensure_ascii=False).encode())


def error_response(status: int, message: str, error_type: Optional[str] = None) -> Response:
    payload = {"error": message}
    if error_type:
        payload["type"] = error_type
    return json_response(status, payload)


class FatmanInfo:
    """Identity of the fatman from the environment (baked into the image or injected at deploy)."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.fatman_name = env.get("FATMAN_NAME") or None
        self.fatman_version = env.get("FATMAN_VERSION") or None
        self.git_version = env.get("GIT_VERSION") or None
        self.deployed_by_racetrack_version = env.get("DEPLOYED_BY_RACETRACK_VERSION") or None
        self.job_type_version = env.get("JOB_TYPE_VERSION") or None
        # A string, as the original sends it; null when the platform did not set it.
        self.deployment_timestamp = env.get("FATMAN_DEPLOYMENT_TIMESTAMP") or None
        self.tracing_header = env.get("REQUEST_TRACING_HEADER") or DEFAULT_TRACING_HEADER
        try:
            self.max_body_bytes = int(env.get("FATMAN_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
        except ValueError:
            self.max_body_bytes = DEFAULT_MAX_BODY_BYTES

    def as_dict(self) -> dict:
        return {
            "fatman_name": self.fatman_name,
            "fatman_version": self.fatman_version,
            "git_version": self.git_version,
            "deployed_by_racetrack_version": self.deployed_by_racetrack_version,
            "job_type_version": self.job_type_version,
            "deployment_timestamp": self.deployment_timestamp,
        }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, socket.timeout)):
            get_logger().debug("connection from %s dropped: %s", client_address, exc)
            return
        get_logger().error("error while handling a connection from %s", client_address, exc_info=True)


class FatmanServer:
    def __init__(self, entrypoint_path: str, entrypoint_class: str = "", host: str = "0.0.0.0",
                 port: int = 7000, environ=None):
        self.entrypoint_path = entrypoint_path
        self.entrypoint_class = entrypoint_class or ""
        self.info = FatmanInfo(environ)
        self.metrics = Metrics()
        self.log = get_logger()
        self.entry: Optional[ep.Entrypoint] = None
        self.ready = False
        self.live = True
        self.error: Optional[str] = None
        self.error_traceback: Optional[str] = None
        self.initialized = threading.Event()
        self._thread: Optional[threading.Thread] = None
        handler = type("FatmanRequestHandler", (_Handler,), {"fatman": self})
        self.httpd = _HTTPServer((host, port), handler)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    # -- lifecycle ---------------------------------------------------------------------------

    def initialize(self) -> bool:
        """Loads and constructs the entrypoint; True when the fatman is ready."""
        name = self.info.fatman_name or "fatman"
        webview_base = f"/pub/fatman/{name}/{self.info.fatman_version or 'latest'}{WEBVIEW_PATH}"
        started = time.monotonic()
        self.log.info("loading entrypoint %s %s", self.entrypoint_path, self.entrypoint_class or "(single class)")
        try:
            self.entry = ep.load_entrypoint(self.entrypoint_path, self.entrypoint_class, webview_base)
        except ep.EntrypointError as e:
            self.live = False
            self.error = str(e)
            cause = e.__cause__ or e
            self.error_traceback = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            self.log.error("fatman initialization failed: %s", self.error, extra={"traceback": self.error_traceback})
            self.initialized.set()
            return False
        self.ready = True
        self.log.info("fatman %s is ready: class %s, %d auxiliary and %d static endpoints, initialized in %.3f s",
                      self.info.fatman_name or "", self.entry.class_name, len(self.entry.auxiliary),
                      len(self.entry.static), time.monotonic() - started)
        self.initialized.set()
        return True

    def start(self) -> "FatmanServer":
        """Serves in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fatman-http", daemon=True)
        self._thread.start()
        host, port = self.httpd.server_address[:2]
        self.log.info("racetrack_fatman_wrapper %s listening on %s:%d", __version__, host, port)
        return self

    def shutdown(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- routing -----------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        route, method = req.route, req.method
        if route in STATUS_PATHS and method not in ("GET", "HEAD"):
            return _not_allowed("GET")
        if route == "/live":
            return self._live()
        if route == "/ready":
            return json_response(200, {"ready": True}) if self.ready else json_response(500, {"ready": False})
        if route == "/health":
            return self._health()
        if route == "/metrics":
            return Response(200, self._metrics_text().encode(), "text/plain; version=0.0.4; charset=utf-8")
        if not self.ready:
            if self.error:
                return error_response(503, f"fatman initialization failed: {self.error}")
            return error_response(503, "fatman is still initializing")
        entry = self.entry
        if route in ("/", "/docs"):
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            spec = docs.openapi(entry, self.info.as_dict(), req.base_path)
            return Response(200, docs.page(spec, req.base_path).encode(), "text/html; charset=utf-8")
        if route == "/openapi.json":
            return json_response(200, docs.openapi(entry, self.info.as_dict(), req.base_path))
        if route == ep.API_PREFIX + "/perform":
            if method != "POST":
                return _not_allowed("POST")
            return self._call_user(route, entry.perform, req)
        if route == ep.API_PREFIX + "/parameters":
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            return json_response(200, ep.parameters(entry.perform))
        if entry.webview_app is not None and (route == WEBVIEW_PATH or route.startswith(WEBVIEW_PATH + "/")):
            return self._webview(req)
        if route in entry.auxiliary:
            if method != "POST":
                return _not_allowed("POST")
            return self._call_user(route, entry.auxiliary[route], req)
        if route in entry.static:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            data, mimetype = ep.read_static(entry.static[route])
            return Response(200, data, mimetype)
        return error_response(404, f"endpoint not found: {route}")

    def _live(self) -> Response:
        if self.live:
            return json_response(200, {"live": True, "deployment_timestamp": self.info.deployment_timestamp})
        return json_response(500, {"live": False, "deployment_timestamp": self.info.deployment_timestamp,
                                   "error": self.error})

    def _health(self) -> Response:
        payload = {
            "service": "fatman",
            "fatman_name": self.info.fatman_name,
            "live": self.live,
            "ready": self.ready,
            "status": "pass" if self.live else "fail",
            "error": self.error,
            "fatman_version": self.info.fatman_version,
            "git_version": self.info.git_version,
            "deployed_by_racetrack_version": self.info.deployed_by_racetrack_version,
            "deployment_timestamp": self.info.deployment_timestamp,
            "job_type_version": self.info.job_type_version,
            "wrapper_version": __version__,
        }
        return json_response(200 if self.live else 500, payload)

    def _metrics_text(self) -> str:
        user = []
        if self.entry is not None:
            try:
                user = self.entry.user_metrics()
            except Exception:
                self.log.exception("metrics() of the entrypoint failed")
        return self.metrics.render(user, on_bad_metric=lambda msg: self.log.warning(msg))

    def _call_user(self, endpoint: str, fn: Callable, req: Request) -> Response:
        if not req.body.strip():
            return error_response(400, "payload is empty", "ValueError")
        try:
            payload = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as e:
            return error_response(400, f"invalid JSON payload: {e}", "ValueError")
        if not isinstance(payload, dict):
            return error_response(400, "payload must be a JSON object whose keys are the arguments", "ValueError")
        self.metrics.endpoint_call_started(endpoint)
        started = time.monotonic()
        try:
            try:
                inspect.signature(fn).bind(**payload)
            except TypeError as e:
                return error_response(400, f"failed to call a function: {e}", "ValueError")
            except ValueError:  # no signature available (builtins): let the call decide
                pass
            result = fn(**payload)
        except TypeError as e:
            self.log.warning("%s raised TypeError: %s", endpoint, e, exc_info=True)
            return error_response(400, f"failed to call a function: {e}", "ValueError")
        except ValueError as e:
            self.log.warning("%s raised ValueError: %s", endpoint, e, exc_info=True)
            return error_response(400, str(e) or "ValueError", "ValueError")
        except BaseException as e:
            self.log.error("%s failed: %s: %s", endpoint, type(e).__name__, e, exc_info=True)
            self.metrics.internal_error(endpoint)
            return error_response(500, str(e) or type(e).__name__, type(e).__name__)
        finally:
            self.metrics.endpoint_call_done(endpoint, time.monotonic() - started)
        try:
            body = encode_result(result)
        except (TypeError, ValueError) as e:
            self.log.error("%s returned a result that is not JSON serializable: %s", endpoint, e)
            self.metrics.internal_error(endpoint)
            return error_response(500, f"result is not JSON serializable: {e}", type(e).__name__)
        return Response(200, body)

    def _webview(self, req: Request) -> Response:
        app = self.entry.webview_app
        script_name = req.base_path + WEBVIEW_PATH
        path_info = req.route[len(WEBVIEW_PATH):]
        static_dir = os.path.join(os.getcwd(), "static")
        if path_info.startswith("/static/") and os.path.isdir(static_dir):
            rel = os.path.normpath(path_info[len("/static/"):])
            full = os.path.join(static_dir, rel)
            if not rel.startswith("..") and os.path.isfile(full):
                with open(full, "rb") as f:
                    return Response(200, f.read(), ep._guess_type(ep.Path(full)))
        if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None)):
            return error_response(501, "webview_app returned an ASGI app; this wrapper serves WSGI apps only")
        return call_wsgi(app, req, script_name, path_info or "/")


def _not_allowed(allowed: str) -> Response:
    resp = error_response(405, "method not allowed")
    resp.headers.append(("Allow", allowed))
    return resp


def _json_default(value):
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas series
        return value.tolist()
    if hasattr(value, "to_dict"):  # pandas data frames
        return value.to_dict(orient="records") if "orient" in str(inspect.signature(value.to_dict)) else value.to_dict()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _without_nan(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(v) for v in value]
    return value


def encode_result(result) -> bytes:
    """JSON of a user result; NaN and infinities (not valid JSON) become null."""
    try:
        return json.dumps(result, default=_json_default, allow_nan=False, ensure_ascii=False).encode()
    except ValueError:
        plain = json.loads(json.dumps(result, default=_json_default, allow_nan=True))
        return json.dumps(_without_nan(plain), allow_nan=False, ensure_ascii=False).encode()


def call_wsgi(app, req: Request, script_name: str, path_info: str) -> Response:
    environ = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": req.query,
        "CONTENT_TYPE": req.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(req.body)),
        "SERVER_NAME": "fatman",
        "SERVER_PORT": "7000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": req.client,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in req.headers.items():
        name = "HTTP_" + key.upper().replace("-", "_")
        if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: chunks.append(data)

    chunks: List[bytes] = []
    result = app(environ, start_response)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    status = int(str(captured.get("status", "500")).split()[0])
    headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() not in ("content-length", "connection")]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "text/html; charset=utf-8")
    headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    return Response(status, b"".join(chunks), content_type, headers)


class _Handler(BaseHTTPRequestHandler):
    fatman: FatmanServer  # set on the subclass made per server
    protocol_version = "HTTP/1.1"
    server_version = "racetrack-fatman/" + __version__
    timeout = 300  # seconds a connection may stay idle or a body may take to arrive

    def log_message(self, format, *args):  # noqa: A002 - the access log is written in _handle
        get_logger().debug("http: " + format, *args)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    def _read_body(self) -> Optional[bytes]:
        fatman = self.fatman
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                if len(data) + size > fatman.info.max_body_bytes:
                    return None
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        if length > fatman.info.max_body_bytes:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str):
        fatman = self.fatman
        started = time.monotonic()
        header_name = fatman.info.tracing_header
        tracing_id = self.headers.get(header_name) or str(uuid.uuid4())
        tracing_token = tracing_id_var.set(tracing_id)
        fatman.metrics.request_started()
        status = 500
        path = urlsplit(self.path).path or "/"
        try:
            split = urlsplit(self.path)
            route, base_path, resp = self._route(split.path or "/")
            try:
                body = self._read_body()
            except (ValueError, OSError):
                body, resp = b"", error_response(400, "malformed request body")
                self.close_connection = True
            if body is None:
                body, resp = b"", error_response(413, f"request body larger than {fatman.info.max_body_bytes} bytes")
                self.close_connection = True
            if resp is None:
                req = Request(method=method, path=split.path, route=route, base_path=base_path, query=split.query,
                              headers=self.headers, body=body, tracing_id=tracing_id,
                              client=self.client_address[0] if self.client_address else "")
                if method == "OPTIONS":
                    resp = Response(204, b"", "text/plain")
                else:
                    ctx_token = ep.request_context.set(req)
                    try:
                        resp = fatman.dispatch(Request(**dict(vars(req), method="GET")) if method == "HEAD" else req)
                    except Exception as e:
                        fatman.log.error("unhandled error on %s %s", method, path, exc_info=True)
                        resp = error_response(500, f"internal error: {e}", type(e).__name__)
                    finally:
                        ep.request_context.reset(ctx_token)
            status = resp.status
            self._send(method, resp, tracing_id)
        except (BrokenPipeError, ConnectionResetError) as e:
            fatman.log.error("client closed the connection during %s %s: %s", method, path, e)
            status = 204
            self.close_connection = True
        finally:
            fatman.metrics.request_done()
            route_for_log = path
            if not (method == "GET" and any(route_for_log.endswith(p) for p in STATUS_PATHS)):
                fatman.log.info("%s %s %d", method, self.path, status,
                                extra={"status": status, "duration_ms": round((time.monotonic() - started) * 1000, 2)})
            tracing_id_var.reset(tracing_token)

    def _route(self, path: str) -> Tuple[str, str, Optional[Response]]:
        base_path = ""
        match = PREFIX_RE.match(path)
        if match:
            name = match.group(1)
            expected = self.fatman.info.fatman_name
            if expected and name != expected:
                return path, "", error_response(404, f"this is fatman {expected}, not {name}")
            base_path = f"/pub/fatman/{name}/{match.group(2)}"
            path = match.group(3) or "/"
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        return path, base_path, None

    def _send(self, method: str, resp: Response, tracing_id: str):
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header(self.fatman.info.tracing_header, tracing_id)
        origin = self.headers.get("Origin")
        self.send_header("Access-Control-Allow-Origin", origin or "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        if origin:
            self.send_header("Vary", "Origin")
        if method == "OPTIONS":
            self.send_header("Access-Control-Allow-Methods",
                             self.headers.get("Access-Control-Request-Method") or "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "*")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Access-Control-Expose-Headers", self.fatman.info.tracing_header)
        for key, value in resp.headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD" and resp.body:
            self.wfile.write(resp.body)
