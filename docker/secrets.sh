#!/bin/sh
# The compose setup's init step (docker/compose.yaml, service `secrets`): makes each missing secret
# once, in SECRETS_DIR (a volume only the platform's containers mount). Files are 0640, owned by
# the services' uid/gid 10001 (Postgres reads its password through that group). Rotating one:
# delete its file and restart the platform (a new AUTH_KEY invalidates every token).
set -eu
dir="${SECRETS_DIR:-/run/racetrack/secrets}"
umask 027
random() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
make_secret() {  # name value
  if [ ! -s "$dir/$1" ]; then
    printf '%s' "$2" >"$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
    echo "racetrack-secrets: made $1"
  fi
}
make_secret auth-key "$(random 32)"
make_secret postgres-password "$(random 24)"
make_secret image-builder-token "$(random 32)"
make_secret dashboard-secret-key "$(random 48)"
make_secret admin-password "${ADMIN_PASSWORD:-$(random 12)}"
# Lifecycle's DATABASE_URL carries the password, so it is a secret of its own (the port may change
# between starts: it is rewritten every time).
printf 'postgres://racetrack:%s@%s:%s/racetrack' "$(cat "$dir/postgres-password")" \
  "${POSTGRES_HOST:-127.0.0.1}" "${POSTGRES_PORT:-5432}" >"$dir/database-url.tmp"
mv "$dir/database-url.tmp" "$dir/database-url"
