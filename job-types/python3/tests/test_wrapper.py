"""Tests of racetrack_fatman_wrapper (standard library only).

Run from the repository root: python3 -m unittest discover -s job-types/python3/tests
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB_TYPE_DIR = HERE.parent
REPO = JOB_TYPE_DIR.parent.parent
SAMPLES = REPO / "sample"
FIXTURES = HERE / "fixtures"
sys.path.insert(0, str(JOB_TYPE_DIR))

from racetrack_fatman_wrapper import client, server  # noqa: E402
from racetrack_fatman_wrapper.logs import LOGGER_NAME  # noqa: E402

# Expected errors of the tested fatmen would otherwise be printed through logging's last resort.
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())

ENV = {
    "FATMAN_NAME": "adder",
    "FATMAN_VERSION": "0.0.1",
    "GIT_VERSION": "abc123",
    "DEPLOYED_BY_RACETRACK_VERSION": "0.1.0",
    "JOB_TYPE_VERSION": "2.4.0",
    "FATMAN_DEPLOYMENT_TIMESTAMP": "1700000000",
}


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start_fatman(entrypoint_path, entrypoint_class="", env=None, initialize=True):
    fatman = server.FatmanServer(str(entrypoint_path), entrypoint_class, host="127.0.0.1", port=0,
                                 environ=dict(ENV, **(env or {})))
    fatman.start()
    if initialize:
        fatman.initialize()
    return fatman


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FatmanTestCase(unittest.TestCase):
    entrypoint = SAMPLES / "python-class" / "adder.py"
    entrypoint_class = "AdderModel"
    env = None

    @classmethod
    def setUpClass(cls):
        cls.fatman = start_fatman(cls.entrypoint, cls.entrypoint_class, cls.env)
        cls.base = f"http://127.0.0.1:{cls.fatman.port}"

    @classmethod
    def tearDownClass(cls):
        cls.fatman.shutdown()

    def call(self, method, path, body=None, headers=None):
        return http(method, self.base + path, body, headers)

    def call_json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.call(method, path, body, headers)
        return status, json.loads(data)


class AdderTest(FatmanTestCase):
    def test_perform(self):
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"numbers": [40, 2]}), (200, 42))
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"numbers": [40, 2.5]}), (200, 42.5))

    def test_perform_under_pub_prefix_and_trailing_slash(self):
        for path in ("/pub/fatman/adder/latest/api/v1/perform", "/pub/fatman/adder/0.0.1/api/v1/perform/",
                     "/pub/fatman/adder/1.x/api/v1/perform?x=1", "/api/v1/perform/"):
            self.assertEqual(self.call_json("POST", path, {"numbers": [1, 2]}), (200, 3), path)

    def test_prefix_of_another_fatman_is_404(self):
        status, _ = self.call_json("POST", "/pub/fatman/other/latest/api/v1/perform", {"numbers": [1]})
        self.assertEqual(status, 404)

    def test_bad_json_is_400(self):
        status, body = self.call_json("POST", "/api/v1/perform", b"{not json",
                                      {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("invalid JSON", body["error"])

    def test_empty_payload_is_400(self):
        status, body = self.call_json("POST", "/api/v1/perform", b"")
        self.assertEqual((status, body["error"]), (400, "payload is empty"))

    def test_not_an_object_is_400(self):
        status, body = self.call_json("POST", "/api/v1/perform", [1, 2])
        self.assertEqual(status, 400)

    def test_missing_and_extra_kwargs_are_400(self):
        status, body = self.call_json("POST", "/api/v1/perform", {})
        self.assertEqual(status, 400)
        self.assertIn("failed to call a function", body["error"])
        self.assertIn("numbers", body["error"])
        status, body = self.call_json("POST", "/api/v1/perform", {"numbers": [1], "extra": 2})
        self.assertEqual(status, 400)
        self.assertIn("extra", body["error"])

    def test_type_error_in_perform_is_400(self):
        status, body = self.call_json("POST", "/api/v1/perform", {"numbers": ["a", 1]})
        self.assertEqual(status, 400)
        self.assertEqual(body["type"], "ValueError")

    def test_get_perform_is_405(self):
        status, headers, _ = self.call("GET", "/api/v1/perform")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "POST")

    def test_live_ready_health(self):
        self.assertEqual(self.call_json("GET", "/live"), (200, {"live": True, "deployment_timestamp": "1700000000"}))
        self.assertEqual(self.call_json("GET", "/ready"), (200, {"ready": True}))
        self.assertEqual(self.call_json("GET", "/pub/fatman/adder/latest/ready"), (200, {"ready": True}))
        status, health = self.call_json("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(health["service"], "fatman")
        self.assertEqual(health["status"], "pass")
        self.assertEqual(health["fatman_name"], "adder")
        self.assertEqual(health["fatman_version"], "0.0.1")
        self.assertEqual(health["git_version"], "abc123")
        self.assertEqual(health["deployed_by_racetrack_version"], "0.1.0")
        self.assertEqual(health["job_type_version"], "2.4.0")
        self.assertEqual(health["deployment_timestamp"], "1700000000")
        self.assertIs(health["live"], True)
        self.assertIs(health["ready"], True)
        self.assertIsNone(health["error"])

    def test_metrics(self):
        before = time.time()
        self.call("POST", "/api/v1/perform", {"numbers": [1, 1]})
        status, headers, data = self.call("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        text = data.decode()
        self.assertIn("# TYPE requests_started counter", text)
        self.assertRegex(text, r"(?m)^requests_started_total \d+$")
        self.assertRegex(text, r"(?m)^requests_done_total \d+$")
        self.assertRegex(text, r'(?m)^endpoint_requests_started_total\{endpoint="/api/v1/perform"\} \d+$')
        self.assertIn("# TYPE request_duration histogram", text)
        self.assertRegex(text, r'(?m)^request_duration_bucket\{endpoint="/api/v1/perform",le="\+Inf"\} \d+$')
        self.assertRegex(text, r'(?m)^request_duration_count\{endpoint="/api/v1/perform"\} \d+$')
        last_call = [line for line in text.splitlines() if line.startswith("last_call_timestamp ")]
        self.assertEqual(len(last_call), 1)
        self.assertGreaterEqual(float(last_call[0].split()[1]), before - 1)

    def test_parameters(self):
        self.assertEqual(self.call_json("GET", "/api/v1/parameters"), (200, [{"name": "numbers", "type": "List[float]"}]))

    def test_docs_page_and_openapi(self):
        status, headers, data = self.call("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["Content-Type"])
        page = data.decode()
        self.assertIn("Fatman - adder", page)
        self.assertIn("/api/v1/perform", page)
        self.assertIn('"numbers": [40, 2]', page)  # docs_input_example embedded
        self.assertNotIn("http://", page.replace("http://www.w3.org", ""))  # self-contained, no CDN
        status, headers, data = self.call("GET", "/pub/fatman/adder/latest/")
        self.assertEqual(status, 200)
        self.assertIn('"/pub/fatman/adder/latest"', data.decode())
        status, spec = self.call_json("GET", "/pub/fatman/adder/latest/openapi.json")
        self.assertEqual(status, 200)
        self.assertEqual(spec["servers"][0]["url"], "/pub/fatman/adder/latest")
        body = spec["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]["application/json"]
        self.assertEqual(body["example"], {"numbers": [40, 2]})
        self.assertEqual(body["schema"]["required"], ["numbers"])
        self.assertEqual(spec["components"]["securitySchemes"]["RacetrackAuth"]["name"], "X-Racetrack-Auth")

    def test_tracing_header_echoed_or_generated(self):
        status, headers, _ = self.call("POST", "/api/v1/perform", {"numbers": [1]}, {"X-Request-Tracing-Id": "trace-42"})
        self.assertEqual(headers["X-Request-Tracing-Id"], "trace-42")
        status, headers, _ = self.call("GET", "/live")
        self.assertRegex(headers["X-Request-Tracing-Id"], r"^[0-9a-f-]{36}$")

    def test_tracing_id_in_logs(self):
        with self.assertLogs(LOGGER_NAME, level="INFO") as captured:
            self.call("POST", "/api/v1/perform", {"numbers": [1]}, {"X-Request-Tracing-Id": "trace-log"})
            time.sleep(0.05)
        records = [r for r in captured.records if getattr(r, "tracing_id", None) == "trace-log"]
        self.assertTrue(records, [r.getMessage() for r in captured.records])
        self.assertIn("POST /api/v1/perform 200", records[-1].getMessage())

    def test_cors_preflight(self):
        status, headers, _ = self.call("OPTIONS", "/api/v1/perform", None, {
            "Origin": "http://dashboard.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-racetrack-auth"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "http://dashboard.example")
        self.assertEqual(headers["Access-Control-Allow-Credentials"], "true")
        self.assertIn("x-racetrack-auth", headers["Access-Control-Allow-Headers"])

    def test_unknown_endpoint_404(self):
        status, body = self.call_json("GET", "/api/v1/nothing")
        self.assertEqual(status, 404)

    def test_keep_alive_connection_serves_several_requests(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.fatman.port, timeout=5)
        try:
            for n in range(3):
                conn.request("POST", "/api/v1/perform", json.dumps({"numbers": [n, 1]}),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                self.assertEqual(json.loads(resp.read()), n + 1)
        finally:
            conn.close()


class AuxiliaryEndpointsTest(FatmanTestCase):
    entrypoint = SAMPLES / "python-auxiliary-endpoints" / "entrypoint.py"
    entrypoint_class = "AuxiliaryEndpoints"
    env = {"FATMAN_NAME": "python-auxiliary-endpoints"}

    def test_auxiliary_endpoint(self):
        status, body = self.call_json("POST", "/api/v1/explain", {"numbers": [3, 1]})
        self.assertEqual((status, body), (200, {"3": 0.75, "1": 0.25}))
        status, body = self.call_json("POST", "/pub/fatman/python-auxiliary-endpoints/latest/api/v1/random",
                                      {"start": 5, "end": 5})
        self.assertEqual((status, body), (200, 5))

    def test_auxiliary_value_error_is_400(self):
        status, body = self.call_json("POST", "/api/v1/explain", {"numbers": [0]})
        self.assertEqual(status, 400)
        self.assertEqual(body["type"], "ValueError")

    def test_auxiliary_get_is_405(self):
        status, _, _ = self.call("GET", "/api/v1/explain")
        self.assertEqual(status, 405)

    def test_openapi_lists_auxiliary_endpoints_with_examples(self):
        status, spec = self.call_json("GET", "/openapi.json")
        op = spec["paths"]["/api/v1/explain"]["post"]
        self.assertEqual(op["operationId"], "auxiliary_endpoint_explain")
        self.assertEqual(op["requestBody"]["content"]["application/json"]["example"], {"numbers": [40, 2]})
        self.assertEqual(spec["paths"]["/api/v1/random"]["post"]["requestBody"]["content"]["application/json"]["example"],
                         {"start": 1, "end": 6})

    def test_metrics_per_auxiliary_endpoint(self):
        self.call("POST", "/api/v1/random", {})
        _, _, data = self.call("GET", "/metrics")
        self.assertIn('endpoint_requests_started_total{endpoint="/api/v1/random"}', data.decode())


class FakePub:
    """Records what a fatman sends to PUB and answers with the sum of the numbers."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                if self.path.startswith("/pub/fatman/forbidden/"):
                    payload, status = b'{"error": "not allowed"}', 401
                else:
                    payload, status = json.dumps(sum(body["numbers"])).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pub"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class KitchenSinkTest(FatmanTestCase):
    entrypoint = FIXTURES / "kitchen_sink.py"
    entrypoint_class = ""  # the only class of the module
    env = {"FATMAN_NAME": "kitchen"}

    def test_exception_is_500_with_message(self):
        status, body = self.call_json("POST", "/api/v1/perform", {"mode": "boom", "value": 7})
        self.assertEqual((status, body), (500, {"error": "kaboom: 7", "type": "RuntimeError"}))
        _, _, data = self.call("GET", "/metrics")
        self.assertRegex(data.decode(), r'request_internal_errors_total\{endpoint="/api/v1/perform"\} [1-9]')
        # the server lives on
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"value": 1}), (200, {"value": 1}))

    def test_value_error_is_400(self):
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"mode": "value-error"}),
                         (400, {"error": "value is wrong", "type": "ValueError"}))

    def test_results_nan_and_sets(self):
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"mode": "nan"}), (200, [1.0, None, None]))
        self.assertEqual(self.call_json("POST", "/api/v1/perform", {"mode": "set"}), (200, {"s": [1, 2, 3]}))
        status, body = self.call_json("POST", "/api/v1/perform", {"mode": "unserializable"})
        self.assertEqual(status, 500)
        self.assertIn("not JSON serializable", body["error"])

    def test_auxiliary_exception_and_nested_path(self):
        status, body = self.call_json("POST", "/api/v1/explode", {})
        self.assertEqual((status, body["type"]), (500, "KeyError"))
        self.assertEqual(self.call_json("POST", "/api/v1/nested/path", {"x": 4}), (200, 8))

    def test_static_endpoints(self):
        status, headers, data = self.call("GET", "/api/v1/manifest")
        self.assertEqual((status, data), (200, b"name: kitchen\nkind: sink\n"))
        status, headers, data = self.call("GET", "/pub/fatman/kitchen/latest/api/v1/typed")
        self.assertEqual(headers["Content-Type"], "application/x-yaml")
        status, headers, data = self.call("GET", "/api/v1/assets/index.html")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/html"))
        status, headers, data = self.call("GET", "/api/v1/assets/sub/style.css")
        self.assertEqual((status, data), (200, b"body{}\n"))
        status, _, _ = self.call("GET", "/api/v1/assets/../kitchen_sink.py")
        self.assertEqual(status, 404)

    def test_custom_metrics(self):
        self.call("POST", "/api/v1/perform", {"value": 1})
        _, _, data = self.call("GET", "/metrics")
        text = data.decode()
        self.assertIn("# TYPE perform_calls gauge", text)
        self.assertRegex(text, r"(?m)^perform_calls [1-9]\d*$")
        self.assertIn('model_info{model="kitchen"} 1', text)
        self.assertNotIn("skipped_metric", text)

    def test_webview_wsgi_app(self):
        status, headers, data = self.call("GET", "/pub/fatman/kitchen/latest/api/v1/webview/page")
        self.assertEqual(status, 200)
        self.assertEqual(headers["X-Webview"], "yes")
        self.assertEqual(data.decode(),
                         # base_url names the deployed version (FATMAN_VERSION), SCRIPT_NAME the requested one
                         "webview /pub/fatman/kitchen/latest/api/v1/webview|/page|/pub/fatman/kitchen/0.0.1/api/v1/webview")

    def test_request_context_carries_tracing_id(self):
        status, body = self.call_json("POST", "/api/v1/perform", {"mode": "tracing"}, {"X-Request-Tracing-Id": "ctx-1"})
        self.assertEqual((status, body), (200, {"tracing_id": "ctx-1", "header": "ctx-1"}))

    def test_call_fatman_through_pub(self):
        pub = FakePub()
        saved = {k: os.environ.get(k) for k in ("PUB_URL", "AUTH_TOKEN", "FATMAN_NAME")}
        os.environ.update(PUB_URL=pub.url, AUTH_TOKEN="family-token", FATMAN_NAME="kitchen")
        try:
            status, body = self.call_json("POST", "/api/v1/perform", {"mode": "chain", "value": [40, 2.7]},
                                          {"X-Request-Tracing-Id": "chain-1"})
            self.assertEqual((status, body), (200, 42.7))
            path, headers, payload = pub.requests[-1]
            self.assertEqual(path, "/pub/fatman/adder/latest/api/v1/perform")
            self.assertEqual(headers["X-Racetrack-Auth"], "family-token")
            self.assertEqual(headers["X-Request-Tracing-Id"], "chain-1")
            self.assertIn("application/json", headers["Accept"])
            self.assertEqual(payload, {"numbers": [40, 2.7]})
            # Called directly (outside a request) with an explicit version; errors name the call.
            self.assertEqual(client.call_fatman("adder", payload={"numbers": [1, 2]}, version="0.0.1"), 3)
            self.assertEqual(pub.requests[-1][0], "/pub/fatman/adder/0.0.1/api/v1/perform")
            with self.assertRaises(client.FatmanCallError) as ctx:
                client.call_fatman("forbidden", payload={"numbers": []})
            self.assertIn('failed to call fatman "forbidden latest" by kitchen: 401', str(ctx.exception))
            self.assertEqual(ctx.exception.status, 401)
        finally:
            pub.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class CustomTracingHeaderTest(FatmanTestCase):
    env = {"REQUEST_TRACING_HEADER": "traceparent"}

    def test_custom_header_name(self):
        _, headers, _ = self.call("POST", "/api/v1/perform", {"numbers": [1]}, {"traceparent": "00-abc-def-01"})
        self.assertEqual(headers["traceparent"], "00-abc-def-01")


