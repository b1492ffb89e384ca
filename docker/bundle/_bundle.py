"""The relocatable Caffe bundle's loader (docker/caffe-bundle.sh), imported first by caffe/__init__.py.

The bundle carries libcaffe, pycaffe and every library they need except the CUDA ones, so that it
stays small and uses the CUDA libraries of the machine it runs on. Before pycaffe's extension loads:

1. CUDA libraries. Each library libcaffe needs (CUDA_LIBRARIES, filled in when the bundle was made)
   is loaded here with RTLD_GLOBAL: from the NVIDIA wheels on sys.path first (``nvidia/cu13/lib``,
   ``nvidia/cudnn/lib``, as PyTorch installs them: the CUDA 13 libraries the bundle was built against,
   the same PyTorch in this interpreter uses), else from the loader's usual search path (a system CUDA,
   LD_LIBRARY_PATH). Wheels first, because a system library of the same soname may be of another CUDA
   major (a CUDA 12 ``libcudnn.so.9``, say) and would otherwise win. A library already loaded under its
   soname satisfies libcaffe's dependency on that soname, so nobody has to set LD_LIBRARY_PATH. Missing
   ones are left to the loader, whose error then names them.
2. Python modules pycaffe imports besides numpy: six and protobuf. Where this interpreter has none,
   the bundle's copies (``vendor/``: six, and the pure-Python protobuf of the release that matches the
   protoc that generated caffe_pb2.py) are appended to sys.path, after everything installed.

``python .../caffe/_bundle.py --library-dirs`` prints the wheel directories found (for the ``caffe`` tool).
"""

import ctypes
import importlib.util
import os
import sys

CUDA_LIBRARIES = "@CUDA_LIBRARIES@".split()  # noqa: SIM905  (caffe-bundle.sh fills in a space-separated list)
WHEEL_LIBRARY_DIRS = ("nvidia/cu13/lib", "nvidia/cudnn/lib", "nvidia/cublas/lib", "nvidia/curand/lib",
                      "nvidia/cuda_runtime/lib")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wheel_library_dirs():
    dirs = []
    for entry in sys.path:
        for sub in WHEEL_LIBRARY_DIRS:
            path = os.path.join(entry or ".", sub)
            if os.path.isdir(path) and path not in dirs:
                dirs.append(path)
    return dirs


def load_cuda_libraries():
    """Each of CUDA_LIBRARIES from the first wheel directory that has it, else by soname; the paths taken."""
    dirs = wheel_library_dirs()
    loaded = []
    for name in CUDA_LIBRARIES:
        candidates = [os.path.join(d, name) for d in dirs if os.path.exists(os.path.join(d, name))] + [name]
        for candidate in candidates:
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            loaded.append(candidate)
            break
    return loaded


def add_vendored_modules():
    if importlib.util.find_spec("six") is None or importlib.util.find_spec("google.protobuf") is None:
        sys.path.append(os.path.join(ROOT, "vendor"))


if __name__ == "__main__":
    if sys.argv[1:] == ["--library-dirs"]:
        print(os.pathsep.join(wheel_library_dirs()))
else:
    load_cuda_libraries()
    add_vendored_modules()
