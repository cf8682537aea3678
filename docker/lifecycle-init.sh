#!/bin/sh
# Lifecycle's start in the compose setup: migrates the database (waiting for Postgres), issues the
# internal tokens of PUB and the supervisor once (`lifecycle generate-auth`, stored as digests by
# Lifecycle; the plain tokens go to TOKENS_DIR for those containers), then serves.
set -eu
dir="${TOKENS_DIR:-/run/racetrack/secrets}"
tries=0
until RUST_LOG=error lifecycle migrate >/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then echo "lifecycle-init: the database did not answer" >&2; exit 1; fi
  sleep 1
done
umask 027
for service in pub lifecycle-supervisor; do
  if [ ! -s "$dir/$service.token" ]; then
    RUST_LOG=error lifecycle generate-auth "$service" | tail -n1 >"$dir/$service.token.tmp"
    if [ ! -s "$dir/$service.token.tmp" ]; then
      echo "lifecycle-init: lifecycle generate-auth $service printed no token" >&2
      exit 1
    fi
    mv "$dir/$service.token.tmp" "$dir/$service.token"
    echo "lifecycle-init: issued the internal token of $service"
  fi
done
exec lifecycle serve
