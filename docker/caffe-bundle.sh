#!/usr/bin/env bash
# caffe-bundle.sh OUT.tar.gz : a relocatable Caffe for a machine that has none of Caffe's dependencies.
#
# Made from a GPU build of docker/build-caffe.sh (CAFFE_PREFIX, default /opt/caffe-cuda) on Debian; for a
# target machine that has a Python (BUNDLE_PYTHON's minor version) with numpy 2, and the CUDA libraries
# the build links (libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10, libcudnn.so.9: PyTorch's
# nvidia-* wheels provide them), and nothing else: no compiler, no package manager, no network.
#
#   CAFFE_PREFIX=/opt/caffe-cuda BUNDLE_PYTHON=/path/to/python3.12 bash docker/caffe-bundle.sh caffe-bundle.tar.gz
#   # on the target:
#   tar -xzf caffe-bundle.tar.gz && export CAFFE_ROOT=$PWD/caffe && harness doctor
#
# The bundle is a CAFFE_ROOT, laid out like a build:
#   caffe/harness-build.env          the build's record plus the bundle's (CAFFE_BUNDLE_*)
#   caffe/build/lib/libcaffe.so*     libcaffe (RUNPATH $ORIGIN/../../lib)
#   caffe/build/tools/caffe{,.bin}   the caffe tool; `caffe` is a wrapper that finds the wheels' CUDA libraries
#   caffe/python/caffe/              pycaffe; _caffe.so compiled here for BUNDLE_PYTHON and the numpy 2 C API,
#                                    against a Boost.Python built from the distribution's own Boost source
#                                    (apt-get source, the version of the installed Boost headers)
#   caffe/lib/                       every non-CUDA shared library the above load, except glibc, libstdc++
#                                    and libgcc_s (RUNPATH $ORIGIN)
#   caffe/vendor/                    six and the pure-Python protobuf matching the protoc that generated
#                                    caffe_pb2.py, used only where the target's Python has none
# caffe/python/caffe/_bundle.py (imported first by the bundle's caffe/__init__.py) loads the CUDA libraries
# from the target's NVIDIA wheels before pycaffe's extension, so no LD_LIBRARY_PATH is needed.
#
# Environment (optional): CAFFE_PREFIX; BUNDLE_PYTHON (default python3.12; must import numpy >= 2);
# BUNDLE_MAX_MIB (default 45: a larger bundle is an error); JOBS; XDG_CACHE_HOME (Boost.Python is built
# once into $XDG_CACHE_HOME/harness, default ~/.cache/harness, unless the distribution has one for that
# Python). Needs patchelf, and to build Boost.Python apt-get, dpkg-dev and bison (installed with apt-get
# as root when missing).
set -euo pipefail

