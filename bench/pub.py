#!/usr/bin/env python3
"""PUB benchmark (not a test): requests/s and latency of one fatman called directly, through PUB
(warm auth cache) and through nginx `proxy_pass` (a peer baseline that checks no permissions),
all measured in the same run with wrk on loopback.

Setup: image-builder + lifecycle (debug binaries) deploy a minimal Rust fatman
(`services/pub/examples/minimal_fatman.rs`, release) as a docker-http fatman, so the upstream is
not the bottleneck; an ESC allowed to call it provides the caller token; PUB runs from
target/release with WORKERS=N and nginx with worker_processes N (N = BENCH_WORKERS, default the
CPU count). Needs the Docker engine, the local registry and base images (make test-services,
scripts/registry.sh, scripts/base-images.sh), and wrk + nginx (installed by this script if missing).

Throughput: median of BENCH_ROUNDS (5) interleaved wrk -t1 -c32 runs of BENCH_DURATION (5 s) per
target. Latency: wrk -t1 -c1 for 5 s (no queueing), p50/p99.
Targets (issue 4): pub/nginx >= 1.0 (stretch 1.5), pub/direct >= 0.5, added p50 <= 0.5 ms,
added p99 <= 2 ms, no Lifecycle call per request on a warm cache.
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from common import free_port, request as http, request_json as jhttp, tar_context as context, wait_ok

# The image-builder refuses gRPC calls without its internal token; one per run.
IB_TOKEN = f"bench-ib-{uuid.uuid4().hex}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
ADMIN_PASSWORD = "Bench-Admin-Passw0rd"
WORKERS = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))
DURATION = os.environ.get("BENCH_DURATION", "5s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))










def ensure_tools():
    missing = [p for p, cmd in (("wrk", "wrk"), ("nginx-light", "nginx")) if not shutil.which(cmd)]
    if missing:
        print(f"installing {' '.join(missing)} (Debian packages)", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def build():
    subprocess.run(["cargo", "build", "-q", "--bin", "lifecycle", "--bin", "image-builder"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "pub", "--bin", "pub", "--example", "minimal_fatman"],
                   cwd=ROOT, check=True)




UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, token, connections, duration):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"X-Racetrack-Auth: {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} failed responses\n{out}")
    return rps, lat["50"], lat["99"]


def lifecycle_calls(pub_base):
    _, body = http("GET", f"{pub_base}/metrics")
    return sum(float(v) for v in re.findall(r"^pub_lifecycle_calls\{[^}]*\} ([\d.e+]+)$", body.decode(), re.M))


def main():
    # A SIGTERM (or SIGINT to a background run, which ignores it) still cleans up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
    ensure_tools()
    build()
    tmp = tempfile.mkdtemp(prefix="rt-pub-bench-")
    ib_grpc, ib_http, lc, lc_grpc, pub_port, nginx_port = (free_port() for _ in range(6))
    env = dict(os.environ, RUST_LOG="warn")
    debug, release = os.path.join(TARGET_DIR, "debug"), os.path.join(TARGET_DIR, "release")
    procs, undo = [], []
    try:
        procs.append(subprocess.Popen([os.path.join(debug, "image-builder")], env=dict(
            env, GRPC_ADDR=f"127.0.0.1:{ib_grpc}", HTTP_ADDR=f"127.0.0.1:{ib_http}", JOB_TYPES_DIR=os.path.join(ROOT, "job-types"), IMAGE_BUILDER_TOKEN=IB_TOKEN,
            BUILD_LOGS_DIR=os.path.join(tmp, "logs"), WORKSPACES_DIR=os.path.join(tmp, "ws"),
            BASE_IMAGE="racetrack/debian-base:bookworm", PYTHON_BASE_IMAGE="racetrack/python-base:bookworm"),
            stdout=subprocess.DEVNULL))
        auth_key = f"bench-{uuid.uuid4()}"
        lc_env = dict(env, HTTP_ADDR=f"127.0.0.1:{lc}", GRPC_ADDR=f"127.0.0.1:{lc_grpc}", DATABASE_URL=f"sqlite://{tmp}/rt.db",
                      AUTH_KEY=auth_key, ADMIN_PASSWORD=ADMIN_PASSWORD, IMAGE_BUILDER_URL=f"http://127.0.0.1:{ib_grpc}", IMAGE_BUILDER_TOKEN=IB_TOKEN,
                      DOCKER_NETWORK="racetrack-bench")
        procs.append(subprocess.Popen([os.path.join(debug, "lifecycle"), "serve"], env=lc_env, stdout=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{lc}"
        wait_ok(f"{base}/ready")
        wait_ok(f"http://127.0.0.1:{ib_http}/live")
        _, login = jhttp("POST", f"{base}/api/v1/users/login", {"username": "admin", "password": ADMIN_PASSWORD})
        admin = login["token"]

        # The minimal fatman, deployed through the platform like any docker-http fatman.
        name = f"minimal-{uuid.uuid4().hex[:6]}"
        dockerfile = os.path.join(tmp, "Dockerfile")
        with open(dockerfile, "w") as f:
            f.write("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY minimal_fatman /usr/local/bin/minimal-fatman\n"
                    "EXPOSE 7000\nCMD [\"/usr/local/bin/minimal-fatman\"]\n")
        ctx = context({"Dockerfile": dockerfile, "minimal_fatman": os.path.join(release, "examples", "minimal_fatman")})
        manifest = {"name": name, "version": "1.0.0", "owner_email": "bench@example.com", "lang": "docker-http:latest",
                    "git": {"remote": "https://github.com/TheRacetrack/racetrack"}, "docker": {"dockerfile_path": "Dockerfile"}}
        status, d = jhttp("POST", f"{base}/api/v1/deploy", {"manifest": manifest, "build_context": ctx}, admin)
        assert status == 200, d
        deployment = d["id"]
        undo.append(lambda: jhttp("DELETE", f"{base}/api/v1/fatman/{name}/1.0.0", None, admin))
        while True:
            _, d = jhttp("GET", f"{base}/api/v1/deploy/{deployment}", None, admin)
            if d["status"] != "in_progress":
                break
            time.sleep(0.2)
        assert d["status"] == "done", d
        _, fatmen = jhttp("GET", f"{base}/api/v1/fatman", None, admin)
        internal = next(f["internal_name"] for f in fatmen if f["name"] == name)

        # A consumer allowed to call it.
        _, esc = jhttp("POST", f"{base}/api/v1/escs", {"name": "bench"}, admin)
        jhttp("POST", f"{base}/api/v1/auth/allow/esc/{esc['id']}/fatman/{name}/scope/call_fatman", None, admin)
        _, tok = jhttp("GET", f"{base}/api/v1/auth/token/esc/{esc['id']}", None, admin)
        token = tok["token"]

        pub_token = subprocess.run([os.path.join(debug, "lifecycle"), "generate-auth", "pub"], env=lc_env,
                                   capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        procs.append(subprocess.Popen([os.path.join(release, "pub")], env=dict(
            os.environ, PUB_ADDR=f"127.0.0.1:{pub_port}", WORKERS=str(WORKERS), LIFECYCLE_GRPC_URL=f"http://127.0.0.1:{lc_grpc}",
            LIFECYCLE_AUTH_TOKEN=pub_token, AUTH_CACHE_TTL="3600"), stdout=subprocess.DEVNULL))
        pub_base = f"http://127.0.0.1:{pub_port}/pub"
        wait_ok(f"{pub_base}/live")

        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes {WORKERS};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  upstream fatman {{ server {internal}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{nginx_port};
    location / {{
      proxy_pass http://fatman;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
        procs.append(subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        wait_ok(f"http://127.0.0.1:{nginx_port}/pub/fatman/{name}/latest/ready")

        path = f"/pub/fatman/{name}/latest/api/v1/perform"
        if os.environ.get("BENCH_HOLD"):
            # For profiling by hand: everything stays up until interrupted.
            print(f"direct http://{internal}{path}\npub http://127.0.0.1:{pub_port}{path} (pid {procs[2].pid})\n"
                  f"nginx http://127.0.0.1:{nginx_port}{path} (pid {procs[3].pid})\ntoken {token}", flush=True)
            time.sleep(3600)
        targets = [("direct", f"http://{internal}{path}", None),
                   ("pub", f"http://127.0.0.1:{pub_port}{path}", token),
                   ("nginx", f"http://127.0.0.1:{nginx_port}{path}", None)]
        status, body = http("GET", targets[1][1], token=token)
        assert status == 200 and body == b"42", (status, body)
        status, _ = http("GET", targets[1][1], token="not-a-token")
        assert status == 401, status
        for _, url, tok_ in targets:  # warm-up: connections, caches, CPU frequency
            wrk(url, tok_, 32, "2s")
        calls_before = lifecycle_calls(pub_base)
        # Interleaved rounds, medians: the three share two cores with wrk, Docker's proxy and the
        # fatman, and single runs swing by 10-15 %.
        rounds = {label: [] for label, _, _ in targets}
        for _ in range(ROUNDS):
            for label, url, tok_ in targets:
                rounds[label].append(wrk(url, tok_, 32, DURATION)[0])
        if os.environ.get("BENCH_PERF"):
            # Profile PUB under load: BENCH_PERF=1 prints where its CPU time goes.
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-o", f"{tmp}/perf.data",
                                     "-p", str(procs[2].pid), "--", "sleep", "4"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wrk(targets[1][1], token, 32, "5s")
            perf.wait()
            report = subprocess.run(["perf", "report", "-i", f"{tmp}/perf.data", "--stdio", "--no-children",
                                     "--percent-limit", "0.7", "--sort", "dso,symbol"],
                                    capture_output=True, text=True).stdout
            print("\n".join(line for line in report.splitlines() if line and not line.startswith("#")))
        results = {}
        for label, url, tok_ in targets:
            _, p50, p99 = wrk(url, tok_, 1, "5s")
            results[label] = (statistics.median(rounds[label]), p50, p99)
        calls_during = lifecycle_calls(pub_base) - calls_before

        print(f"workers: pub {WORKERS}, nginx {WORKERS}; throughput: median of {ROUNDS} interleaved wrk -t1 -c32 -d{DURATION} runs; latency: wrk -t1 -c1 -d5s")
        for label in ("direct", "pub", "nginx"):
            print(f"{label:6s}  runs: {' '.join(f'{r:.0f}' for r in rounds[label])}")
        for label in ("direct", "pub", "nginx"):
            rps, p50, p99 = results[label]
            print(f"{label:6s}  {rps:10.0f} req/s   p50 {p50:6.3f} ms   p99 {p99:6.3f} ms")
        d, p, n = results["direct"], results["pub"], results["nginx"]
        print(f"pub added latency: p50 {p[1] - d[1]:+.3f} ms (target <= 0.5), p99 {p[2] - d[2]:+.3f} ms (target <= 2)")
        print(f"nginx added latency: p50 {n[1] - d[1]:+.3f} ms, p99 {n[2] - d[2]:+.3f} ms")
        print(f"lifecycle calls by pub during the measured runs: {calls_during:.0f} (target 0)")
        print(f"pub/direct = {p[0] / d[0]:.2f} (target >= 0.5)")
        print(f"pub/nginx = {p[0] / n[0]:.2f}")
    finally:
        for step in undo:
            try:
                step()
            except Exception as e:  # best effort: the processes still stop below
                print(f"cleanup: {e}", file=sys.stderr)
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
