#!/usr/bin/env bash
# Builds the local base images that every Dockerfile of Racetrack-rs can take as a build argument,
# for machines where no image can be pulled from a registry:
#
#   racetrack/debian-base:bookworm   Debian bookworm minbase + ca-certificates
#   racetrack/python-base:bookworm   the same + python3 (3.11), python3-venv, python3-pip
#
# Each image is a `debootstrap --variant=minbase` root file system imported with `docker import`.
# Idempotent: an image that `docker image inspect` finds is skipped; the debootstrap folders and
# the downloaded .deb files stay cached under $CACHE_DIR, so a rebuild after `docker rmi` only
# re-imports. Runs as root (or through sudo) without a terminal.
#
# Usage: scripts/base-images.sh [--force] [--only NAME]...
#   --force       rebuild the root file systems and re-import the images
#   --only NAME   handle only that image (debian-base or python-base); may repeat
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
#              CACHE_DIR (default /var/cache/racetrack/debootstrap), SUITE (default bookworm),
#              BASE_IMAGES_UPGRADE=0 to skip the apt-get upgrade from bookworm-updates/-security.
set -euo pipefail

SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
CACHE_DIR="${CACHE_DIR:-/var/cache/racetrack/debootstrap}"
UPGRADE="${BASE_IMAGES_UPGRADE:-1}"
FORCE=0
ONLY=()

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --only) shift; ONLY+=("${1:?--only needs an image name}") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base-images: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi

log() { echo "base-images: $*"; }

# name | parent ("-": debootstrap) | packages (comma-separated) | description
# A child starts from a copy of its parent's root file system and apt-get installs its packages
# (without recommends, as debootstrap's --include), which is quicker than a second debootstrap.
IMAGES=(
  "debian-base|-|ca-certificates|Debian ${SUITE} minbase + ca-certificates"
  "python-base|debian-base|python3,python3-venv,python3-pip,python-is-python3|Debian ${SUITE} minbase + ca-certificates, python3, venv, pip"
)
BUILT_THIS_RUN=" "

