#!/usr/bin/env python3
"""Lifecycle supervisor benchmark (not a test): one full check of 200 fatmen, and idle RSS.

Starts 200 tiny fatman containers (static busybox httpd answering /live and /ready, labelled like
managed fatmen) on a private Docker network, registers them in the fresh SQLite database of a real
Lifecycle and runs the release supervisor against that Lifecycle (the supervisor reaches the
registry through Lifecycle's `Supervision` gRPC API only). A check is what one sync does: list the
containers, ask Lifecycle for the registry, GET /live, /ready and /metrics of every fatman
(concurrently), report what changed. Its
duration comes from the supervisor's /health (`last_sync.duration_ms`). Baseline, measured in the
same run: the same 200 x (/live, /ready, /metrics) requests made one after another from Python.
Targets (issue 5): one check of 200 fatmen <= 2 s, idle RSS <= 20 MB.

Then event-driven healing (issue 11), with the periodic sync and reconcile far away (60 s, 600 s):
one fatman container is removed (`docker rm -f`) and another killed (`docker kill`); printed are
the seconds until the registry shows it `lost` / `error` (target <= 2 s) and until it is `running`
again (target <= 15 s). Last, BENCH_STORM (20) fatmen are killed at once: printed are the seconds
until all run again and the most re-provisions in flight at once (bounded by HEAL_CONCURRENCY,
read from the overlap of Lifecycle's reprovision deployments). Lifecycle re-provisions for real
(from the bench image, recorded as each fatman's deployed image).

Needs Docker and busybox-static (`scripts/test-services.sh` installs it). Binaries:
target/release/lifecycle-supervisor and lifecycle (BENCH_PROFILE=debug for target/debug). BENCH_FATMEN,
BENCH_SYNCS and BENCH_CONCURRENCY (the supervisor's CHECK_CONCURRENCY, default 32) vary the run.
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from common import free_port, rss_mb
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PROFILE = os.environ.get("BENCH_PROFILE", "release")
BIN = os.path.join(TARGET, PROFILE, "lifecycle-supervisor")
LIFECYCLE = os.path.join(TARGET, PROFILE, "lifecycle")
AUTH_KEY = "bench-key-" + uuid.uuid4().hex
N = int(os.environ.get("BENCH_FATMEN", "200"))
SYNCS = int(os.environ.get("BENCH_SYNCS", "5"))
STORM = int(os.environ.get("BENCH_STORM", "20"))
IMAGE = "racetrack-bench-fatman:latest"
RUN_ID = uuid.uuid4().hex[:6]
NETWORK = f"racetrack-bench-{RUN_ID}"

START_SH = """echo '{"live":true}' > /www/live
exec /bin/busybox httpd -f -p 7000 -h /www
"""
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY start.sh /start.sh
COPY www/ /www/
CMD ["/bin/busybox", "sh", "/start.sh"]
"""


def sh(*args, check=True):
    out = subprocess.run(args, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def build_image(work):
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        sys.exit("busybox-static is needed (apt-get install busybox-static)")
    ctx = os.path.join(work, "image")
    os.makedirs(os.path.join(ctx, "www"))
    shutil.copy(busybox, os.path.join(ctx, "busybox"))
    with open(os.path.join(ctx, "start.sh"), "w") as f:
        f.write(START_SH)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(ctx, "www", "ready"), "w") as f:
        f.write('{"ready":true}\n')
    sh("docker", "build", "-q", "-t", IMAGE, ctx)


def container(i):
    return f"fatman-bench{RUN_ID}-{i:03d}-v-1-0-0"


def start_container(i):
    return sh("docker", "run", "-d", "--name", container(i), "--network", NETWORK,
       "-p", "127.0.0.1::7000", "--memory", "16m",
       "--label", "racetrack.managed=true",
       "--label", f"racetrack.fatman.name=bench{RUN_ID}-{i:03d}",
       "--label", "racetrack.fatman.version=1.0.0", IMAGE)




def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())