class InitializationTest(unittest.TestCase):
    def test_live_before_ready(self):
        sys.path.insert(0, str(FIXTURES))
        import slow_gate  # the entrypoint's constructor waits for slow_gate.RELEASE

        slow_gate.RELEASE.clear()
        fatman = start_fatman(FIXTURES / "slow_init.py", "", initialize=False)
        base = f"http://127.0.0.1:{fatman.port}"
        thread = threading.Thread(target=fatman.initialize)
        thread.start()
        try:
            time.sleep(0.2)
            self.assertEqual(http("GET", base + "/live")[0], 200)
            status, _, body = http("GET", base + "/ready")
            self.assertEqual((status, json.loads(body)), (500, {"ready": False}))
            status, _, body = http("POST", base + "/api/v1/perform", {"value": 1})
            self.assertEqual((status, json.loads(body)["error"]), (503, "fatman is still initializing"))
            status, _, body = http("GET", base + "/health")
            self.assertEqual((status, json.loads(body)["ready"]), (200, False))
            slow_gate.RELEASE.set()
            thread.join(10)
            self.assertEqual(http("GET", base + "/ready")[0], 200)
            self.assertEqual(json.loads(http("POST", base + "/api/v1/perform", {"value": 1})[2]), 1)
        finally:
            slow_gate.RELEASE.set()
            thread.join(10)
            fatman.shutdown()

    def assert_init_error(self, entrypoint, entrypoint_class, expected):
        fatman = start_fatman(entrypoint, entrypoint_class)
        base = f"http://127.0.0.1:{fatman.port}"
        try:
            self.assertIn(expected, fatman.error)
            status, _, body = http("GET", base + "/live")
            live = json.loads(body)
            self.assertEqual(status, 500)
            self.assertIs(live["live"], False)
            self.assertEqual(live["deployment_timestamp"], "1700000000")
            self.assertIn(expected, live["error"])
            status, _, body = http("GET", base + "/health")
            self.assertEqual((status, json.loads(body)["status"]), (500, "fail"))
            self.assertEqual(http("GET", base + "/ready")[0], 500)
            self.assertEqual(http("POST", base + "/api/v1/perform", {})[0], 503)
        finally:
            fatman.shutdown()

    def test_constructor_error(self):
        self.assert_init_error(SAMPLES / "python-crash-at-start" / "entrypoint.py", "CrashAtStart",
                               "crash at start on purpose")

    def test_import_error(self):
        self.assert_init_error(FIXTURES / "import_error.py", "", "racetrack_module_that_does_not_exist")

    def test_missing_file(self):
        self.assert_init_error(FIXTURES / "nothing_here.py", "", "does not exist")

    def test_class_selection_errors(self):
        self.assert_init_error(FIXTURES / "two_classes.py", "", "multiple classes found in a module")
        self.assert_init_error(FIXTURES / "two_classes.py", "Third", "class Third was not found")

    def test_bad_input_example(self):
        self.assert_init_error(FIXTURES / "bad_example.py", "", "must be a dict")


