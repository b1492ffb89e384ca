#!/usr/bin/env bash
# cuda-toolkit-from-wheels.sh PREFIX : a CUDA 13 toolkit for building Caffe, from NVIDIA's PyPI wheels.
#
# Assembles into PREFIX what docker/build-caffe.sh needs for a GPU build, with nothing but pip (no
# root, no system CUDA, no NVIDIA download site):
#   nvcc, ptxas, cicc, the CUDA runtime, Thrust/CUB (CCCL), cuBLAS, cuRAND  <- cuda-toolkit[...] wheels
#   cuDNN 9                                                                  <- nvidia-cudnn-cu13
# in the layout of an installed toolkit (bin/, include/, lib/, lib64 -> lib, nvvm/,
# targets/<arch>-linux/{include,lib}), so that PREFIX works as CUDA_HOME:
#
#   bash docker/cuda-toolkit-from-wheels.sh ~/cuda13
#   CUDA_HOME=~/cuda13 CPU_ONLY=0 CUDA_ARCH=90 WITH_CUDNN=1 CAFFE_PREFIX=~/caffe-cuda bash docker/build-caffe.sh
#
# The versions default to those PyTorch 2.11's Linux wheels depend on (cuda-toolkit 13.0.2, i.e.
# nvcc 13.0.88, runtime 13.0.96, cuBLAS 13.1.0.3, cuRAND 10.4.0.35; cuDNN 9.19.0.56), so a Caffe built
# against this toolkit runs with the CUDA libraries of a PyTorch environment (docker/caffe-bundle.sh).
#
# Environment variables (optional):
#   PYTHON                 an interpreter with pip (default: python3; the project's .venv/bin/python does)
#   CUDA_TOOLKIT_VERSION   the cuda-toolkit metapackage version (default 13.0.2)
#   CUDNN_VERSION          the nvidia-cudnn-cu13 version (default 9.19.0.56)
#
# The wheels ship only versioned sonames (libcublas.so.13); the unversioned names the linker asks for
# (-lcublas) are added as symlinks. Running it again with the same versions returns at once.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 PREFIX" >&2; exit 2; }
PYTHON=${PYTHON:-python3}
CUDA_TOOLKIT_VERSION=${CUDA_TOOLKIT_VERSION:-13.0.2}
CUDNN_VERSION=${CUDNN_VERSION:-9.19.0.56}

log() { echo "cuda-toolkit-from-wheels: $*" >&2; }
die() { log "error: $*"; exit 1; }

prefix=$(mkdir -p "$1" && cd "$1" && pwd)
readonly prefix
readonly stamp="$prefix/.harness-cuda-toolkit"
readonly requirements=("cuda-toolkit[nvcc,cudart,cublas,curand,cccl,crt,nvvm]==$CUDA_TOOLKIT_VERSION"
  "nvidia-cudnn-cu13==$CUDNN_VERSION")

if [[ -f "$stamp" && "$(cat "$stamp")" == "${requirements[*]}" ]]; then
  log "cached: $prefix already holds ${requirements[*]}"
  exit 0
fi
if [[ -n "$(ls -A "$prefix")" && ! -f "$stamp" ]]; then
  die "$prefix is not empty and was not made by this script: choose an empty or new PREFIX"
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "PYTHON=$PYTHON has no pip (set PYTHON to an interpreter with pip)"

case "$(uname -m)" in
  x86_64) target=x86_64-linux ;;
  aarch64) target=sbsa-linux ;;
  *) die "no CUDA wheels for $(uname -m)" ;;
esac

staging=$(mktemp -d "$prefix/.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
log "installing ${requirements[*]} (about 1.5 GB)"
"$PYTHON" -m pip install --quiet --no-compile --disable-pip-version-check --only-binary=:all: \
  --target "$staging" "${requirements[@]}"

find "$prefix" -mindepth 1 -maxdepth 1 ! -name "$(basename "$staging")" -exec rm -rf {} +
cuda="$staging/nvidia/cu13"
cudnn="$staging/nvidia/cudnn"
[[ -x "$cuda/bin/nvcc" && -f "$cuda/include/cublas_v2.h" && -f "$cuda/include/curand.h" ]] ||
  die "the wheels did not have the expected layout (nvidia/cu13/{bin/nvcc,include/cublas_v2.h,include/curand.h})"
[[ -f "$cudnn/include/cudnn.h" ]] || die "the cuDNN wheel did not have nvidia/cudnn/include/cudnn.h"

mv "$cuda/bin" "$cuda/include" "$cuda/lib" "$cuda/nvvm" "$prefix/"
mv "$cudnn/include"/* "$prefix/include/"
mv "$cudnn/lib"/* "$prefix/lib/"
mkdir -p "$prefix/share/dist-info"
mv "$staging"/*.dist-info "$prefix/share/dist-info/"

# Unversioned names for the linker: libcublas.so -> libcublas.so.13, and so on.
for lib in "$prefix"/lib/lib*.so.*; do
  name=$(basename "$lib")
  ln -sfn "$name" "$prefix/lib/${name%%.so.*}.so"
done
ln -sfn lib "$prefix/lib64"
# nvcc looks for headers and libraries under targets/<arch>-linux (its nvcc.profile's _TARGET_DIR_).
mkdir -p "$prefix/targets/$target"
ln -sfn ../../include "$prefix/targets/$target/include"
ln -sfn ../../lib "$prefix/targets/$target/lib"

echo "${requirements[*]}" >"$stamp"
log "done: CUDA $("$prefix/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p'), cuDNN $CUDNN_VERSION in $prefix" \
  "($(du -sh "$prefix" | cut -f1)); use it as CUDA_HOME=$prefix"
