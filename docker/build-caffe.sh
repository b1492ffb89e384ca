#!/usr/bin/env bash
# Build upstream BVLC Caffe (with pycaffe for Python 3) at the commit the harness is pinned to.
#
# The one recipe used by the Dockerfiles, CI, `./run bench` and users on bare metal:
#
#   bash docker/build-caffe.sh                                           # CPU-only into /opt/caffe
#   CUDA_HOME=/opt/cuda13 CPU_ONLY=0 CUDA_ARCH=90 WITH_CUDNN=1 \
#     CAFFE_PREFIX=/opt/caffe-cuda bash docker/build-caffe.sh            # GPU build (cuDNN) for sm_90
#   eval "$(bash docker/build-caffe.sh --print-env)"                     # set CAFFE_ROOT + PYTHONPATH
#   bash docker/build-caffe.sh --fetch-source                            # only fetch the source; print its dir
#   bash docker/build-caffe.sh --check-source DIR                        # check DIR against the manifest
#   bash docker/build-caffe.sh --is-built                                # exit 0 iff CAFFE_PREFIX holds this build
#   bash docker/build-caffe.sh --install-packages                        # only install the build's packages
#
# Source: upstream git at CAFFE_COMMIT or, where that is unreachable, Debian bullseye's source package
# `caffe` (its .orig tarball is upstream's tree at 99bd997, four commits before CAFFE_COMMIT, identical
# in every file that is built). Whatever the route, the tree is checked file by file against
# docker/caffe-9b891540.sha256, only the files listed there are copied into the build, and
# $CAFFE_PREFIX/harness-build.env records where the source came from.
#
# Environment variables (all optional):
#   CAFFE_SRC      a BVLC Caffe source tree to use instead of fetching one (read, never modified; it
#                  must pass the manifest check).
#   CAFFE_FETCH    the fetch routes to try, in order (default: "git debian").
#   CAFFE_SRC_CACHE where fetched source is kept between builds (default:
#                  ${XDG_CACHE_HOME:-$HOME/.cache}/harness/caffe-source-<commit>).
#   CAFFE_REPO     the git repository (default: https://github.com/BVLC/caffe.git).
#   DEBIAN_MIRROR  the Debian archive for the source package (default: http://deb.debian.org/debian).
#   CAFFE_PREFIX   where Caffe is built and stays (the CAFFE_ROOT; pycaffe is CAFFE_PREFIX/python).
#                  Default: /opt/caffe. Anything already there is replaced only if it carries this
#                  script's build stamp (or is empty).
#   CPU_ONLY       1: CPU-only build. 0: CUDA build (fails without a toolkit). Default: 0 if nvcc is found
#                  in CUDA_HOME/bin or on PATH together with the cuBLAS and cuRAND headers, else 1.
#   CUDA_HOME      the CUDA toolkit (default: /usr/local/cuda; docker/cuda-toolkit-from-wheels.sh makes
#                  one from PyPI wheels). GPU builds carry CUDA_HOME's library directory as RUNPATH, so
#                  they load cuBLAS/cuRAND/cuDNN from there without LD_LIBRARY_PATH.
#   CUDA_ARCH      SM numbers to compile for, e.g. "75 80 86 90" (default: every SM the toolkit still
#                  supports among 60..120, plus PTX of the newest one for forward compatibility).
#   WITH_CUDNN     1/0: build the CUDNN engine. Default: 1 when a GPU build finds cudnn.h, else 0.
#   BLAS           open (OpenBLAS, default) or atlas.
#   PYTHON         the Python 3 interpreter pycaffe is built for (default: /usr/bin/python3, the
#                  distribution's, whose numpy and boost-python packages match it).
#   CXX            the C++ compiler, also nvcc's host compiler (default: Caffe's Makefile's, g++).
#   JOBS           parallel compile jobs (default: nproc).
#   SKIP_APT       1: do not install Debian/Ubuntu packages (they must be present already).
#   FORCE          1: rebuild even if a build with the same commit, flags and patches exists.
#
# Build system: Caffe's Makefile with a generated Makefile.config (the CMake files of this commit
# select CUDA archs with a removed compute_20 table and find boost-python by version-string guessing,
# both of which need more patching than the Makefile, where both are plain variables).
# Optional features the harness never uses are switched off: OpenCV (data augmentation; needs OpenCV 4
# patches), LMDB and LevelDB (dataset readers). HDF5 stays on for .h5 weights.
#
# Patches (docker/patches/, applied to the copy in CAFFE_PREFIX): common/*.patch always, cuda/*.patch
# in GPU builds. Each patch's header says what it fixes and why.
set -euo pipefail

