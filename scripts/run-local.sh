#!/usr/bin/env bash
# Runs the whole platform on the embedded default: SQLite in .data/, the local Docker engine, a
# local registry on 127.0.0.1:5000 and base images made by debootstrap (nothing is pulled).
# Services so far: lifecycle (REST API :7102, internal gRPC :7112), image-builder (gRPC :7101,
# health :7111), the lifecycle supervisor (health/metrics :7106), PUB (:7105), the dashboard
# (http://localhost:7103/dashboard/) and Redis (:6379, change events from lifecycle to PUB and
# the dashboard).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for pkg in libpq-dev libsqlite3-dev git curl redis-server; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/registry.sh
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
  || redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
bash scripts/base-images.sh

mkdir -p .data/build-logs .data/workspaces
# Builds run on their own bridge network, firewalled from this host's services (needs root/sudo).
BUILD_NETWORK=racetrack-build bash scripts/build-network.sh
# The internal token Lifecycle presents to the image-builder's gRPC API: made once, kept beside the
# auth key, readable by this user only. Rotate: delete the file and restart.
token_file=.data/image-builder.token
if [ ! -s "$token_file" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
fi
chmod 600 "$token_file"
IMAGE_BUILDER_TOKEN="$(cat "$token_file")"
# The dashboard's session key: made once, readable by this user only (a new one signs everyone out).
secret_file=.data/dashboard.secret
if [ ! -s "$secret_file" ]; then
  (umask 077; head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file")
fi
chmod 600 "$secret_file"
cargo build --release -p lifecycle -p image-builder -p lifecycle-supervisor -p pub -p dashboard
bin="${CARGO_TARGET_DIR:-target}/release"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
extra_ca=""
[ -f /etc/ssl/certs/ca-certificates.crt ] && extra_ca=/etc/ssl/certs/ca-certificates.crt
GRPC_ADDR=127.0.0.1:7101 HTTP_ADDR=127.0.0.1:7111 IMAGE_BUILDER_TOKEN="$IMAGE_BUILDER_TOKEN" BUILD_NETWORK_MODE=racetrack-build \
  JOB_TYPES_DIR="$PWD/job-types" BUILD_LOGS_DIR="$PWD/.data/build-logs" WORKSPACES_DIR="$PWD/.data/workspaces" \
  PYTHON_BASE_IMAGE=racetrack/python-base:bookworm BASE_IMAGE=racetrack/debian-base:bookworm \
  EXTRA_CA_CERTS="$extra_ca" "$bin/image-builder" &
pids+=($!)
export DATABASE_URL="${DATABASE_URL:-sqlite://.data/racetrack.db}"
IMAGE_BUILDER_URL=http://127.0.0.1:7101 IMAGE_BUILDER_TOKEN="$IMAGE_BUILDER_TOKEN" GRPC_ADDR=127.0.0.1:7112 REDIS_URL=redis://127.0.0.1:6379 \
  "$bin/lifecycle" serve &
pids+=($!)
# PUB and the supervisor reach the registry only through lifecycle's internal gRPC API, with their
# own stored internal tokens (only their service's scopes; each start issues new ones: list and
# revoke old ones with GET /api/v1/auth/subjects/{id}/tokens, DELETE /api/v1/auth/tokens/{id}).
# generate-auth writes to the database, so it runs once lifecycle has migrated a fresh one.
for _ in $(seq 150); do curl -sf http://127.0.0.1:7102/ready >/dev/null 2>&1 && break; sleep 0.2; done
LIFECYCLE_AUTH_TOKEN="$("$bin/lifecycle" generate-auth lifecycle-supervisor | tail -n1)" \
  LIFECYCLE_GRPC_URL=http://127.0.0.1:7112 REDIS_URL=redis://127.0.0.1:6379 HTTP_ADDR=127.0.0.1:7106 \
  "$bin/lifecycle-supervisor" &
pids+=($!)
# PUB listens on all interfaces: fatmen call it from their containers (host.docker.internal:7105).
LIFECYCLE_AUTH_TOKEN="$("$bin/lifecycle" generate-auth pub | tail -n1)" \
  LIFECYCLE_GRPC_URL=http://127.0.0.1:7112 REDIS_URL=redis://127.0.0.1:6379 PUB_ADDR=0.0.0.0:7105 \
  "$bin/pub" &
pids+=($!)
# The dashboard holds no token of its own: it calls lifecycle's gRPC API with each user's token.
SECRET_KEY="$(cat "$secret_file")" LIFECYCLE_GRPC_URL=http://127.0.0.1:7112 REDIS_URL=redis://127.0.0.1:6379 \
  DASHBOARD_ADDR=127.0.0.1:7103 EXTERNAL_PUB_URL=http://localhost:7105/pub "$bin/dashboard" &
pids+=($!)
echo "dashboard: http://localhost:7103/dashboard/ (sign in as admin)"
echo "lifecycle: http://localhost:7102/api/v1/info   image-builder: http://localhost:7111/health   supervisor: http://localhost:7106/health   pub: http://localhost:7105/pub/health"
echo "(data in .data/; the admin password is printed once on first start)"
wait -n "${pids[@]}"
