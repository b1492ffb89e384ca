#!/usr/bin/env bash
# local-base.sh TAG : a Debian 12 (bookworm) base image made from Debian's own packages, for machines that cannot
# reach Docker Hub (where debian:bookworm-slim lives):
#
#   bash docker/local-base.sh harness-base:bookworm
#   DOCKER_BUILDKIT=1 docker build --build-arg BASE=harness-base:bookworm -t harness -f docker/Dockerfile .
#
# What debian:bookworm-slim is, made the same way: `mmdebstrap --variant=minbase` (Debian's essential packages and
# apt) with slim's dpkg filters (no manual pages, no documentation but the copyright files, no translations), apt
# sources bookworm, bookworm-updates and bookworm-security, then `docker import`. apt checks every package against
# the archive's signed release files (Debian's archive keyring), so http is enough.
#
# Environment (optional):
#   DEBIAN_MIRROR            default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR   default http://deb.debian.org/debian-security
#   DOCKER                   the docker client (default: docker)
#   FORCE=1                  make the image again even if TAG exists (else an existing TAG is kept and said so)
# Needs mmdebstrap (installed with apt-get when root and missing) and root, or mmdebstrap's unshare mode.
set -euo pipefail

[[ $# -eq 1 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 TAG" >&2; exit 2; }
tag=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
docker=${DOCKER:-docker}

log() { echo "local-base: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ "${FORCE:-0}" != 1 ]] && created=$("$docker" image inspect -f '{{.Created}}' "$tag" 2>/dev/null); then
  log "$tag exists (made $created); FORCE=1 makes it again"
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || die "install mmdebstrap (sudo apt-get install mmdebstrap)"
  log "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
log "debootstrapping bookworm (minbase) from $mirror"
if ! mmdebstrap --variant=minbase \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/groff/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  bookworm "$work/rootfs.tar" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
  >"$work/mmdebstrap.log" 2>&1; then
  tail -n 20 "$work/mmdebstrap.log" >&2
  die "mmdebstrap failed"
fi
id=$("$docker" import --change 'CMD ["bash"]' --message "docker/local-base.sh: Debian bookworm minbase from $mirror" \
  "$work/rootfs.tar" "$tag")
log "$tag ($id) made in $((SECONDS - start)) s: $("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