def start_lifecycle(db_url):
    """A real Lifecycle on `db_url` (migrates it), deploying on the bench network from local
    images; returns (process, gRPC URL, the supervisor's stored token)."""
    http, grpc = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_ADDR": f"127.0.0.1:{http}",
        "GRPC_ADDR": f"127.0.0.1:{grpc}",
        "DATABASE_URL": db_url,
        "AUTH_KEY": AUTH_KEY,
        "ADMIN_PASSWORD": "Bench-Adm1n-" + uuid.uuid4().hex[:8],
        "DOCKER_NETWORK": NETWORK,
        "DOCKER_PULL": "false",
        "FATMAN_READY_TIMEOUT": "30",
        "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
    }
    log = open(os.environ["BENCH_LOG"] + ".lifecycle", "w") if os.environ.get("BENCH_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen([LIFECYCLE, "serve"], env=env, stdout=log, stderr=log)
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"lifecycle exited early with {proc.returncode}")
        try:
            get_json(f"http://127.0.0.1:{http}/ready", 1)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("lifecycle did not become ready")
    token = subprocess.run([LIFECYCLE, "generate-auth", "lifecycle-supervisor"], capture_output=True, text=True,
                           env={"PATH": env["PATH"], "DATABASE_URL": db_url, "AUTH_KEY": AUTH_KEY, "RUST_LOG": "error"})
    if token.returncode != 0:
        sys.exit(f"generate-auth failed: {token.stderr.strip()}")
    return proc, f"http://127.0.0.1:{grpc}", token.stdout.strip().splitlines()[-1].strip()


def start_supervisor(lifecycle, port, extra):
    _, grpc_url, token = lifecycle
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_ADDR": f"127.0.0.1:{port}",
        "LIFECYCLE_GRPC_URL": grpc_url,
        "LIFECYCLE_AUTH_TOKEN": token,
        "DOCKER_NETWORK": NETWORK,
        "DOCKER_NETWORK_ONLY": "true",
        "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
    }
    env.update(extra)
    log = open(os.environ["BENCH_LOG"] + f".{port}", "w") if os.environ.get("BENCH_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen([BIN], env=env, stdout=log, stderr=log)
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"supervisor exited early with {proc.returncode}")
        try:
            if get_json(f"http://127.0.0.1:{port}/ready", 1)["ready"]:
                return proc
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("supervisor did not become ready")


def manifest(name):
    return (f"name: {name}\nowner_email: bench@example.com\nversion: 1.0.0\nlang: python3:latest\n"
            "git:\n  remote: https://example.com/bench.git\n")


def register(db_path):
    """The fatmen as a deploy leaves them: a registry row and a finished deployment on the docker
    target whose image (the bench image) Lifecycle re-provisions from."""
    conn = sqlite3.connect(db_path, timeout=10)
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for i in range(N):
        name = f"bench{RUN_ID}-{i:03d}"
        fam = str(uuid.uuid4())
        conn.execute("INSERT INTO registry_fatmanfamily (id, name) VALUES (?, ?)", (fam, name))
        conn.execute(
            "INSERT INTO registry_fatman (id, family_id, name, version, status, create_time, update_time,"
            " manifest, internal_name, image_tag, deployed_by, infrastructure_target)"
            " VALUES (?, ?, ?, '1.0.0', 'created', ?, ?, ?, NULL, 'bench', 'bench', 'docker')",
            (str(uuid.uuid4()), fam, name, now, now, manifest(name)))
        conn.execute(
            "INSERT INTO registry_deployment (id, status, create_time, update_time, manifest, fatman_name,"
            " fatman_version, deployed_by, image_name, infrastructure_target)"
            " VALUES (?, 'done', ?, ?, ?, ?, '1.0.0', 'bench', ?, 'docker')",
            (str(uuid.uuid4()), now, now, manifest(name), name, IMAGE))
    conn.commit()
    conn.close()


def published(name):
    out = sh("docker", "port", name, "7000/tcp")
    return out.splitlines()[0].strip() if out else ""


def reprovisions(db_path, since):
    """Lifecycle's reprovision deployments (by `racetrack`) created after `since` (SQLite time
    text): (count, most in progress at once)."""
    conn = sqlite3.connect(db_path, timeout=10)
    rows = conn.execute("SELECT create_time, update_time, status FROM registry_deployment"
                        " WHERE deployed_by='racetrack' AND create_time > ?", (since,)).fetchall()
    conn.close()
    edges = sorted([(c, 1) for c, _, _ in rows] + [(u, -1) for _, u, s in rows if s != "in_progress"])
    now, most = 0, 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return len(rows), most


