#!/bin/sh
# First start: a cluster whose superuser `racetrack` has the password in POSTGRES_PASSWORD_FILE
# (waited for: the `secrets` init step writes it), and a database `racetrack`. Then Postgres on
# POSTGRES_LISTEN:POSTGRES_PORT (default 127.0.0.1:5432), password authentication only.
set -eu
file="${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE must be set}"
waited=0
until [ -s "$file" ]; do
  [ "$waited" -lt 120 ] || { echo "postgres-entrypoint: $file is missing" >&2; exit 1; }
  sleep 1; waited=$((waited + 1))
done
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" --username=racetrack --pwfile="$file" --auth=scram-sha-256 --encoding=UTF8 >/dev/null
  echo "CREATE DATABASE racetrack" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses="${POSTGRES_LISTEN:-127.0.0.1}" \
  -p "${POSTGRES_PORT:-5432}" -c unix_socket_directories=/tmp
