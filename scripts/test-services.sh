#!/usr/bin/env bash
# Installs (Debian packages) and starts what the test suite needs: Postgres with a `racetrack`
# role, Redis, the C libraries diesel links, and chromium with its WebDriver for the browser
# tests. Idempotent: safe to run before every test run.
set -euo pipefail

PG_USER=racetrack
PG_PASSWORD=racetrack
SUDO=""
AS_POSTGRES="runuser -u postgres --"
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; AS_POSTGRES="sudo -u postgres"; fi

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
dpkg -s libpq-dev >/dev/null 2>&1 || need+=(libpq-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
# Tiny test images (FROM scratch + busybox) for the Docker tests; nothing can be pulled here.
[ -x /bin/busybox ] || need+=(busybox-static)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Self-signed certificates for the TLS listener tests.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The dashboard's browser tests: headless chromium driven through chromium-driver.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# kubectl (kustomize built in): the manifests' drift test renders kustomize/dev; the compose test
# runs the platform with docker-compose.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Postgres: start the first cluster (create one if the package left none).
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  $SUDO pg_createcluster "$version" main >/dev/null
fi
read -r version cluster port status _ < <(pg_lsclusters -h | head -n1)
if [ "$status" != "online" ]; then
  $SUDO pg_ctlcluster "$version" "$cluster" start
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port"
$AS_POSTGRES psql -q -p "$port" -v ON_ERROR_STOP=1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL

# Redis on loopback only.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 1 20); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.25
  done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null

echo "test services ready: postgres://$PG_USER:***@127.0.0.1:$port/postgres, redis://127.0.0.1:6379"
