#!/usr/bin/env bash
# Runs a local Docker registry (Debian package `docker-registry`, distribution 2.8) on
# 127.0.0.1:5000 for fatman images, without systemd. Idempotent: does nothing when ours is up.
#
# Usage: scripts/registry.sh [start|stop|status] [--no-verify]
#   start (default)  install if missing, write the config, start in the background, wait for
#                    /v2/, then push a tiny image to prove that `docker push` works
#   stop             stop the registry started by this script (pidfile)
#   status           exit 0 when the registry answers
# Environment: REGISTRY_ADDR (default 127.0.0.1:5000; loopback only unless
#   REGISTRY_ALLOW_NON_LOOPBACK=1), REGISTRY_CONFIG (default
#   /etc/racetrack/registry.yml), REGISTRY_STORAGE (default /var/lib/racetrack/registry),
#   REGISTRY_LOG (default /var/log/racetrack/registry.log), REGISTRY_PIDFILE (default
#   /run/racetrack/registry.pid).
# Docker trusts registries on 127.0.0.0/8 without TLS by default, so
# `docker push 127.0.0.1:5000/NAME` works with no daemon configuration.
set -euo pipefail

ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
CONFIG="${REGISTRY_CONFIG:-/etc/racetrack/registry.yml}"
STORAGE="${REGISTRY_STORAGE:-/var/lib/racetrack/registry}"
LOGFILE="${REGISTRY_LOG:-/var/log/racetrack/registry.log}"
PIDFILE="${REGISTRY_PIDFILE:-/run/racetrack/registry.pid}"
URL="http://$ADDR"
# Pushes are not authenticated: the registry must stay on loopback, where only this host's Docker
# engine (the image-builder's pushes) reaches it; containers (fatmen, builds) have loopbacks of
# their own, and builds run off the host network (scripts/build-network.sh).
case "$ADDR" in
  127.*:*|localhost:*) ;;
  *) if [ "${REGISTRY_ALLOW_NON_LOOPBACK:-0}" != 1 ]; then
       echo "registry: REGISTRY_ADDR $ADDR is not a loopback address; anyone reaching it could push images (set REGISTRY_ALLOW_NON_LOOPBACK=1 behind an authenticating proxy)" >&2
       exit 2
     fi ;;
esac
ACTION=start
VERIFY=1
for arg in "$@"; do
  case "$arg" in
    start|stop|status) ACTION="$arg" ;;
    --no-verify) VERIFY=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "registry: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
log() { echo "registry: $*"; }

answers() { curl -sf -o /dev/null --max-time 2 "$URL/v2/"; }

our_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

case "$ACTION" in
  status)
    if answers; then log "up at $URL"; exit 0; fi
    log "not answering at $URL"; exit 1 ;;
  stop)
    if pid="$(our_pid)"; then
      $SUDO kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      $SUDO rm -f "$PIDFILE"
      log "stopped (pid $pid)"
    else
      log "not running (no live pid in $PIDFILE)"
    fi
    exit 0 ;;
esac

install_registry() {
  if command -v docker-registry >/dev/null 2>&1; then return; fi
  log "installing the Debian package docker-registry"
  # The package's maintainer scripts would start a registry of their own on :5000 where an init
  # system exists; a policy-rc.d that forbids starting services keeps the port for ours.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  if [ "$own_policy" -eq 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
}

write_config() {
  $SUDO mkdir -p "$(dirname "$CONFIG")" "$STORAGE" "$(dirname "$LOGFILE")" "$(dirname "$PIDFILE")"
  local tmp
  tmp="$(mktemp)"
  cat >"$tmp" <<EOF
# Written by scripts/registry.sh (Racetrack-rs); rewritten on every start.
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STORAGE
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 30s
    threshold: 3
EOF
  if ! cmp -s "$tmp" "$CONFIG" 2>/dev/null; then
    $SUDO cp "$tmp" "$CONFIG"
    log "wrote $CONFIG"
  fi
  rm -f "$tmp"
}

verify_push() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || {
    log "docker is not available: push check skipped"; return 0; }
  local image="$ADDR/racetrack/registry-check:latest" dir
  dir="$(mktemp -d)"
  echo "racetrack registry check" >"$dir/check.txt"
  tar -C "$dir" -c check.txt | docker import --message "registry check" - "$image" >/dev/null
  rm -rf "$dir"
  if ! docker push -q "$image" >/dev/null 2>&1 && ! docker push "$image" >/dev/null; then
    echo "registry: docker push $image failed" >&2
    docker rmi "$image" >/dev/null 2>&1 || true
    return 1
  fi
  local digest
  digest="$(curl -sf -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$URL/v2/racetrack/registry-check/manifests/latest" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
  docker rmi "$image" >/dev/null 2>&1 || true
  if [ -z "$digest" ]; then
    echo "registry: pushed image not found in the registry" >&2
    return 1
  fi
  # Deletion is enabled: remove the check image's manifest again (blobs go with garbage-collect).
  curl -sf -X DELETE -o /dev/null "$URL/v2/racetrack/registry-check/manifests/$digest" || true
  log "push check ok: docker push $image, manifest $digest, then deleted"
}

# start
if pid="$(our_pid)" && answers; then
  log "already running (pid $pid) at $URL"
  if [ "$VERIFY" -eq 1 ]; then verify_push; fi
  exit 0
fi
if answers; then
  log "a registry not started by this script already answers at $URL; using it"
  if [ "$VERIFY" -eq 1 ]; then verify_push; fi
  exit 0
fi

install_registry
write_config
# shellcheck disable=SC2016
$SUDO sh -c 'nohup docker-registry serve "$1" >>"$2" 2>&1 </dev/null & echo $! >"$3"' \
  sh "$CONFIG" "$LOGFILE" "$PIDFILE"
pid="$(cat "$PIDFILE")"
log "started docker-registry (pid $pid), config $CONFIG, storage $STORAGE, log $LOGFILE"
for _ in $(seq 1 100); do
  if answers; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "registry: docker-registry exited; last lines of $LOGFILE:" >&2
    tail -n 20 "$LOGFILE" >&2
    exit 1
  fi
  sleep 0.1
done
if ! answers; then
  echo "registry: no answer from $URL/v2/ after 10 s; last lines of $LOGFILE:" >&2
  tail -n 20 "$LOGFILE" >&2
  exit 1
fi
log "up at $URL"
if [ "$VERIFY" -eq 1 ]; then verify_push; fi