wanted() {
  [ ${#ONLY[@]} -eq 0 ] && return 0
  local n
  for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

if ! command -v docker >/dev/null 2>&1; then
  echo "base-images: docker is not installed" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "base-images: the Docker engine does not answer (docker info failed)" >&2
  exit 1
fi

ensure_debootstrap() {
  if command -v debootstrap >/dev/null 2>&1; then return; fi
  log "installing debootstrap (apt-get)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# Runs a command inside the root file system with /proc and /dev mounted for the time it takes.
in_chroot() {
  local root="$1"; shift
  local own_resolv=0 rc=0
  if [ ! -e "$root/etc/resolv.conf" ]; then  # name resolution for apt, removed again afterwards
    $SUDO cp /etc/resolv.conf "$root/etc/resolv.conf"
    own_resolv=1
  fi
  $SUDO mount -t proc proc "$root/proc"
  $SUDO mount --bind /dev "$root/dev"
  $SUDO env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    chroot "$root" "$@" || rc=$?
  $SUDO umount "$root/dev" || $SUDO umount -l "$root/dev"
  $SUDO umount "$root/proc" || $SUDO umount -l "$root/proc"
  if [ "$own_resolv" -eq 1 ]; then $SUDO rm -f "$root/etc/resolv.conf"; fi
  return $rc
}

image_entry() {
  local entry
  for entry in "${IMAGES[@]}"; do
    if [ "${entry%%|*}" = "$1" ]; then echo "$entry"; return; fi
  done
  echo "base-images: unknown image $1" >&2
  exit 2
}

# Makes (or reuses) $CACHE_DIR/NAME/rootfs.
make_rootfs() {
  local name="$1" parent="$2" packages="$3"
  local root="$CACHE_DIR/$name/rootfs" marker="$CACHE_DIR/$name/.complete"
  case "$BUILT_THIS_RUN" in *" $name "*) return ;; esac
  if [ "$FORCE" -eq 0 ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$parent|$packages" ]; then
    log "$name: reusing cached root file system $root"
    return
  fi
  $SUDO rm -rf "$CACHE_DIR/$name"
  $SUDO mkdir -p "$CACHE_DIR/debs"
  local start=$SECONDS
  if [ "$parent" != "-" ]; then
    local p_name p_parent p_packages _desc
    IFS='|' read -r p_name p_parent p_packages _desc <<<"$(image_entry "$parent")"
    make_rootfs "$p_name" "$p_parent" "$p_packages"
    $SUDO mkdir -p "$CACHE_DIR/$name"
    start=$SECONDS
    $SUDO cp -a "$CACHE_DIR/$parent/rootfs" "$root"
    log "$name: apt-get install ${packages//,/ } (on a copy of $parent)"
    if ! in_chroot "$root" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages//,/ }" \
        >"$CACHE_DIR/$name.build.log" 2>&1; then
      echo "base-images: installing packages into $name failed; last lines of $CACHE_DIR/$name.build.log:" >&2
      tail -n 30 "$CACHE_DIR/$name.build.log" >&2
      exit 1
    fi
    log "$name: packages installed in $((SECONDS - start)) s"
    finish_rootfs "$name" "$root" 0
    echo "$parent|$packages" | $SUDO tee "$marker" >/dev/null
    BUILT_THIS_RUN="$BUILT_THIS_RUN$name "
    return
  fi
  ensure_debootstrap
  $SUDO mkdir -p "$root"
  log "$name: debootstrap --variant=minbase --include=$packages $SUITE $root $MIRROR"
  if ! $SUDO debootstrap --variant=minbase --include="$packages" --cache-dir="$CACHE_DIR/debs" \
      "$SUITE" "$root" "$MIRROR" >"$CACHE_DIR/$name.build.log" 2>&1; then
    echo "base-images: debootstrap of $name failed; last lines of $CACHE_DIR/$name.build.log:" >&2
    tail -n 30 "$CACHE_DIR/$name.build.log" >&2
    exit 1
  fi
  log "$name: debootstrap took $((SECONDS - start)) s"
  configure_rootfs "$root"
  finish_rootfs "$name" "$root" "$UPGRADE"
  echo "$parent|$packages" | $SUDO tee "$marker" >/dev/null
  BUILT_THIS_RUN="$BUILT_THIS_RUN$name "
}

# Container-friendly apt/dpkg settings of a fresh debootstrap.
configure_rootfs() {
  local root="$1"
  # apt sources with updates and security, as in Debian's own images; container-friendly apt/dpkg.
  $SUDO tee "$root/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
  echo 'force-unsafe-io' | $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" >/dev/null
  # Slim, as Debian's -slim images: no documentation, manuals or translations (copyright files stay).
  $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  $SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  $SUDO find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  $SUDO rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
  $SUDO find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  # Like Debian's images: services never start inside a container.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$root/usr/sbin/policy-rc.d" >/dev/null
  $SUDO chmod 755 "$root/usr/sbin/policy-rc.d"

}

# Optional upgrade, then removal of what an image does not need.
finish_rootfs() {
  local name="$1" root="$2" upgrade="$3" start
  if [ "$upgrade" = "1" ]; then
    log "$name: apt-get upgrade from $SUITE-updates and $SUITE-security"
    start=$SECONDS
    if ! in_chroot "$root" sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade' \
        >>"$CACHE_DIR/$name.build.log" 2>&1; then
      echo "base-images: apt-get upgrade in $name failed (see $CACHE_DIR/$name.build.log); continuing with the release packages" >&2
    fi
    log "$name: upgrade took $((SECONDS - start)) s"
  fi

  # Trim what an image does not need: package lists, caches, logs, machine-specific files.
  $SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/debconf/*-old "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/bootstrap.log \
    "$root"/tmp/* "$root"/root/.cache
  : | $SUDO tee "$root/etc/machine-id" >/dev/null
  $SUDO rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
}

import_image() {
  local name="$1" desc="$2"
  local image="racetrack/$name:$SUITE" root="$CACHE_DIR/$name/rootfs"
  log "$name: importing $root as $image"
  local start=$SECONDS
  $SUDO tar --numeric-owner --xattrs -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=\"$desc\" racetrack.base-image=\"$name\"" \
    --message "racetrack base image: $desc (debootstrap)" \
    - "$image" >/dev/null
  log "$name: imported $image in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1000000}'))"
}

total_start=$SECONDS
did=0
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r name parent packages desc <<<"$entry"
  wanted "$name" || continue
  image="racetrack/$name:$SUITE"
  if [ "$FORCE" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    log "$image exists, skipped (use --force to rebuild)"
    continue
  fi
  make_rootfs "$name" "$parent" "$packages"
  import_image "$name" "$desc"
  did=1
done

if [ "$did" -eq 1 ]; then
  log "done in $((SECONDS - total_start)) s"
fi
docker image ls --filter 'reference=racetrack/*-base' --format 'base-images: {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'