def status_of(db_path, name):
    conn = sqlite3.connect(db_path, timeout=10)
    row = conn.execute("SELECT status, error FROM registry_fatman WHERE name=?", (name,)).fetchone()
    conn.close()
    return row


def wait_status(db_path, name, wanted, limit, start=None):
    """Seconds from `start` (default: now) until `name` has status `wanted` (polled every 20 ms),
    or None after `limit` s."""
    start = time.perf_counter() if start is None else start
    while time.perf_counter() - start < limit:
        if status_of(db_path, name)[0] == wanted:
            return time.perf_counter() - start
        time.sleep(0.02)
    return None


def heal_figures(db_path, lifecycle):
    """(removed→lost, lost→running, killed→error, error→running) seconds (None = not within 30 s),
    then a storm: STORM fatmen killed at once → (seconds until all run again, most re-provisions
    at once, re-provisions)."""
    port = free_port()
    sup = start_supervisor(lifecycle, port, {
        "SYNC_INTERVAL_SECS": "60",
        "RECONCILE_INTERVAL_SECS": "600",
    })
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            h = get_json(f"http://127.0.0.1:{port}/health")
            if h["syncs_completed"] >= 1:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the event stream is opened beside the first sync
        figures = []
        for i, action in ((0, "rm"), (1, "kill")):
            name = f"bench{RUN_ID}-{i:03d}"
            bad = "lost" if action == "rm" else "error"
            # From before the command: the engine's event can precede the CLI's return.
            t0 = time.perf_counter()
            if action == "rm":
                sh("docker", "rm", "-f", container(i))
            else:
                sh("docker", "kill", container(i))
            down = wait_status(db_path, name, bad, 30, t0)
            up = wait_status(db_path, name, "running", 30) if down is not None else None
            figures += [down, up]
        # The storm: many die at once; restarts are bounded by HEAL_CONCURRENCY (default 4).
        storm = list(range(2, 2 + min(STORM, N - 2)))
        before = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: sh("docker", "kill", container(i)), storm))
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            conn = sqlite3.connect(db_path, timeout=10)
            up = conn.execute("SELECT count(*) FROM registry_fatman WHERE status='running' AND name IN (%s)"
                              % ",".join("?" * len(storm)),
                              [f"bench{RUN_ID}-{i:03d}" for i in storm]).fetchone()[0]
            conn.close()
            if up == len(storm) and reprovisions(db_path, before)[0] >= len(storm):
                break
            time.sleep(0.05)
        storm_up = time.perf_counter() - t0 if up == len(storm) else None
        calls, most = reprovisions(db_path, before)
        return figures + [len(storm), storm_up, most, calls]
    finally:
        sup.terminate()
        sup.wait(10)


def sequential_baseline(addresses):
    start = time.perf_counter()
    for address in addresses:
        for path in ("/live", "/ready", "/metrics"):
            try:
                with urllib.request.urlopen(f"http://{address}{path}", timeout=3) as r:
                    r.read()
            except urllib.error.HTTPError:
                pass  # busybox has no /metrics: 404, as the supervisor sees too
    return time.perf_counter() - start


