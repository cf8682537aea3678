#!/usr/bin/env python3
"""Dashboard benchmark (not a test): the fatmen page and the portfolio page at 1,000 fatmen.

Starts release builds of Lifecycle (SQLite, 1,000 fatmen seeded straight into the database as
bench/lifecycle.py does) and of the dashboard, signs in as admin, then times over keep-alive HTTP:
- the fatmen page `GET /dashboard/` (first page),
- the portfolio page unfiltered (`page_size=100`) and with filters on three columns,
- Lifecycle's JSON listing `GET /api/v1/fatman` with the same token, measured in the same run:
  the baseline the pages' ratios are against.
Targets (issue 12): page p95 <= 50 ms on this machine; portfolio filtering <= 2x the JSON listing.
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port  # noqa: E402
from lifecycle import seed_sql, N_FATMEN  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
RUNS = int(os.environ.get("BENCH_RUNS", "100"))
ADMIN_PASSWORD = "Bench-Admin-Passw0rd"


def wait_ok(port, path, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited early with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{what} did not become ready")


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


def timed(conn, path, headers, runs, check=None):
    samples = []
    body = b""
    for _ in range(runs):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        samples.append((time.perf_counter() - start) * 1000)
        assert resp.status == 200, (path, resp.status, body[:300])
    if check:
        check(body)
    return samples


def main():
    subprocess.run(["cargo", "build", "--release", "-p", "lifecycle", "-p", "dashboard"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="rt-bench-dash-")
    procs = []
    try:
        db = os.path.join(tmp, "bench.db")
        lc_http, lc_grpc, dash_port = free_port(), free_port(), free_port()
        env = dict(os.environ, DATABASE_URL=f"sqlite://{db}", HTTP_ADDR=f"127.0.0.1:{lc_http}",
                   GRPC_ADDR=f"127.0.0.1:{lc_grpc}", AUTH_KEY="bench-auth-key",
                   ADMIN_PASSWORD=ADMIN_PASSWORD, RUST_LOG="warn")
        env.pop("REDIS_URL", None)
        lifecycle = os.path.join(TARGET, "release", "lifecycle")
        subprocess.run([lifecycle, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        sql = "\n".join(s.replace("E'", "'").replace("\\n", "\n") for s in seed_sql())
        subprocess.run(["sqlite3", db], input="BEGIN;\n" + sql + "\nCOMMIT;", text=True, check=True)
        procs.append(subprocess.Popen([lifecycle, "serve"], env=env, stdout=subprocess.DEVNULL))
        wait_ok(lc_http, "/ready", procs[-1], "lifecycle")
        dash_env = dict(os.environ, DASHBOARD_ADDR=f"127.0.0.1:{dash_port}",
                        LIFECYCLE_GRPC_URL=f"http://127.0.0.1:{lc_grpc}",
                        SECRET_KEY="bench-secret-key-0123456789abcdef0123456789", RUST_LOG="warn")
        dash_env.pop("REDIS_URL", None)
        procs.append(subprocess.Popen([os.path.join(TARGET, "release", "dashboard")], env=dash_env,
                                      stdout=subprocess.DEVNULL))
        wait_ok(dash_port, "/dashboard/live", procs[-1], "dashboard")

        lc = http.client.HTTPConnection("127.0.0.1", lc_http, timeout=60)
        lc.request("POST", "/api/v1/users/login", body=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
                   headers={"Content-Type": "application/json"})
        token = json.loads(lc.getresponse().read())["token"]

        # Sign in to the dashboard as a browser would: session cookie + CSRF token of the form.
        dash = http.client.HTTPConnection("127.0.0.1", dash_port, timeout=60)
        dash.request("GET", "/dashboard/accounts/login")
        resp = dash.getresponse()
        page = resp.read().decode()
        cookie = resp.getheader("set-cookie").split(";")[0]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf,
                                       "next": "/dashboard/"})
        dash.request("POST", "/dashboard/accounts/login", body=form,
                     headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        resp = dash.getresponse()
        resp.read()
        assert resp.status == 303, resp.status
        cookies = [c.split(";")[0] for c in resp.headers.get_all("set-cookie")]
        headers = {"Cookie": "; ".join(cookies)}

        def count_listed(body):
            assert len(json.loads(body)) == N_FATMEN, "the JSON listing lost fatmen"

        def portfolio_rows(want):
            def check(body):
                m = re.search(rb'id="portfolio-count"[^>]*>\s*(\d+)', body)
                assert m and int(m.group(1)) == want, ("portfolio count", m and m.group(1), want)
            return check

        filtered = "/dashboard/portfolio?page_size=100&" + urllib.parse.urlencode(
            {"f0": "{fatman-1", "f1": "!1.0.0", "f2": "=running"})
        cases = [
            ("JSON listing GET /api/v1/fatman (baseline)", lc, "/api/v1/fatman", {"X-Racetrack-Auth": token}, count_listed),
            ("fatmen page GET /dashboard/", dash, "/dashboard/", headers, None),
            ("portfolio page, unfiltered", dash, "/dashboard/portfolio?page_size=100", headers, portfolio_rows(N_FATMEN)),
            # fatman-100..fatman-199 (100 families x 4 versions) minus version 1.0.0: 300 rows.
            ("portfolio page, 3 column filters", dash, filtered, headers, portfolio_rows(300)),
        ]
        results = {}
        for label, conn, path, hdrs, check in cases:
            timed(conn, path, hdrs, 3)  # warm-up
            samples = timed(conn, path, hdrs, RUNS, check)
            results[label] = samples
            print(f"{label}: p50 {statistics.median(samples):.2f} ms, p95 {pct(samples, 0.95):.2f} ms (N={RUNS})")
        base = results[cases[0][0]]
        base_p50, base_p95 = statistics.median(base), pct(base, 0.95)
        for label, _, _, _, _ in cases[1:]:
            s = results[label]
            p95 = pct(s, 0.95)
            print(f"{label}: p50 ratio to JSON listing {statistics.median(s) / base_p50:.2f}x, "
                  f"p95 ratio {p95 / base_p95:.2f}x; p95 <= 50 ms: {'PASS' if p95 <= 50 else 'FAIL'}")
        ratio = statistics.median(results[cases[3][0]]) / base_p50
        print(f"portfolio filtering / JSON listing (p50) = {ratio:.2f}x (target <= 2x: {'PASS' if ratio <= 2 else 'FAIL'})")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
