#!/usr/bin/env bash
# apt-source.sh SUITE PACKAGE=VERSION DEST : download a Debian source package into DEST (no extraction).
#
# Used by build-caffe.sh (Caffe from bullseye's `caffe`) and caffe-bundle.sh (Boost.Python from the
# distribution's own Boost). apt runs with a private configuration in a temporary directory: one
# `deb-src` line for SUITE, its own lists and cache. The system's sources.list, lists and cache are
# neither read nor changed, so this works on any Debian-based system with apt-get and the Debian
# archive keyring, as any user (as root, apt may warn that the download is unsandboxed).
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              DEBIAN_KEYRING (default /usr/share/keyrings/debian-archive-keyring.gpg).
# apt verifies the suite's signed InRelease file and every downloaded file's checksum against it.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: $0 SUITE PACKAGE=VERSION DEST" >&2; exit 2; }
suite=$1 package=$2 dest=$3
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

command -v apt-get >/dev/null || { echo "apt-source: no apt-get on this system" >&2; exit 1; }
[[ -f "$keyring" ]] || { echo "apt-source: no $keyring (install debian-archive-keyring)" >&2; exit 1; }

apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest"
echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
apt=(apt-get -q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
  -o "APT::Sandbox::User=$(id -un)")
"${apt[@]}" update >&2
(cd "$dest" && "${apt[@]}" source --download-only "$package" >&2)
