"""The relocatable Caffe bundle (docker/caffe-bundle.sh), checked the way a target machine would use it.

Set HARNESS_CAFFE_BUNDLE to a bundle (.tar.gz) and HARNESS_BUNDLE_PYTHON to an interpreter of the
bundle's Python version with numpy 2 and, for the CUDA libraries, NVIDIA's cu13 wheels (nvidia-cublas,
nvidia-cudnn-cu13, nvidia-curand, nvidia-cuda-runtime: what PyTorch's CUDA 13 wheels install) or a
system CUDA 13. The bundle is unpacked into a fresh directory; nothing of the build machine is used.
Without the two variables every test here skips (making a bundle needs a GPU build: docs/caffe.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

BUNDLE = os.environ.get("HARNESS_CAFFE_BUNDLE")
PYTHON = os.environ.get("HARNESS_BUNDLE_PYTHON")
pytestmark = pytest.mark.skipif(not (BUNDLE and PYTHON),
                                reason="HARNESS_CAFFE_BUNDLE and HARNESS_BUNDLE_PYTHON are not set")
CUDA_SONAMES = re.compile(r"^lib(cudart|cublas|cublasLt|curand|cudnn)\.so")
MAX_BYTES = 45 * 1024 * 1024

#: A convolution, ReLU, max pooling, inner product and softmax with engine CAFFE on the CPU, against numpy.
NET_CHECK = r"""
import sys, tempfile, numpy as np, caffe
proto = '''input: "data" input_shape { dim: 2 dim: 3 dim: 16 dim: 16 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 engine: CAFFE weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { engine: CAFFE } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 engine: CAFFE } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" softmax_param { engine: CAFFE } }'''
with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
    f.write(proto)
caffe.set_mode_cpu()
net = caffe.Net(f.name, caffe.TEST)
x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
net.blobs["data"].data[...] = x
out = net.forward()["prob"]
w, b = net.params["conv"][0].data, net.params["conv"][1].data
cols = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))
conv = np.einsum("nchwij,ocij->nohw", cols, w) + b[None, :, None, None]
pool = np.maximum(conv, 0).reshape(2, 8, 7, 2, 7, 2).max(axis=(3, 5))
fc = pool.reshape(2, -1) @ net.params["fc"][0].data.T + net.params["fc"][1].data
e = np.exp(fc - fc.max(1, keepdims=True))
print(float(np.abs(out - e / e.sum(1, keepdims=True)).max()))
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert BUNDLE is not None
    where = tmp_path_factory.mktemp("bundle")
    with tarfile.open(BUNDLE) as tar:
        tar.extractall(where, filter="tar")
    return where / "caffe"


def run_python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "CAFFE_ROOT")}
    assert PYTHON is not None
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                          env={**env, "PYTHONPATH": str(root / "python"), "GLOG_minloglevel": "2"})


def test_bundle_fits_the_carry_limit_and_records_what_it_is(root: Path) -> None:
    assert BUNDLE is not None and os.path.getsize(BUNDLE) <= MAX_BYTES
    info = dict(line.split("=", 1) for line in (root / "harness-build.env").read_text().splitlines())
    assert info["CAFFE_COMMIT"] == "9b891540183ddc834a02b2bd81b31afae71b2153"
    assert info["CAFFE_PYTHON"] == "" and info["CAFFE_BUNDLE_PYTHON"]
    assert (root / "build" / "lib" / "libcaffe.so").exists() and (root / "build" / "tools" / "caffe.bin").is_file()


def test_every_library_resolves_inside_the_bundle_but_cuda(root: Path) -> None:
    elves = [p for p in root.rglob("*") if p.is_file() and (".so" in p.name or p.suffix == ".bin")]
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    missing, outside = set(), set()
    for elf in elves:
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env, check=False).stdout
        for name, _, where in (line.strip().partition(" => ") for line in out.splitlines()):
            if where.startswith("not found") and not CUDA_SONAMES.match(name):
                missing.add(name)
            elif where.startswith("/") and not CUDA_SONAMES.match(name) and not where.startswith(str(root)):
                outside.add(Path(where.split(" (")[0]).name)
    assert not missing
    # from the system: only the C/C++ runtime, which every target has
    assert all(re.match(r"(ld-linux|libc|libm|libdl|librt|libpthread|libutil|libresolv|libstdc\+\+|libgcc_s)[.-]", n)
               for n in outside), outside


def test_import_caffe_with_only_numpy(root: Path) -> None:
    proc = run_python(root, "import caffe, google.protobuf, six, numpy; "
                            "print(caffe.__file__, google.protobuf.__version__, numpy.__version__)")
    assert proc.returncode == 0, proc.stderr
    caffe_file, _, numpy_version = proc.stdout.split()
    assert caffe_file == str(root / "python" / "caffe" / "__init__.py")
    assert numpy_version.startswith("2.")


def test_cpu_forward_with_engine_caffe_matches_numpy(root: Path) -> None:
    proc = run_python(root, NET_CHECK)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip().splitlines()[-1]) < 1e-5


def test_caffe_tool_runs_with_the_interpreters_cuda_wheels(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = subprocess.run([str(root / "build" / "tools" / "caffe"), "--version"], capture_output=True, text=True,
                          env={**env, "CAFFE_PYTHON": str(PYTHON)}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "version 1.0.0" in proc.stdout + proc.stderr
