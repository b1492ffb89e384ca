#!/usr/bin/env bash
# Build upstream BVLC Caffe (with pycaffe for Python 3) at the commit the harness is pinned to.
#
# The one recipe used by the Dockerfiles and by users on bare metal:
#
#   CAFFE_SRC=/path/to/caffe-source bash docker/build-caffe.sh          # CPU-only (default without CUDA)
#   CUDA_ARCH="80 90" WITH_CUDNN=1 bash docker/build-caffe.sh           # GPU build, clones the source
#   eval "$(bash docker/build-caffe.sh --print-env)"                     # set CAFFE_ROOT + PYTHONPATH
#
# Environment variables (all optional):
#   CAFFE_SRC      a BVLC Caffe source tree at CAFFE_COMMIT (it is copied, never modified). Unset: the
#                  upstream repository is cloned with git into "$CAFFE_PREFIX.src" and checked out.
#   CAFFE_PREFIX   where Caffe is built and stays (the CAFFE_ROOT; pycaffe is CAFFE_PREFIX/python).
#                  Default: /opt/caffe. Anything already there is replaced only if it carries this
#                  script's build stamp (or is empty).
#   CAFFE_REPO     the repository cloned when CAFFE_SRC is unset (default: https://github.com/BVLC/caffe.git).
#   CPU_ONLY       1: CPU-only build. 0: CUDA build (fails without a toolkit). Default: 0 if nvcc is found
#                  in CUDA_HOME/bin or on PATH, else 1.
#   CUDA_HOME      the CUDA toolkit (default: /usr/local/cuda).
#   CUDA_ARCH      SM numbers to compile for, e.g. "75 80 86 90" (default: every SM the toolkit still
#                  supports among 60..120, plus PTX of the newest one for forward compatibility).
#   WITH_CUDNN     1/0: build the CUDNN engine. Default: 1 when a GPU build finds cudnn.h, else 0.
#   BLAS           open (OpenBLAS, default) or atlas.
#   PYTHON         the Python 3 interpreter pycaffe is built for (default: /usr/bin/python3, the
#                  distribution's, whose numpy and boost-python packages match it).
#   JOBS           parallel compile jobs (default: nproc).
#   SKIP_APT       1: do not install Debian/Ubuntu packages (they must be present already).
#   FORCE          1: rebuild even if a build with the same commit, flags and patches exists.
#   --print-env    as the only argument: after the (possibly cached) build print only the two
#                  export lines, for eval.
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

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly PATCH_DIR="$SCRIPT_DIR/patches"

PRINT_ENV=0
if [[ "${1:-}" == "--print-env" ]]; then
  PRINT_ENV=1
