#!/usr/bin/env bash
# collect-libs.sh DEST ELF... : copy the shared libraries the given ELF files load (as ldd resolves
# them) into DEST, except those the target provides itself: glibc, libstdc++/libgcc, libpython, the
# driver, and the CUDA/cuDNN libraries of PyTorch's NVIDIA wheels.
#
# Why: docker/Dockerfile builds Caffe in a build stage with compilers and -dev packages and runs it in an
# image without them; Caffe's own dependencies (boost, protobuf, glog, gflags, hdf5, openblas) come along
# this way instead of installing their -dev packages (and compilers) a second time.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 DEST ELF..." >&2; exit 2; }
dest=$1
shift
mkdir -p "$dest"

provided='^(ld-linux|libc|libm|libdl|librt|libpthread|libutil|libresolv|libstdc\+\+|libgcc_s|libpython3|libcuda|libcudart|libcublas|libcublasLt|libcurand|libcudnn|libnvrtc|libnvidia|libnvJitLink)[.-]'

ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u | while read -r lib; do
  name=$(basename "$lib")
  if [[ "$name" =~ $provided ]]; then
    continue
  fi
  # -L: copy the file a soname symlink points to, under the soname the loader asks for.
  cp -L "$lib" "$dest/$name"
  echo "$name"
done
