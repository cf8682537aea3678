"""What every benchmark script needs: ports, HTTP calls, readiness, build contexts, memory."""
import base64
import io
import json
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, token=None, timeout=600):
    """(status, raw body) of a JSON request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Racetrack-Auth", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def request_json(method, url, body=None, token=None, timeout=600):
    """Like request, with the body parsed; a body that is not JSON ends the benchmark, explained."""
    status, raw = request(method, url, body, token, timeout)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        sys.exit(f"{method} {url}: {status} {raw[:500]!r}")


def wait_ok(url, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{url} not ready")


def tar_context(files):
    """Base64 of a gzipped tar of {name in archive: path}: a deploy's `build_context`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    return base64.b64encode(buf.getvalue()).decode()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
