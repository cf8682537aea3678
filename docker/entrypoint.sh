#!/bin/sh
# Entry point of every Racetrack image: loads secrets given as files, then runs the command.
# For every variable NAME_FROM_FILE=path, NAME is set to the file's content and NAME_FROM_FILE is
# unset, so secrets stay out of `docker inspect` and compose files. A file another container is
# still writing (the `secrets` init step, Lifecycle's token step) is waited for, at most
# SECRETS_WAIT_SECS (default 120) seconds.
set -eu
wait_secs="${SECRETS_WAIT_SECS:-120}"
for var in $(env | sed -n 's/^\([A-Za-z0-9_]*\)_FROM_FILE=.*/\1/p'); do
  file="$(printenv "${var}_FROM_FILE")"
  waited=0
  while [ ! -s "$file" ]; do
    if [ "$waited" -ge "$wait_secs" ]; then
      echo "racetrack-entrypoint: $file (${var}_FROM_FILE) is missing or empty after ${wait_secs}s" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  value="$(cat "$file")"
  export "$var=$value"
  unset "${var}_FROM_FILE"
done
exec "$@"
