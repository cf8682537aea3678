#!/usr/bin/env bash
# Runs the whole platform on the embedded default: SQLite in .data/, the local Docker engine.
# Services that exist so far: lifecycle (REST API on :7102).
set -euo pipefail
cd "$(dirname "$0")/.."

dpkg -s libpq-dev >/dev/null 2>&1 && dpkg -s libsqlite3-dev >/dev/null 2>&1 || {
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libpq-dev libsqlite3-dev >/dev/null
}
mkdir -p .data
cargo build --release -p lifecycle
export DATABASE_URL="${DATABASE_URL:-sqlite://.data/racetrack.db}"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
./target/release/lifecycle serve &
pids+=($!)
echo "lifecycle: http://localhost:7102/api/v1/info (data in .data/; the admin password is printed once on first start)"
wait -n "${pids[@]}"