readonly CAFFE_COMMIT=9b891540183ddc834a02b2bd81b31afae71b2153
readonly STAMP_NAME=.harness-build-stamp
readonly OWNER_NAME=.harness-build-owner
readonly INFO_NAME=harness-build.env
# Debian bullseye's source package of Caffe: upstream's tree at 99bd997 as its .orig tarball.
readonly DEBIAN_SOURCE_VERSION=1.0.0+git20180821.99bd997-8

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly PATCH_DIR="$SCRIPT_DIR/patches"
readonly MANIFEST="$SCRIPT_DIR/caffe-${CAFFE_COMMIT:0:8}.sha256"

ACTION=build
PRINT_ENV=0
case "${1:-}" in
  "") ;;
  --print-env) PRINT_ENV=1 ;;
  --fetch-source) ACTION=fetch ;;
  --is-built) ACTION=is-built ;;
  --install-packages) ACTION=install-packages ;;
  --check-source)
    [[ $# -eq 2 ]] || { echo "usage: $0 --check-source DIR" >&2; exit 2; }
    ACTION=check
    ;;
  *)
    echo "usage: [VAR=value ...] $0 [--print-env | --fetch-source | --check-source DIR | --is-built | --install-packages]   (see the header)" >&2
    exit 2
    ;;
esac
[[ "$ACTION" == check || $# -le 1 ]] || { echo "$0: $1 takes no further arguments" >&2; exit 2; }

log() { echo "build-caffe: $*" >&2; }
die() { log "error: $*"; exit 1; }

CAFFE_PREFIX=${CAFFE_PREFIX:-/opt/caffe}
CAFFE_REPO=${CAFFE_REPO:-https://github.com/BVLC/caffe.git}
CAFFE_FETCH=${CAFFE_FETCH:-git debian}
CAFFE_SRC_CACHE=${CAFFE_SRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/harness/caffe-source-${CAFFE_COMMIT:0:8}}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
BLAS=${BLAS:-open}
PYTHON=${PYTHON:-/usr/bin/python3}
JOBS=${JOBS:-$(nproc)}
SKIP_APT=${SKIP_APT:-0}
FORCE=${FORCE:-0}

# ---------------------------------------------------------------------------------------------
# Source: fetch, check against the manifest, copy
# ---------------------------------------------------------------------------------------------
manifest_files() {  # the paths the manifest lists, one per line
  grep -v '^#' "$MANIFEST" | cut -c67-
}

check_source() {  # check_source DIR : every file of the manifest present in DIR with its SHA-256
  local dir=$1 bad
  [[ -d "$dir" ]] || die "$dir is not a directory"
  bad=$(grep -v '^#' "$MANIFEST" | (cd "$dir" && sha256sum --check --strict - 2>/dev/null) | grep -v ': OK$' || true)
  if [[ -n "$bad" ]]; then
    log "$dir does not match $(basename "$MANIFEST") (Caffe $CAFFE_COMMIT):"
    echo "$bad" | head -n 20 >&2
    die "$(echo "$bad" | wc -l) of $(manifest_files | wc -l) files differ or are missing"
  fi
}

fetch_git() {  # fetch_git DEST : the commit from CAFFE_REPO (shallow where the server allows it)
  command -v git >/dev/null || { log "git: not installed"; return 1; }
  git init --quiet "$1" || return 1
  export GIT_TERMINAL_PROMPT=0
  timeout 600 git -C "$1" fetch --quiet --depth 1 "$CAFFE_REPO" "$CAFFE_COMMIT" ||
    timeout 1200 git -C "$1" fetch --quiet "$CAFFE_REPO" || return 1
  git -C "$1" -c advice.detachedHead=false checkout --quiet "$CAFFE_COMMIT" &&
    echo "git $CAFFE_REPO $CAFFE_COMMIT" >"$1.origin"
}

fetch_debian() {  # fetch_debian DEST : the tree of Debian's .orig tarball (docker/apt-source.sh)
  local download status=0 tarball
  download=$(mktemp -d)
  if DEBIAN_MIRROR=$DEBIAN_MIRROR bash "$SCRIPT_DIR/apt-source.sh" bullseye "caffe=$DEBIAN_SOURCE_VERSION" "$download" &&
    tarball=$(compgen -G "$download/caffe_*.orig.tar.gz"); then
    mkdir -p "$1" && tar -xzf "$tarball" -C "$1" &&
      echo "debian caffe $DEBIAN_SOURCE_VERSION ($(basename "$tarball") sha256 $(sha256sum "$tarball" | cut -d' ' -f1))" >"$1.origin" ||
      status=1
  else
    status=1
  fi
  rm -rf "$download"
  return $status
}

obtain_source() {  # prints a source tree's directory; its origin is in "<directory>.origin"
  if [[ -n "${CAFFE_SRC:-}" ]]; then
    [[ -d "$CAFFE_SRC" ]] || die "CAFFE_SRC=$CAFFE_SRC is not a directory"
    echo "$CAFFE_SRC"
    return
  fi
  local tree="$CAFFE_SRC_CACHE/tree"
  if [[ -f "$tree.origin" ]]; then
    log "source: cached in $tree ($(cat "$tree.origin"))"
    echo "$tree"
    return
  fi
  local route
  for route in $CAFFE_FETCH; do
    rm -rf "$tree" "$tree.origin"
    mkdir -p "$CAFFE_SRC_CACHE"
    log "source: trying $route"
    case "$route" in
      git) fetch_git "$tree" || true ;;
      debian) fetch_debian "$tree" || true ;;
      *) die "CAFFE_FETCH: unknown route '$route' (git, debian)" ;;
    esac
    if [[ -f "$tree.origin" ]]; then
      log "source: $(cat "$tree.origin")"
      echo "$tree"
      return
    fi
  done
  rm -rf "$tree"
  die "could not fetch Caffe's source by: $CAFFE_FETCH (set CAFFE_SRC to a source tree at $CAFFE_COMMIT)"
}

source_origin() {  # source_origin DIR : how DIR came to be
  if [[ -f "$1.origin" ]]; then
    cat "$1.origin"
  elif [[ -d "$1/.git" ]] && command -v git >/dev/null; then
    echo "directory $1 (git $(git -C "$1" rev-parse HEAD 2>/dev/null || echo unknown))"
  else
    echo "directory $1"
  fi
}

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
apt_packages() {
  # Names valid on Debian bookworm and Ubuntu 16.04 / 22.04.
  local blas_pkg=libopenblas-dev
  [[ "$BLAS" == atlas ]] && blas_pkg=libatlas-base-dev
  echo build-essential ca-certificates git patch pkg-config \
    libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev \
    libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev \
    "$blas_pkg" python3-dev python3-numpy python3-protobuf python3-six
}

missing_packages() {
  local pkg
  # shellcheck disable=SC2046 # word splitting of the package list is intended
  for pkg in $(apt_packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

install_packages() {
  if [[ "$SKIP_APT" == 1 ]]; then
    log "SKIP_APT=1: not installing packages"
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install the packages of apt_packages() yourself and set SKIP_APT=1"
  local missing
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all packages present"
    return
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo -n true 2>/dev/null ||
      die "not root and no password-less sudo: install these packages (sudo apt-get install ${missing[*]}), then run again"
    sudo=(sudo -n)
  fi
  log "installing: ${missing[*]}"
  # apt's chatter goes to stderr: stdout carries only the result (see --print-env).
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo[@]}" apt-get update >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
find_nvcc() {
  if [[ -x "$CUDA_HOME/bin/nvcc" ]]; then
    echo "$CUDA_HOME/bin/nvcc"
  else
    command -v nvcc || true
  fi
}

cuda_toolkit_complete() {  # Caffe needs cuBLAS and cuRAND besides nvcc and the runtime.
  [[ -n "$NVCC" && -f "$CUDA_HOME/include/cublas_v2.h" && -f "$CUDA_HOME/include/curand.h" ]]
}

cuda_version() {
  "$NVCC" --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'
}

default_cuda_arch() {
  local major
  major=$(cuda_version)
  major=${major%%.*}
  # CUDA 12 dropped sm_35/37 (and long before, compute_20/30 that Caffe's example config lists);
  # CUDA 13 dropped everything below sm_75.
  if ((major >= 13)); then
    echo "75 80 86 89 90 100 120"
  elif ((major == 12)); then
    echo "60 70 75 80 86 89 90"
  else
    echo "60 70 75 80"
  fi
}

gencode_flags() {
  local sm flags="" newest=""
  for sm in $1; do
    flags+=" -gencode arch=compute_$sm,code=sm_$sm"
    newest=$sm
  done
  # PTX of the newest arch lets the driver JIT for GPUs newer than the toolkit's list.
  echo "$flags -gencode arch=compute_$newest,code=compute_$newest"
}

find_header() {  # find_header NAME DIR... : the first DIR holding NAME
  local name=$1 dir
  shift
  for dir in "$@"; do
    [[ -f "$dir/$name" ]] && { echo "$dir"; return 0; }
  done
  return 0  # not found: empty output, not a failure under set -e
}

cudnn_include_dir() {
  find_header cudnn.h "$CUDA_HOME/include" /usr/include "/usr/include/$(gcc -print-multiarch)"
}

cudnn_version() {  # e.g. 9.17.0, from cudnn_version.h (cuDNN >= 8) or cudnn.h
  local dir header
  dir=$(cudnn_include_dir)
  header="$dir/cudnn_version.h"
  [[ -f "$header" ]] || header="$dir/cudnn.h"
  awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) / {v[$2]=$3}
       END {if (v["CUDNN_MAJOR"] != "") print v["CUDNN_MAJOR"] "." v["CUDNN_MINOR"] "." v["CUDNN_PATCHLEVEL"]}' "$header"
}

cuda_library_dirs() {  # where the GPU build's CUDA libraries are: CUDA_HOME's, and cuDNN's if elsewhere
  local dir dirs=()
  for dir in "$CUDA_HOME/lib64" "$CUDA_HOME/lib"; do
    [[ -d "$dir" ]] && dirs+=("$(readlink -f "$dir")")
  done
  if [[ "$WITH_CUDNN" == 1 ]]; then
    dir=$(dirname "$(readlink -f "$(cudnn_include_dir)")")/lib
    [[ -f "$dir/libcudnn.so" ]] || dir="/usr/lib/$(gcc -print-multiarch)"
    dirs+=("$dir")
  fi
  printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++'
}

configure() {
  local multiarch py_ver py_include numpy_include boost_py blas_include=""
  multiarch=$(gcc -print-multiarch)
  py_ver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  py_include=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  numpy_include=$("$PYTHON" -c 'import numpy; print(numpy.get_include())')
  # Boost.Python's library name: libboost_python311 (Debian 12, Ubuntu 22.04), libboost_python-py35
  # (Ubuntu 16.04), libboost_python3 (some others).
  local candidate
  boost_py=""
  for candidate in "boost_python${py_ver/./}" "boost_python-py${py_ver/./}" boost_python3; do
    if compgen -G "/usr/lib/$multiarch/lib$candidate.so" >/dev/null || compgen -G "/usr/lib/lib$candidate.so" >/dev/null; then
      boost_py=$candidate
      break
    fi
  done
  [[ -n "$boost_py" ]] || die "no Boost.Python library for Python $py_ver (install libboost-python-dev)"
  if [[ "$BLAS" == open ]]; then
    blas_include=$(find_header cblas.h "/usr/include/$multiarch/openblas-pthread" "/usr/include/$multiarch" /usr/include/openblas /usr/include)
  fi

  local gpu_lines="CPU_ONLY := 1"
  if [[ "$CPU_ONLY" == 0 ]]; then
    gpu_lines="CUDA_DIR := $CUDA_HOME
CUDA_ARCH := $(gencode_flags "$CUDA_ARCH")
USE_CUDNN := $WITH_CUDNN"
    [[ "$WITH_CUDNN" == 1 ]] && gpu_lines+="
INCLUDE_DIRS += $(cudnn_include_dir)"
    # CUDA 13 moved Thrust/CUB into include/cccl, which nvcc searches by itself but g++ (which
    # compiles Caffe's .cpp files, e.g. cudnn_softmax_layer.cpp's thrust include) does not.
    [[ -d "$CUDA_HOME/include/cccl" ]] && gpu_lines+="
INCLUDE_DIRS += $CUDA_HOME/include/cccl"
    # RUNPATH: libcaffe, the tools and pycaffe find cuBLAS, cuRAND, cuDNN and the runtime where they
    # were linked, with no LD_LIBRARY_PATH.
    local dir
    while read -r dir; do
      gpu_lines+="
LIBRARY_DIRS += $dir
LDFLAGS += -Wl,-rpath,$dir"
    done < <(cuda_library_dirs)
  fi

  # NumPy's headers before Python's: Debian's python3-numpy puts its own (NumPy 1.x) headers under
  # /usr/include/python3.X/numpy, which would shadow those of a PYTHON with another NumPy (a venv with NumPy 2).
  cat >Makefile.config <<CONFIG
# Generated by docker/build-caffe.sh (harness) for commit $CAFFE_COMMIT.
${CXX:+CUSTOM_CXX := $CXX}
$gpu_lines
USE_OPENCV := 0
USE_LEVELDB := 0
USE_LMDB := 0
USE_HDF5 := 1
BLAS := $BLAS
${blas_include:+BLAS_INCLUDE := $blas_include}
PYTHON_INCLUDE := $numpy_include $py_include
PYTHON_LIBRARIES := $boost_py python$py_ver
PYTHON_LIB := /usr/lib/$multiarch
INCLUDE_DIRS += \$(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial
LIBRARY_DIRS += \$(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/$multiarch/hdf5/serial
BUILD_DIR := build
DISTRIBUTE_DIR := distribute
Q ?= @
CONFIG
}

# ---------------------------------------------------------------------------------------------
# Build tree, patches, cache
# ---------------------------------------------------------------------------------------------
patch_files() {
  local group
  for group in common $([[ "$CPU_ONLY" == 0 ]] && echo cuda); do
    compgen -G "$PATCH_DIR/$group/*.patch" >/dev/null && ls "$PATCH_DIR/$group"/*.patch
  done
  return 0
}

build_key() {
  # Everything that changes the result: commit, flags, python, toolkit, the patches' contents.
  {
    echo "commit=$CAFFE_COMMIT cpu_only=$CPU_ONLY cuda_arch=${CUDA_ARCH:-} with_cudnn=${WITH_CUDNN:-} blas=$BLAS python=$PYTHON${CXX:+ cxx=$CXX}"
    [[ "$CPU_ONLY" == 0 ]] && echo "cuda_home=$CUDA_HOME cuda=$(cuda_version) cudnn=$([[ "$WITH_CUDNN" == 1 ]] && cudnn_version)"
    local p
    for p in $(patch_files); do sha256sum "$p" | cut -d' ' -f1; done
  } | sha256sum | cut -d' ' -f1
}

prepare_tree() {  # prepare_tree SRC : the manifest's files of SRC in CAFFE_PREFIX, checked, patched
  local src=$1
  if [[ -e "$CAFFE_PREFIX" ]]; then
    if [[ -f "$CAFFE_PREFIX/$OWNER_NAME" || -z "$(ls -A "$CAFFE_PREFIX")" ]]; then
      rm -rf "$CAFFE_PREFIX"
    else
      die "$CAFFE_PREFIX exists and was not made by this script: remove it or choose another CAFFE_PREFIX"
    fi
  fi
  mkdir -p "$CAFFE_PREFIX"
  touch "$CAFFE_PREFIX/$OWNER_NAME"  # marks the tree as ours even if this build fails midway
  # Only the manifest's files: whatever else SRC holds (a build directory, generated files, local
  # additions) cannot reach the build.
  manifest_files | (cd "$src" && tar -T - -cf - 2>/dev/null) | tar -xf - -C "$CAFFE_PREFIX" ||
    true  # a missing file is named by the check below
  check_source "$CAFFE_PREFIX"
  log "source checked: $(manifest_files | wc -l) files match $(basename "$MANIFEST")"
  local p
  for p in $(patch_files); do
    log "patch $(basename "$p")"
    patch -d "$CAFFE_PREFIX" -p1 --forward --quiet <"$p"
  done
}

blas_library() {  # the BLAS the built library actually loads
  ldd "$CAFFE_PREFIX/build/lib/libcaffe.so" | awk '/blas|atlas|mkl/ && !/cublas/ {print $3; exit}'
}

write_info() {  # write_info ORIGIN
  cat >"$CAFFE_PREFIX/$INFO_NAME" <<INFO
CAFFE_COMMIT=$CAFFE_COMMIT
CAFFE_SOURCE="$1"
CAFFE_SOURCE_CHECK="$(manifest_files | wc -l) files match $(basename "$MANIFEST") (sha256 $(sha256sum "$MANIFEST" | cut -d' ' -f1))"
CAFFE_CPU_ONLY=$CPU_ONLY
CAFFE_CUDA_ARCH="${CUDA_ARCH:-}"
CAFFE_CUDA_VERSION=$([[ "$CPU_ONLY" == 0 ]] && cuda_version)
CAFFE_WITH_CUDNN=$WITH_CUDNN
CAFFE_CUDNN_VERSION=$([[ "$WITH_CUDNN" == 1 ]] && cudnn_version)
CAFFE_BLAS=$BLAS
CAFFE_BLAS_LIBRARY=$(blas_library)
CAFFE_PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
CAFFE_PATCHES="$(for p in $(patch_files); do basename "$p"; done | tr '\n' ' ' | sed 's/ $//')"
INFO
}

print_result() {
  if [[ "$PRINT_ENV" == 1 ]]; then
    echo "export CAFFE_ROOT=$CAFFE_PREFIX"
    echo "export PYTHONPATH=$CAFFE_PREFIX/python\${PYTHONPATH:+:\$PYTHONPATH}"
    return
  fi
  echo "Caffe $CAFFE_COMMIT built in $CAFFE_PREFIX ($( [[ "$CPU_ONLY" == 1 ]] && echo CPU-only || echo "CUDA, cuDNN=$WITH_CUDNN")), pycaffe for $PYTHON."
  echo "Use it with:"
  echo "  export CAFFE_ROOT=$CAFFE_PREFIX"
  echo "  export PYTHONPATH=$CAFFE_PREFIX/python\${PYTHONPATH:+:\$PYTHONPATH}"
}

is_built() {  # is_built KEY : CAFFE_PREFIX holds a finished build with this key
  [[ -f "$CAFFE_PREFIX/$STAMP_NAME" && "$(cat "$CAFFE_PREFIX/$STAMP_NAME")" == "$1" ]] &&
    compgen -G "$CAFFE_PREFIX/python/caffe/_caffe*.so" >/dev/null
}

settle_flags() {  # CPU_ONLY, CUDA_HOME, CUDA_ARCH, WITH_CUDNN from the environment and the toolkit found
  NVCC=$(find_nvcc)
  if [[ -n "$NVCC" && "$NVCC" != "$CUDA_HOME/bin/nvcc" ]]; then
    CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")  # the toolkit of the nvcc on PATH
  fi
  if [[ -z "${CPU_ONLY:-}" ]]; then
    CPU_ONLY=1
    if cuda_toolkit_complete; then
      CPU_ONLY=0
    elif [[ -n "$NVCC" ]]; then
      log "nvcc found but no cuBLAS/cuRAND headers in $CUDA_HOME/include: building CPU-only"
    fi
  fi
  if [[ "$CPU_ONLY" == 0 ]]; then
    cuda_toolkit_complete ||
      die "CPU_ONLY=0 needs a CUDA toolkit with nvcc, cuBLAS and cuRAND (set CUDA_HOME; found nvcc: '${NVCC:-none}')"
    CUDA_ARCH=${CUDA_ARCH:-$(default_cuda_arch)}
    if [[ -z "${WITH_CUDNN:-}" ]]; then
      WITH_CUDNN=0
      [[ -n "$(cudnn_include_dir)" ]] && WITH_CUDNN=1
    fi
    [[ "$WITH_CUDNN" == 0 || -n "$(cudnn_include_dir)" ]] || die "WITH_CUDNN=1 but no cudnn.h under $CUDA_HOME/include or /usr/include"
  else
    CUDA_ARCH=""
    WITH_CUDNN=0
  fi
}

main() {
  case "$ACTION" in
    fetch) obtain_source; return ;;
    install-packages) install_packages; return ;;
    check)
      check_source "$2"
      echo "$2: $(manifest_files | wc -l) files match $(basename "$MANIFEST")"
      return
      ;;
  esac
  settle_flags
  if [[ "$ACTION" == is-built ]]; then
    is_built "$(build_key)"
    return
  fi
  install_packages
  [[ -x "$PYTHON" ]] || die "PYTHON=$PYTHON is not an executable"
  local key
  key=$(build_key)
  if [[ "$FORCE" != 1 ]] && is_built "$key"; then
    log "cached: $CAFFE_PREFIX already holds this build (FORCE=1 rebuilds)"
    print_result
    return
  fi
  local src origin
  src=$(obtain_source)
  origin=$(source_origin "$src")
  log "building Caffe $CAFFE_COMMIT in $CAFFE_PREFIX (CPU_ONLY=$CPU_ONLY CUDA_ARCH='$CUDA_ARCH' WITH_CUDNN=$WITH_CUDNN BLAS=$BLAS JOBS=$JOBS)"
  prepare_tree "$src"
  cd "$CAFFE_PREFIX"
  configure
  make -j"$JOBS" lib tools pycaffe >&2
  PYTHONPATH="$CAFFE_PREFIX/python" "$PYTHON" -c 'import caffe' ||
    die "the build finished but 'import caffe' fails with $PYTHON"
  write_info "$origin"
  echo "$key" >"$CAFFE_PREFIX/$STAMP_NAME"
  print_result
}

main "$@"
