"""Real out-of-memory in each framework backend becomes DeviceOutOfMemory (status ``oom``).

A child process imports the frameworks, limits its own address space (``RLIMIT_AS``) to what it uses
plus a headroom, and loads and runs networks that need more than that: the allocation failures are the
frameworks' own, not imitations. The sweep-level tests of the worker (status ``oom`` in a record) are
the lead's; these pin each backend's mapping at load and in forward.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

#: address space the child may add after its imports and the ONNX export
HEADROOM_MIB = 160
#: Deconvolution with stride 256 lifts a 5x5 input to 64 x 1025 x 1025 floats: 269 MB, weights 64 floats
BLOWUP = """
input: "data"
input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }
layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
        convolution_param { num_output: 64 kernel_size: 1 stride: 256 } }
"""
#: at B = 2^25 the input alone is 3.4 GB: drawing it fails before any framework sees it
PLAIN = """
input: "data"
input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
"""
HUGE_BATCH = 2 ** 25

CHILD = textwrap.dedent("""
    import json, resource, sys
    import cv2, onnxruntime, torch  # noqa: F401 - imported before the limit
    from harness.backends.base import RunTarget, get_backend
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource
    from harness.errors import DeviceOutOfMemory
    from harness.ir.build import load_graph

    cases, headroom = json.loads(sys.argv[1]), int(sys.argv[2]) * 2**20
    graphs = {path: load_graph(path) for path, _, _ in cases}
    for path, _, batch in cases:  # the export runs the network once: before the limit, where it fits
        if batch == 1:
            export_onnx(WeightSource(graphs[path]))
    limit = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = []
    for path, backend, batch in cases:
        stage = "load"
        try:
            with get_backend(backend).load(RunTarget(graphs[path], "net", batch)) as session:
                stage = "forward"
                session.forward()
            results.append("no out-of-memory")
        except DeviceOutOfMemory as exc:
            results.append(f"{stage}: DeviceOutOfMemory: {exc}")
        except Exception as exc:
            results.append(f"{stage}: {type(exc).__name__}: {exc}")
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    folder = tmp_path_factory.mktemp("oom")
    (folder / "blowup.prototxt").write_text(BLOWUP)
    (folder / "plain.prototxt").write_text(PLAIN)
    cases = [(str(folder / "blowup.prototxt"), b, 1) for b in ("pytorch", "onnxruntime", "opencv")] + \
            [(str(folder / "plain.prototxt"), b, HUGE_BATCH) for b in ("pytorch", "onnxruntime", "opencv")]
    env = {**os.environ, "HARNESS_CACHE_DIR": str(folder / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases), str(HEADROOM_MIB)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {(Path(path).stem, backend): result for (path, backend, _), result in zip(cases, results, strict=True)}


@pytest.mark.parametrize(("backend", "where", "framework_says"), [
    # PyTorch loads without running the network: the activation fails in the first timed forward
    ("pytorch", "forward: DeviceOutOfMemory: pytorch ran out of memory in forward of net B=1 on cpu",
     "DefaultCPUAllocator: can't allocate memory"),
    # ONNX Runtime and OpenCV run once at load (to see which provider/target ran each node)
    ("onnxruntime", "load: DeviceOutOfMemory: onnxruntime ran out of memory in forward of net B=1 on cpu",
     "Failed to allocate memory for requested buffer"),
    ("opencv", "load: DeviceOutOfMemory: opencv ran out of memory in forward of net B=1 on cpu",
     "(-4:Insufficient memory) Failed to allocate"),
])
def test_activation_out_of_memory(outcomes: dict, backend: str, where: str, framework_says: str) -> None:
    result = outcomes[("blowup", backend)]
    assert result.startswith(where) and framework_says in result, result


@pytest.mark.parametrize("backend", ["pytorch", "onnxruntime", "opencv"])
def test_input_out_of_memory_at_load(outcomes: dict, backend: str) -> None:
    result = outcomes[("plain", backend)]
    assert result.startswith(f"load: DeviceOutOfMemory: {backend} ran out of memory at load of net "
                             f"B={HUGE_BATCH} on cpu: Unable to allocate"), result