[[ $# -eq 1 && "$1" == *.tar.gz ]] || { echo "usage: $0 OUT.tar.gz" >&2; exit 2; }
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
out=$(mkdir -p "$(dirname "$1")" && cd "$(dirname "$1")" && pwd)/$(basename "$1")
CAFFE_PREFIX=${CAFFE_PREFIX:-/opt/caffe-cuda}
BUNDLE_PYTHON=${BUNDLE_PYTHON:-python3.12}
BUNDLE_MAX_MIB=${BUNDLE_MAX_MIB:-45}
JOBS=${JOBS:-$(nproc)}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/harness"
readonly cuda_sonames='^lib(cudart|cublas|cublasLt|curand|cudnn)\.so'

log() { echo "caffe-bundle: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f "$CAFFE_PREFIX/harness-build.env" && -f "$CAFFE_PREFIX/build/lib/libcaffe.so" ]] ||
  die "$CAFFE_PREFIX holds no finished build of docker/build-caffe.sh (set CAFFE_PREFIX)"
py_ver=$("$BUNDLE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
  die "BUNDLE_PYTHON=$BUNDLE_PYTHON does not run"
numpy_include=$("$BUNDLE_PYTHON" -c 'import numpy; assert int(numpy.__version__.split(".")[0]) >= 2; print(numpy.get_include())') ||
  die "BUNDLE_PYTHON=$BUNDLE_PYTHON has no numpy >= 2 (pip install 'numpy>=2')"
py_include=$("$BUNDLE_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pv=${py_ver/./}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

install_tools() {  # install_tools COMMAND:PACKAGE... : the Debian packages of the commands that are missing
  local need=() tool
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
  done
  [[ ${#need[@]} -eq 0 ]] && return
  [[ $(id -u) -eq 0 ]] || die "install ${need[*]} (sudo apt-get install ${need[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}
install_tools patchelf:patchelf

# ---- Boost.Python for BUNDLE_PYTHON: the distribution's, else built from the source of its Boost ------
multiarch=$(gcc -print-multiarch)
boost_pkg=$(dpkg -S /usr/include/boost/version.hpp | cut -d: -f1)
boost_src=$(dpkg-query -W -f='${source:Package}=${source:Version}' "$boost_pkg")
if compgen -G "/usr/lib/$multiarch/libboost_python$pv.so*" >/dev/null; then
  boost_dir="/usr/lib/$multiarch"  # e.g. Ubuntu 24.04's Boost.Python is built for its Python 3.12
else
  boost_dir="$cache/boost-python$pv-${boost_src#*=}"
fi
if [[ ! -f "$boost_dir/libboost_python$pv.so" ]]; then
  log "building Boost.Python for Python $py_ver from Debian's $boost_src"
  install_tools dpkg-source:dpkg-dev bison:bison
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  bash "$SCRIPT_DIR/apt-source.sh" "$codename" "$boost_src" "$work/boost-dl"
  dpkg-source -x "$work"/boost-dl/*.dsc "$work/boost" >/dev/null
  # Debian's +ds tarball leaves out the generated parser of Boost.Build's engine (debian/rules runs bison).
  (cd "$work/boost/tools/build" && bison -y -d -o src/engine/jamgram.cpp src/engine/jamgram.y)
  base=$("$BUNDLE_PYTHON" -c 'import sys; print(sys.base_prefix)')
  exe=$("$BUNDLE_PYTHON" -c 'import sys, os; print(os.path.realpath(sys.executable))')
  (cd "$work/boost" && ./bootstrap.sh --with-libraries=python --with-python="$exe" --with-python-version="$py_ver" \
    --with-python-root="$base" >&2)
  sed -i "s|^ *using python : .*|    using python : $py_ver : $exe : $py_include : $base/lib ;|" "$work/boost/project-config.jam"
  (cd "$work/boost" && ./b2 -j"$JOBS" -q python="$py_ver" variant=release link=shared threading=multi \
    runtime-link=shared --with-python --build-dir="$work/boost-build" stage >&2)
  mkdir -p "$boost_dir"
  cp -a "$work/boost/stage/lib/libboost_python$pv.so"* "$boost_dir/"
fi

# ---- pycaffe for BUNDLE_PYTHON: Caffe's own Makefile rule, with the build's flags -----------------
log "compiling pycaffe for Python $py_ver (numpy $("$BUNDLE_PYTHON" -c 'import numpy; print(numpy.__version__)') headers)"
cp -a "$CAFFE_PREFIX" "$work/caffe-build"
rm -f "$work/caffe-build/python/caffe/_caffe.so"
# Not linked to libpython: the extension takes the interpreter's symbols, as extension modules do.
# NumPy's headers first: Debian's python3-numpy has NumPy 1.x headers in /usr/include/python3.X/numpy.
make -C "$work/caffe-build" -j"$JOBS" pycaffe PYTHON_INCLUDE="$numpy_include $py_include" \
  PYTHON_LIBRARIES="boost_python$pv" PYTHON_LIB="$boost_dir" >&2

# ---- assemble ---------------------------------------------------------------------------------------
root="$work/bundle/caffe"
mkdir -p "$root/build/lib" "$root/build/tools" "$root/lib" "$root/python" "$root/vendor"
cp -L "$CAFFE_PREFIX/build/lib/libcaffe.so.1.0.0" "$root/build/lib/"
ln -s libcaffe.so.1.0.0 "$root/build/lib/libcaffe.so"
cp -L "$CAFFE_PREFIX/build/tools/caffe.bin" "$root/build/tools/"
cp "$SCRIPT_DIR/bundle/caffe" "$root/build/tools/caffe"
(cd "$work/caffe-build/python" && tar --exclude=caffe/test --exclude='*.pyc' --exclude=__pycache__ -cf - caffe) |
  tar -xf - -C "$root/python"
elves=("$root/build/lib/libcaffe.so.1.0.0" "$root/build/tools/caffe.bin" "$root/python/caffe/_caffe.so")
LD_LIBRARY_PATH="$boost_dir" bash "$SCRIPT_DIR/collect-libs.sh" "$root/lib" "${elves[@]}" >/dev/null
rm -f "$root"/lib/libcaffe.so*  # collected as a dependency of pycaffe and the tool; it lives in build/lib

cuda_needed=$(for f in "${elves[@]}"; do patchelf --print-needed "$f"; done | { grep -E "$cuda_sonames" || true; } | sort -u |
  awk '/cudart/ {print 0, $0; next} /cublasLt/ {print 1, $0; next} {print 2, $0}' | sort | cut -d' ' -f2 | tr '\n' ' ')
sed "s|@CUDA_LIBRARIES@|${cuda_needed% }|" "$SCRIPT_DIR/bundle/_bundle.py" >"$root/python/caffe/_bundle.py"
{
  echo "from . import _bundle  # the relocatable bundle: CUDA libraries and vendored modules first (_bundle.py)"
  cat "$work/caffe-build/python/caffe/__init__.py"
} >"$root/python/caffe/__init__.py"

# RUNPATHs relative to each file: the bundle works wherever it is unpacked.
patchelf --set-rpath '$ORIGIN/../../lib' "$root/build/lib/libcaffe.so.1.0.0"
patchelf --set-rpath '$ORIGIN/../lib:$ORIGIN/../../lib' "$root/build/tools/caffe.bin"
patchelf --set-rpath '$ORIGIN/../../build/lib:$ORIGIN/../../lib' "$root/python/caffe/_caffe.so"
for lib in "$root"/lib/*.so*; do
  [[ -L "$lib" ]] || patchelf --set-rpath '$ORIGIN' "$lib"
done
find "$root" -type f \( -name '*.so*' -o -name '*.bin' \) -exec strip --strip-unneeded {} +

# Pure-Python modules for targets without them: six, and protobuf of the protoc release that generated
# caffe_pb2.py (protoc 3.X.Y pairs with the Python package 4.X.Y from 3.21 on, 3.X.Y before).
protoc_version=$(sed -n 's/^# Protobuf Python Version: //p' "$root/python/caffe/proto/caffe_pb2.py")
[[ -n "$protoc_version" ]] || protoc_version=$(protoc --version | awk '{print $2}')
minor=$(echo "$protoc_version" | cut -d. -f2)
protobuf_py=$protoc_version
((minor >= 21)) && protobuf_py="4.${protoc_version#*.}"
"$BUNDLE_PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$py_ver" \
  --implementation py --abi none --platform any -d "$work/wheels" "protobuf==$protobuf_py" six
for wheel in "$work"/wheels/*.whl; do
  "$BUNDLE_PYTHON" -m zipfile -e "$wheel" "$work/unpacked"
done
cp -a "$work/unpacked/google" "$work/unpacked/six.py" "$root/vendor/"
find "$root/vendor" -name '*.pyi' -delete

# The record: the build's, plus what the bundle is for. CAFFE_PYTHON is left empty: the bundle runs
# under any interpreter of the same minor version with numpy 2. The BLAS is the bundle's copy.
blas=$(sed -n 's/^CAFFE_BLAS_LIBRARY=//p' "$CAFFE_PREFIX/harness-build.env")
sed -e 's/^CAFFE_PYTHON=.*/CAFFE_PYTHON=/' -e "s|^CAFFE_BLAS_LIBRARY=.*|CAFFE_BLAS_LIBRARY=lib/$(basename "$blas")|" \
  "$CAFFE_PREFIX/harness-build.env" >"$root/harness-build.env"
cat >>"$root/harness-build.env" <<EOF
CAFFE_BUNDLE_PYTHON=$py_ver
CAFFE_BUNDLE_NUMPY=">=2 (compiled against numpy $("$BUNDLE_PYTHON" -c 'import numpy; print(numpy.__version__)'))"
CAFFE_BUNDLE_BOOST_PYTHON="$boost_src"
CAFFE_BUNDLE_PROTOBUF_VENDORED="$protobuf_py"
CAFFE_BUNDLE_CUDA_LIBRARIES="${cuda_needed% }"
EOF

# Check: every library of the bundle resolves inside it, except the CUDA ones the target provides.
unresolved=$(cd "$root" && find . -type f \( -name '*.so*' -o -name '*.bin' \) -exec env -u LD_LIBRARY_PATH ldd {} + |
  awk '/not found/ {print $1}' | grep -vE "$cuda_sonames" | sort -u || true)
[[ -z "$unresolved" ]] || die "libraries not in the bundle: $unresolved"

tar -C "$work/bundle" -cf - caffe | gzip -9 >"$out"
size=$(stat -c %s "$out")
log "$out: $((size / 1024 / 1024)) MiB ($size bytes); unpacked $(du -sh "$root" | cut -f1); CUDA libraries from the target: ${cuda_needed% }"
((size <= BUNDLE_MAX_MIB * 1024 * 1024)) || die "the bundle is larger than BUNDLE_MAX_MIB=$BUNDLE_MAX_MIB MiB"
