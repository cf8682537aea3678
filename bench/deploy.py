#!/usr/bin/env python3
"""Deploy benchmark (not a test): time from deploy request to "running" for the sample adder.

Starts image-builder and lifecycle (binaries from target/debug, or BENCH_PROFILE=release) against
the local Docker engine and registry (make test-services), then measures:
  cold      first deploy of the adder, python3 base image removed first
  warm      deploy of a new version with unchanged code (Docker layer cache)
  reprovision  the same image provisioned again (no build)
and, as the floor measured in the same run, `docker run` of the built image until /ready answers.
Targets (issue 3): warm <= 10 s, redeploy of an unchanged image <= 3 s.
"""
import os
import subprocess
import tempfile
import time
import uuid

from common import free_port, request_json as http, tar_context, wait_ok

# The image-builder refuses gRPC calls without its internal token; one per run.
IB_TOKEN = f"bench-ib-{uuid.uuid4().hex}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.environ.get("BENCH_PROFILE", "debug")
TARGET = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), PROFILE)
ADMIN_PASSWORD = "Bench-Admin-Passw0rd"










def main():
    tmp = tempfile.mkdtemp(prefix="rt-deploy-bench-")
    ib_grpc, ib_http, lc = free_port(), free_port(), free_port()
    env = dict(os.environ, RUST_LOG="warn")
    builder = subprocess.Popen([os.path.join(TARGET, "image-builder")], env=dict(
        env, GRPC_ADDR=f"127.0.0.1:{ib_grpc}", HTTP_ADDR=f"127.0.0.1:{ib_http}", JOB_TYPES_DIR=os.path.join(ROOT, "job-types"), IMAGE_BUILDER_TOKEN=IB_TOKEN,
        BUILD_LOGS_DIR=os.path.join(tmp, "logs"), WORKSPACES_DIR=os.path.join(tmp, "ws"),
        PYTHON_BASE_IMAGE="racetrack/python-base:bookworm", EXTRA_CA_CERTS="/etc/ssl/certs/ca-certificates.crt"),
        stdout=subprocess.DEVNULL)
    lifecycle = subprocess.Popen([os.path.join(TARGET, "lifecycle"), "serve"], env=dict(
        env, HTTP_ADDR=f"127.0.0.1:{lc}", DATABASE_URL=f"sqlite://{tmp}/rt.db", AUTH_KEY="bench",
        ADMIN_PASSWORD=ADMIN_PASSWORD, IMAGE_BUILDER_URL=f"http://127.0.0.1:{ib_grpc}", IMAGE_BUILDER_TOKEN=IB_TOKEN, DOCKER_NETWORK="racetrack-bench"),
        stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{lc}"
    name = f"benchadder-{uuid.uuid4().hex[:6]}"
    try:
        wait_ok(f"{base}/ready")
        wait_ok(f"http://127.0.0.1:{ib_http}/live")
        _, login = http("POST", f"{base}/api/v1/users/login", {"username": "admin", "password": ADMIN_PASSWORD})
        token = login["token"]
        sample = os.path.join(ROOT, "sample/python-class")
        ctx = tar_context({e: os.path.join(sample, e) for e in os.listdir(sample)})
        # The yaml module is not needed: lifecycle accepts the manifest as JSON built from the sample.
        def deploy(version):
            m = {"name": name, "version": version, "owner_email": "sample@example.com", "lang": "python3:latest",
                 "git": {"remote": "https://github.com/TheRacetrack/racetrack", "directory": "sample/python-class"},
                 "python": {"entrypoint_path": "adder.py", "entrypoint_class": "AdderModel"}}
            start = time.perf_counter()
            status, body = http("POST", f"{base}/api/v1/deploy", {"manifest": m, "build_context": ctx}, token)
            assert status == 200, body
            while True:
                _, d = http("GET", f"{base}/api/v1/deploy/{body['id']}", None, token)
                if d["status"] != "in_progress":
                    break
                time.sleep(0.1)
            assert d["status"] == "done", d
            return time.perf_counter() - start, d
        for img in subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split():
            if "/fatman-base/python3:" in img:
                subprocess.run(["docker", "rmi", "-f", img], capture_output=True)
        cold, _ = deploy("0.0.1")
        warm, d = deploy("0.0.2")
        start = time.perf_counter()
        status, body = http("POST", f"{base}/api/v1/fatman/{name}/0.0.2/reprovision", None, token)
        assert status == 200, body
        reprovision = time.perf_counter() - start
        image = d["image_name"]
        start = time.perf_counter()
        cid = subprocess.run(["docker", "run", "-d", "-p", "127.0.0.1::7000", image], capture_output=True, text=True, check=True).stdout.strip()
        port = subprocess.run(["docker", "port", cid, "7000"], capture_output=True, text=True).stdout.split(":")[-1].strip()
        wait_ok(f"http://127.0.0.1:{port}/ready")
        floor = time.perf_counter() - start
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        print(f"deploy adder cold (base image + fatman image): {cold:.1f} s")
        print(f"deploy adder warm (new version, unchanged code): {warm:.1f} s (target <= 10 s: {'PASS' if warm <= 10 else 'FAIL'})")
        print(f"reprovision unchanged image: {reprovision:.1f} s (target <= 3 s: {'PASS' if reprovision <= 3 else 'FAIL'})")
        print(f"baseline docker run + /ready of the same image: {floor:.2f} s; reprovision/baseline = {reprovision / floor:.1f}x; warm/baseline = {warm / floor:.1f}x")
        for v in ("0.0.1", "0.0.2"):
            http("DELETE", f"{base}/api/v1/fatman/{name}/{v}", None, token)
    finally:
        lifecycle.terminate()
        builder.terminate()
        lifecycle.wait()
        builder.wait()


if __name__ == "__main__":
    main()