elif [[ $# -gt 0 ]]; then
  echo "usage: [VAR=value ...] $0 [--print-env]   (see the header of this script for the variables)" >&2
  exit 2
fi

log() { echo "build-caffe: $*" >&2; }
die() { log "error: $*"; exit 1; }

CAFFE_PREFIX=${CAFFE_PREFIX:-/opt/caffe}
CAFFE_REPO=${CAFFE_REPO:-https://github.com/BVLC/caffe.git}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
BLAS=${BLAS:-open}
PYTHON=${PYTHON:-/usr/bin/python3}
JOBS=${JOBS:-$(nproc)}
SKIP_APT=${SKIP_APT:-0}
FORCE=${FORCE:-0}

find_nvcc() {
  if [[ -x "$CUDA_HOME/bin/nvcc" ]]; then
    echo "$CUDA_HOME/bin/nvcc"
  else
    command -v nvcc || true
  fi
}
NVCC=$(find_nvcc)
if [[ -n "$NVCC" && "$NVCC" != "$CUDA_HOME/bin/nvcc" ]]; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")  # the toolkit of the nvcc on PATH
fi
cuda_toolkit_complete() {  # Caffe needs cuBLAS and cuRAND besides nvcc and the runtime.
  [[ -n "$NVCC" && -f "$CUDA_HOME/include/cublas_v2.h" && -f "$CUDA_HOME/include/curand.h" ]]
}
if [[ -z "${CPU_ONLY:-}" ]]; then
  CPU_ONLY=1
  if cuda_toolkit_complete; then
    CPU_ONLY=0
  elif [[ -n "$NVCC" ]]; then
    log "nvcc found but no cuBLAS/cuRAND headers in $CUDA_HOME/include: building CPU-only"
  fi
fi
if [[ "$CPU_ONLY" == 0 ]] && ! cuda_toolkit_complete; then
  die "CPU_ONLY=0 needs a CUDA toolkit with nvcc, cuBLAS and cuRAND (set CUDA_HOME; found nvcc: '${NVCC:-none}')"
fi

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
apt_packages() {
  # Names valid on Debian bookworm and Ubuntu 16.04 / 22.04.
  local blas_pkg=libopenblas-dev
  [[ "$BLAS" == atlas ]] && blas_pkg=libatlas-base-dev
  echo build-essential git ca-certificates patch pkg-config \
    libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev \
    libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev \
    "$blas_pkg" python3-dev python3-numpy python3-protobuf python3-skimage
}

install_packages() {
  if [[ "$SKIP_APT" == 1 ]]; then
    log "SKIP_APT=1: not installing packages"
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install the packages of apt_packages() yourself and set SKIP_APT=1"
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  local missing=()
  local pkg
  # shellcheck disable=SC2046 # word splitting of the package list is intended
  for pkg in $(apt_packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all packages present"
    return
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
default_cuda_arch() {
  local version major
  version=$("$NVCC" --version | sed -n 's/.*release \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1.\2/p')
  major=${version%%.*}
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
  fi

  cat >Makefile.config <<EOF
# Generated by docker/build-caffe.sh (harness) for commit $CAFFE_COMMIT.
$gpu_lines
USE_OPENCV := 0
USE_LEVELDB := 0
USE_LMDB := 0
USE_HDF5 := 1
BLAS := $BLAS
${blas_include:+BLAS_INCLUDE := $blas_include}
PYTHON_INCLUDE := $py_include $numpy_include
PYTHON_LIBRARIES := $boost_py python$py_ver
PYTHON_LIB := /usr/lib/$multiarch
INCLUDE_DIRS += \$(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial
LIBRARY_DIRS += \$(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/$multiarch/hdf5/serial
BUILD_DIR := build
DISTRIBUTE_DIR := distribute
Q ?= @
EOF
}

# ---------------------------------------------------------------------------------------------
# Source, patches, cache
# ---------------------------------------------------------------------------------------------
patch_files() {
  local group
  for group in common $([[ "$CPU_ONLY" == 0 ]] && echo cuda); do
    compgen -G "$PATCH_DIR/$group/*.patch" >/dev/null && ls "$PATCH_DIR/$group"/*.patch
  done
  return 0
}

build_key() {
  # Everything that changes the result: commit, flags, python, the patches' contents.
  {
    echo "commit=$CAFFE_COMMIT cpu_only=$CPU_ONLY cuda_arch=${CUDA_ARCH:-} with_cudnn=${WITH_CUDNN:-} blas=$BLAS python=$PYTHON"
    local p
    for p in $(patch_files); do sha256sum "$p" | cut -d' ' -f1; done
  } | sha256sum | cut -d' ' -f1
}

obtain_source() {
  if [[ -n "${CAFFE_SRC:-}" ]]; then
    [[ -f "$CAFFE_SRC/Makefile" && -f "$CAFFE_SRC/src/caffe/net.cpp" ]] || die "CAFFE_SRC=$CAFFE_SRC is not a Caffe source tree"
    if [[ -d "$CAFFE_SRC/.git" ]]; then
      local head
      head=$(git -C "$CAFFE_SRC" rev-parse HEAD)
      [[ "$head" == "$CAFFE_COMMIT" ]] || die "CAFFE_SRC is at $head, not at $CAFFE_COMMIT"
    fi
    echo "$CAFFE_SRC"
    return
  fi
  local clone="$CAFFE_PREFIX.src"
  if [[ ! -d "$clone/.git" ]]; then
    log "cloning $CAFFE_REPO into $clone"
    git clone --quiet "$CAFFE_REPO" "$clone"
  fi
  git -C "$clone" -c advice.detachedHead=false checkout --quiet "$CAFFE_COMMIT"
  echo "$clone"
}

prepare_tree() {  # prepare_tree SRC : fresh copy of SRC in CAFFE_PREFIX with the patches applied
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
  (cd "$src" && tar --exclude=.git --exclude=./build --exclude=./.build_release -cf - .) | tar -xf - -C "$CAFFE_PREFIX"
  local p
  for p in $(patch_files); do
    log "patch $(basename "$p")"
    patch -d "$CAFFE_PREFIX" -p1 --forward --quiet <"$p"
  done
}

blas_library() {  # the BLAS the built library actually loads
  ldd "$CAFFE_PREFIX/build/lib/libcaffe.so" | awk '/blas|atlas|mkl/ {print $3; exit}'
}

write_info() {
  cat >"$CAFFE_PREFIX/$INFO_NAME" <<EOF
CAFFE_COMMIT=$CAFFE_COMMIT
CAFFE_CPU_ONLY=$CPU_ONLY
CAFFE_CUDA_ARCH="${CUDA_ARCH:-}"
CAFFE_WITH_CUDNN=$WITH_CUDNN
CAFFE_BLAS=$BLAS
CAFFE_BLAS_LIBRARY=$(blas_library)
CAFFE_PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
CAFFE_PATCHES="$(for p in $(patch_files); do basename "$p"; done | tr '\n' ' ')"
EOF
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

main() {
  install_packages
  [[ -x "$PYTHON" ]] || die "PYTHON=$PYTHON is not an executable"
  if [[ "$CPU_ONLY" == 0 ]]; then
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
  local key
  key=$(build_key)
  if [[ "$FORCE" != 1 && -f "$CAFFE_PREFIX/$STAMP_NAME" && "$(cat "$CAFFE_PREFIX/$STAMP_NAME")" == "$key" ]] &&
    compgen -G "$CAFFE_PREFIX/python/caffe/_caffe*.so" >/dev/null; then
    log "cached: $CAFFE_PREFIX already holds this build (FORCE=1 rebuilds)"
    print_result
    return
  fi
  local src
  src=$(obtain_source)
  log "building Caffe $CAFFE_COMMIT from $src in $CAFFE_PREFIX (CPU_ONLY=$CPU_ONLY CUDA_ARCH='$CUDA_ARCH' WITH_CUDNN=$WITH_CUDNN BLAS=$BLAS JOBS=$JOBS)"
  prepare_tree "$src"
  cd "$CAFFE_PREFIX"
  configure
  make -j"$JOBS" lib tools pycaffe >&2
  PYTHONPATH="$CAFFE_PREFIX/python" "$PYTHON" -c 'import caffe' ||
    die "the build finished but 'import caffe' fails with $PYTHON"
  write_info
  echo "$key" >"$CAFFE_PREFIX/$STAMP_NAME"
  print_result
}

main
