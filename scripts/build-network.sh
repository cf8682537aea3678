#!/usr/bin/env bash
# Keeps image builds away from the platform. RUN steps of a fatman's Dockerfile (user code) run on
# the Docker network BUILD_NETWORK (default racetrack-build; the image-builder's
# BUILD_NETWORK_MODE), a bridge network of its own: they reach the internet (PyPI, Debian mirrors)
# through Docker's NAT, but not the host's loopback (registry, image-builder, Redis, published
# fatman ports), and with the firewall rule installed here not the host's other addresses either
# (services bound to 0.0.0.0, e.g. PUB or the Lifecycle API, through the bridge's gateway).
# Idempotent; run as root (or with sudo) after every reboot (iptables rules are not persisted);
# scripts/run-local.sh runs it.
#
# Usage: scripts/build-network.sh [start|stop|status]
#   start (default)  create the network when missing and insert the INPUT rule dropping every packet
#                    that enters the host from its bridge
#   stop             remove the rule (the network stays)
#   status           exit 0 when the network and the rule are in place
set -euo pipefail

NETWORK="${BUILD_NETWORK:-racetrack-build}"
ACTION="${1:-start}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
log() { echo "build-network: $*"; }

case "$ACTION" in start|stop|status) ;; -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "build-network: unknown argument: $ACTION" >&2; exit 2 ;;
esac

# The bridge interface is named after the network (at most 15 characters), so the rule names a
# stable interface; the image-builder creates the network the same way when it is missing.
if ! [[ "$NETWORK" =~ ^[a-z0-9][a-z0-9-]{0,14}$ ]]; then
  echo "build-network: BUILD_NETWORK must be 1-15 of [a-z0-9-] (it names the bridge interface)" >&2
  exit 2
fi

bridge_of() {
  local name id
  name="$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$NETWORK" 2>/dev/null)" || return 1
  if [ -z "$name" ] || [ "$name" = "<no value>" ]; then
    id="$(docker network inspect -f '{{.Id}}' "$NETWORK")"
    name="br-${id:0:12}"
  fi
  echo "$name"
}

rule() { $SUDO iptables "$1" INPUT -i "$2" -j DROP -m comment --comment "racetrack: builds may not reach the host"; }

case "$ACTION" in
  status)
    bridge="$(bridge_of)" || { log "network $NETWORK missing"; exit 1; }
    if rule -C "$bridge" 2>/dev/null; then log "network $NETWORK ($bridge) isolated from the host"; exit 0; fi
    log "network $NETWORK ($bridge) exists but the host is reachable from it (no INPUT rule)"; exit 1 ;;
  stop)
    if bridge="$(bridge_of)"; then
      while rule -C "$bridge" 2>/dev/null; do rule -D "$bridge"; done
      log "rule for $bridge removed"
    fi
    exit 0 ;;
esac

if ! bridge_of >/dev/null; then
  docker network create --driver bridge \
    --opt com.docker.network.bridge.enable_icc=false \
    --opt "com.docker.network.bridge.name=$NETWORK" \
    --label racetrack.build-network=true "$NETWORK" >/dev/null
  log "created network $NETWORK"
fi
bridge="$(bridge_of)"
icc="$(docker network inspect -f '{{index .Options "com.docker.network.bridge.enable_icc"}}' "$NETWORK")"
if [ "$icc" != "false" ]; then
  log "warning: $NETWORK lets builds reach each other (created without enable_icc=false); recreate it when no build runs: docker network rm $NETWORK"
fi
if ! rule -C "$bridge" 2>/dev/null; then
  rule -I "$bridge"
  log "installed: iptables -I INPUT -i $bridge -j DROP"
fi
log "network $NETWORK ($bridge) reaches the internet, not the host"