class ProcessTest(unittest.TestCase):
    """The wrapper as the container runs it: python -m racetrack_fatman_wrapper run ..."""

    def run_wrapper(self, cwd, *args, env=None):
        full_env = dict(os.environ, PYTHONPATH=str(JOB_TYPE_DIR), **ENV)
        full_env.update(env or {})
        return subprocess.Popen([sys.executable, "-u", "-m", "racetrack_fatman_wrapper", "run", *args],
                                cwd=str(cwd), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_crash_at_start_exits_non_zero(self):
        proc = self.run_wrapper(SAMPLES / "python-crash-at-start", "entrypoint.py", "CrashAtStart", "--port", "0",
                                env={"FATMAN_INIT_ERROR_EXIT_DELAY": "0"})
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 1, err.decode())
        err = err.decode()
        self.assertIn("fatman initialization failed", err)
        self.assertIn("CrashAtStart failed to initialize: RuntimeError: model file is missing: crash at start on purpose", err)
        self.assertIn("Traceback", err)

    def test_import_error_exits_non_zero(self):
        proc = self.run_wrapper(FIXTURES, "import_error.py", "--port", "0", env={"FATMAN_INIT_ERROR_EXIT_DELAY": "0"})
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("No module named 'racetrack_module_that_does_not_exist'", err.decode())

    def test_crash_serves_error_on_live_before_exit(self):
        port = free_port()
        proc = self.run_wrapper(SAMPLES / "python-crash-at-start", "entrypoint.py", "--port", str(port),
                                env={"FATMAN_INIT_ERROR_EXIT_DELAY": "1.5"})
        try:
            deadline = time.time() + 10
            live = None
            while time.time() < deadline:
                try:
                    status, _, body = http("GET", f"http://127.0.0.1:{port}/live", timeout=1)
                    live = (status, json.loads(body))
                    if status == 500:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            self.assertIsNotNone(live)
            self.assertEqual(live[0], 500)
            self.assertIn("crash at start on purpose", live[1]["error"])
            self.assertEqual(proc.wait(timeout=15), 1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    def test_serves_and_stops_on_sigterm(self):
        port = free_port()
        proc = self.run_wrapper(SAMPLES / "python-class", "adder.py", "AdderModel",
                                env={"FATMAN_PORT": str(port)})
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    if http("GET", f"http://127.0.0.1:{port}/ready", timeout=1)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            status, _, body = http("POST", f"http://127.0.0.1:{port}/pub/fatman/adder/latest/api/v1/perform",
                                   {"numbers": [40, 2]}, {"X-Request-Tracing-Id": "proc-1"})
            self.assertEqual((status, json.loads(body)), (200, 42))
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
        out, _ = proc.communicate()
        lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        access = [entry for entry in lines if entry.get("tracing_id") == "proc-1"]
        self.assertTrue(access, lines)
        self.assertEqual(access[-1]["level"], "INFO")
        self.assertNotIn("GET /ready", " ".join(entry["message"] for entry in lines))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    unittest.main()
