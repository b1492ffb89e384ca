#!/bin/sh
# Container entrypoint: run `harness` as the owner of the results volume.
#
# `docker run -v "$PWD/results:/results" harness bench all` starts as root; files written into the
# bind mount would then belong to root on the host. When /results (HARNESS_RESULTS_DIR) belongs to
# someone else, drop to that uid:gid before running the harness, so results land as the calling user.
# With `--user UID:GID` the container is not root and this script just runs the harness.
set -eu

results=${HARNESS_RESULTS_DIR:-/results}
mkdir -p "$results" 2>/dev/null || true

if [ "$(id -u)" = 0 ] && [ -d "$results" ]; then
  owner=$(stat -c %u "$results")
  group=$(stat -c %g "$results")
  if [ "$owner" != 0 ]; then
    # HOME must be writable for the dropped user (matplotlib, torch caches).
    export HOME=/tmp
    # coreutils chroot to / with --skip-chdir is a plain setuid/setgid exec that keeps the workdir.
    exec chroot --userspec="$owner:$group" --skip-chdir / harness "$@"
  fi
fi
# Not root (docker run --user UID:GID) with a uid the image has no account for: HOME is then /, where nothing can be
# written; the harness's and the frameworks' caches need a writable HOME.
if [ ! -w "${HOME:-/}" ]; then
  export HOME=/tmp
fi
exec harness "$@"