def main():
    for binary in (BIN, LIFECYCLE):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: cargo build --release -p lifecycle-supervisor -p lifecycle")
    if subprocess.run(["docker", "version"], capture_output=True).returncode != 0:
        sys.exit("the Docker engine is needed")
    work = tempfile.mkdtemp(prefix="rt-bench-supervisor-")
    procs = []
    try:
        build_image(work)
        # As Lifecycle requires of its fatman network: no traffic between containers.
        sh("docker", "network", "create", "-o", "com.docker.network.bridge.enable_icc=false", NETWORK)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(start_container, range(N)))
        print(f"started {N} fatman containers in {time.perf_counter() - t0:.1f} s")

        db_path = os.path.join(work, "racetrack.db")
        db_url = f"sqlite://{db_path}"
        lifecycle = start_lifecycle(db_url)
        procs.append(lifecycle[0])
        # 1. Idle, nothing to watch: only serves probes (and keeps its lease).
        port = free_port()
        idle = start_supervisor(lifecycle, port, {"INFRASTRUCTURE_TARGET": "none"})
        procs.append(idle)
        time.sleep(2)
        idle_empty = rss_mb(idle.pid)
        idle.terminate()
        idle.wait(10)

        # 2. 200 registered fatmen, synced every 3 s.
        register(db_path)
        port = free_port()
        concurrency = os.environ.get("BENCH_CONCURRENCY", "32")
        sup = start_supervisor(lifecycle, port, {"SYNC_INTERVAL_SECS": "3", "CHECK_CONCURRENCY": concurrency})
        procs.append(sup)
        durations, seen, first = [], 0, None
        deadline = time.time() + 30 + SYNCS * 5
        while len(durations) < SYNCS and time.time() < deadline:
            h = get_json(f"http://127.0.0.1:{port}/health")
            if h["syncs_completed"] > seen and h["last_sync"]:
                seen = h["syncs_completed"]
                last = h["last_sync"]
                if first is None:
                    first = last
                durations.append(last["duration_ms"] / 1000)
            time.sleep(0.1)
        if not durations:
            sys.exit(f"no sync finished: {h}")
        if first["health_checked"] != N or first["counts"].get("running") != N:
            sys.exit(f"expected {N} running fatmen, got {first}")
        time.sleep(1.0)  # between syncs: idle
        idle_200 = rss_mb(sup.pid)
        sup.terminate()
        sup.wait(10)

        conn = sqlite3.connect(db_path)
        addresses = [r[0] for r in conn.execute(
            "SELECT internal_name FROM registry_fatman WHERE name LIKE ?", (f"bench{RUN_ID}-%",))]
        checked = conn.execute(
            "SELECT count(*) FROM registry_fatman WHERE last_check_time IS NOT NULL").fetchone()[0]
        conn.close()
        baseline = sequential_baseline(addresses)
        lost, lost_up, error, error_up, storm_n, storm_up, storm_max, storm_calls = heal_figures(db_path, lifecycle)

        steady = durations[1:] or durations
        check = statistics.median(steady)
        print(f"fatmen registered and running:            {N} (last_check_time set on {checked})")
        print(f"first check (writes {first['status_changes']} status changes):  {durations[0]:.3f} s")
        print(f"one check of {N} fatmen, median of {len(steady)}:     {check:.3f} s   (target <= 2 s)")
        print(f"baseline: sequential /live+/ready+/metrics: {baseline:.3f} s")
        print(f"ratio check / sequential baseline:         {check / baseline:.2f}x")
        print(f"idle RSS, no fatmen:                       {idle_empty:.1f} MB   (target <= 20 MB)")
        print(f"idle RSS between checks of {N} fatmen:     {idle_200:.1f} MB   (target <= 20 MB)")
        fmt = lambda v: "none within 30 s" if v is None else f"{v:.3f} s"
        print(f"docker rm -f: removed → lost:             {fmt(lost)}   (target <= 2 s; before issue 11: 59 s)")
        print(f"              lost → running:             {fmt(lost_up)}   (target <= 15 s; before: 362 s)")
        print(f"docker kill:  killed → error:             {fmt(error)}   (target <= 2 s)")
        print(f"              error → running:            {fmt(error_up)}   (target <= 15 s)")
        print(f"{storm_n} killed at once: all running again:  {fmt(storm_up)}   ({storm_calls} re-provisions,"
              f" at most {storm_max} at once; HEAL_CONCURRENCY 4)")
        heal_ok = storm_up is not None and storm_max <= 4 and all(v is not None for v in (lost, lost_up, error, error_up)) \
            and lost <= 2.0 and error <= 2.0 and lost_up <= 15.0 and error_up <= 15.0
        ok = check <= 2.0 and max(idle_empty, idle_200) <= 20.0 and heal_ok
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        names = [container(i) for i in range(N)]
        for chunk in range(0, len(names), 50):
            subprocess.run(["docker", "rm", "-f", *names[chunk:chunk + 50]], capture_output=True)
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
