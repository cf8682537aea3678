#!/usr/bin/env python3
"""Lifecycle benchmark (not a test): latency of listing 1,000 fatmen through the API, and idle RSS.

Starts the release binary on a fresh SQLite file (and on a fresh Postgres database when one is
reachable), seeds 1,000 fatmen straight into the database, then times `GET /api/v1/fatman` over
keep-alive HTTP. `GET /live` timed in the same run is the baseline: the listing's cost above plain
HTTP. Targets (issue 2): list <= 30 ms median, idle RSS <= 30 MB.
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from common import rss_mb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "lifecycle")
PORT = 17102
N_FATMEN = 1000
RUNS = int(os.environ.get("BENCH_RUNS", "50"))
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgres://racetrack:racetrack@127.0.0.1:5432/postgres")
ADMIN_PASSWORD = "Bench-Admin-Passw0rd"




def seed_sql(now="2026-01-01 00:00:00"):
    rows = []
    for i in range(N_FATMEN):
        name = f"fatman-{i // 4:03d}"
        version = f"1.0.{i % 4}"
        fam = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        rows.append((fam, name, version))
    fams = sorted({(f, n) for f, n, _ in rows})
    stmts = [f"INSERT INTO registry_fatmanfamily (id, name) VALUES ('{f}', '{n}');" for f, n in fams]
    for fam, name, version in rows:
        manifest = (f"name: {name}\\nowner_email: bench@example.com\\nversion: {version}\\n"
                    "lang: python3:latest\\ngit:\\n  remote: https://example.com/r.git\\n")
        stmts.append(
            "INSERT INTO registry_fatman (id, family_id, name, version, status, create_time, update_time, "
            "manifest, internal_name, image_tag, deployed_by, infrastructure_target) VALUES "
            f"('{uuid.uuid4()}', '{fam}', '{name}', '{version}', 'running', '{now}', '{now}', "
            f"E'{manifest}', 'fatman-{name}-v-{version.replace('.', '-')}', '2026-01-01T000000', 'bench', 'docker');"
        )
    return stmts


def wait_ready(conn_factory, proc):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"lifecycle exited early with {proc.returncode}")
        try:
            c = conn_factory()
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("lifecycle did not become ready")


def timed(conn, path, token, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        conn.request("GET", path, headers={"X-Racetrack-Auth": token} if token else {})
        resp = conn.getresponse()
        body = resp.read()
        samples.append((time.perf_counter() - start) * 1000)
        assert resp.status == 200, (resp.status, body[:200])
    return samples, body


def run(label, database_url, seed):
    env = dict(os.environ, DATABASE_URL=database_url, HTTP_ADDR=f"127.0.0.1:{PORT}",
               AUTH_KEY="bench-auth-key", ADMIN_PASSWORD=ADMIN_PASSWORD, RUST_LOG="warn")
    # Migrate first so the seed lands in the real schema.
    subprocess.run([BIN, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    seed()
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        factory = lambda: http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        wait_ready(factory, proc)
        time.sleep(1.0)
        idle_rss = rss_mb(proc.pid)
        conn = factory()
        conn.request("POST", "/api/v1/users/login", body=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
                     headers={"Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["token"]
        timed(conn, "/api/v1/fatman", token, 3)  # warm-up
        list_ms, body = timed(conn, "/api/v1/fatman", token, RUNS)
        count = len(json.loads(body))
        live_ms, _ = timed(conn, "/live", None, RUNS)
        loaded_rss = rss_mb(proc.pid)
        list_med, live_med = statistics.median(list_ms), statistics.median(live_ms)
        print(f"[{label}] list {count} fatmen: median {list_med:.2f} ms, p90 {sorted(list_ms)[int(RUNS * 0.9) - 1]:.2f} ms "
              f"(N={RUNS}; target <= 30 ms: {'PASS' if list_med <= 30 else 'FAIL'})")
        print(f"[{label}] baseline GET /live: median {live_med:.3f} ms; list/live = {list_med / live_med:.1f}x")
        print(f"[{label}] RSS idle after start: {idle_rss:.1f} MB (target <= 30 MB: {'PASS' if idle_rss <= 30 else 'FAIL'}); "
              f"after the runs: {loaded_rss:.1f} MB")
        print(f"[{label}] list ms / 30 ms target = {list_med / 30:.2f}; idle RSS / 30 MB target = {idle_rss / 30:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    subprocess.run(["cargo", "build", "--release", "-p", "lifecycle"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="rt-bench-")
    try:
        db_path = os.path.join(tmp, "bench.db")

        def seed_sqlite():
            sql = "\n".join(s.replace("E'", "'").replace("\\n", "\n") for s in seed_sql())
            subprocess.run(["sqlite3", db_path], input="BEGIN;\n" + sql + "\nCOMMIT;", text=True, check=True)

        run("sqlite", f"sqlite://{db_path}", seed_sqlite)

        name = f"rt_bench_{uuid.uuid4().hex[:12]}"
        if subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {name}"], capture_output=True).returncode != 0:
            print("[postgres] skipped: Postgres unreachable (run scripts/test-services.sh)")
            return
        pg_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            def seed_pg():
                subprocess.run(["psql", pg_url, "-q", "-v", "ON_ERROR_STOP=1"], input="BEGIN;\n" + "\n".join(seed_sql()) + "\nCOMMIT;",
                               text=True, check=True, stdout=subprocess.DEVNULL)
            run("postgres", pg_url, seed_pg)
        finally:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
