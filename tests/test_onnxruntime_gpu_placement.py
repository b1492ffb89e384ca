"""ONNX Runtime on a GPU, decided on the CPU: the CUDA provider's options (IEEE fp32), and which nodes may run
on the CPU beside it. ORT's CUDA provider leaves shape arithmetic (Shape, Gather of a dimension, ...) to the
CPU on purpose; a GPU user expects such a session to count as a CUDA run, and any node that computes on the
CPU to make it 'unavailable'. The profile events are ORT's own, from a real CPU run of a network with a
computed shape (LRN, as AlexNet and GoogLeNet have), relabelled as a CUDA run would place them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from harness.backends.onnxruntime import (  # noqa: E402
    CPU_EP,
    CUDA_EP,
    check_providers,
    cuda_provider_options,
    node_providers,
    shape_arithmetic,
)

LRN_NET = '''name: "lrnpool"
input: "data" input_shape { dim: 1 dim: 3 dim: 15 dim: 15 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "norm" type: "LRN" bottom: "conv" top: "norm" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool" type: "Pooling" bottom: "norm" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
'''


def test_cuda_sessions_ask_for_ieee_fp32() -> None:
    assert cuda_provider_options(1) == {"device_id": 1, "use_tf32": "0"}


def test_shape_arithmetic_is_told_by_its_integer_outputs() -> None:
    def node(op: str, name: str, *types: str) -> dict:
        return {"cat": "Node", "name": f"{name}_kernel_time",
                "args": {"op_name": op, "provider": CPU_EP, "output_type_shape": [{t: [1]} for t in types]}}

    profile = [node("Shape", "s", "int64"), node("Gather", "g", "int64"), node("Gather", "embed", "float"),
               node("Concat", "dims", "int64"), node("Reshape", "r", "float"), node("Equal", "e", "bool"),
               node("Split", "mixed", "int64", "float"), {"cat": "Session", "name": "x", "args": {}}]
    assert shape_arithmetic(profile) == {"Shape:s", "Gather:g", "Concat:dims", "Equal:e"}


def test_shape_nodes_on_the_cpu_do_not_unmake_a_cuda_run_but_compute_does() -> None:
    ran = {CUDA_EP: ["Conv:conv1", "Relu:relu1"], CPU_EP: ["Shape:s", "Gather:g", "Conv:conv2"]}
    shapes = frozenset({"Shape:s", "Gather:g"})
    assert check_providers(ran, CUDA_EP, shapes) == f"1 of 5 nodes ran outside {CUDA_EP}: 1 on {CPU_EP} (Conv)"
    ran[CPU_EP].remove("Conv:conv2")
    assert check_providers(ran, CUDA_EP, shapes) is None
    assert check_providers(ran, CUDA_EP) is not None  # nothing excused: every CPU node counts
    assert check_providers({CPU_EP: ["Shape:s"]}, CUDA_EP, shapes) == f"no node ran on {CUDA_EP} (ran: {CPU_EP})"


def test_a_real_profile_of_an_lrn_network(tmp_path: Path) -> None:
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource, network_inputs
    from harness.ir.build import load_graph

    graph = load_graph("lrn.prototxt", text=LRN_NET)
    options = ort.SessionOptions()
    options.enable_profiling, options.profile_file_prefix = True, str(tmp_path / "run")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the shape nodes
    session = ort.InferenceSession(str(export_onnx(WeightSource(graph)).timing), options, providers=[CPU_EP])
    session.run(None, network_inputs(graph))
    profile = json.loads(Path(session.end_profiling()).read_text())
    shapes = shape_arithmetic(profile)
    ops = {n.split(":")[0] for n in shapes}
    assert "Shape" in ops and "Gather" in ops
    assert not ops & {"Conv", "Gemm", "MaxPool", "AveragePool", "Pow", "Div", "Pad"}  # float outputs: compute
    ran = node_providers(profile)[CPU_EP]
    # as a CUDA run places them: shape arithmetic on the CPU, everything else on the GPU
    placed = {CUDA_EP: [n for n in ran if n not in shapes], CPU_EP: [n for n in ran if n in shapes]}
    assert check_providers(placed, CUDA_EP, shapes) is None
    conv = next(n for n in placed[CUDA_EP] if n.startswith("Conv:"))
    placed[CUDA_EP].remove(conv)
    placed[CPU_EP].append(conv)
    assert "(Conv)" in check_providers(placed, CUDA_EP, shapes)


def test_a_cuda_session_loads_the_wheels_cuda_libraries_first(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The CUDA provider's library has no search path for pip's NVIDIA wheels and the worker imports no torch:
    load() has onnxruntime preload them for a CUDA target (what preload_dlls prints goes to the log, stderr),
    not for a CPU one."""
    import types

    from harness.backends import onnxruntime as backend
    from harness.backends.base import RunTarget
    from harness.zoo import zoo_graph

    calls: list[dict] = []

    def preload_dlls(**kwargs: bool) -> None:
        print("Failed to load libcudnn.so.9")  # as onnxruntime prints a library it did not find
        calls.append(kwargs)

    fake = types.SimpleNamespace(__version__="1.31.1", preload_dlls=preload_dlls,
                                 get_available_providers=lambda: [CUDA_EP, CPU_EP])
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", fake)
    monkeypatch.setattr(backend, "OnnxRuntimeSession", lambda target, mode: ("session", target.device, mode))
    graph = zoo_graph("squeezenet_v1.1")
    cpu = backend.OnnxRuntimeBackend().load(RunTarget(graph, "squeezenet_v1.1", 1, device="cpu"))
    assert cpu == ("session", "cpu", "opt-all") and calls == []
    backend.OnnxRuntimeBackend().load(RunTarget(graph, "squeezenet_v1.1", 1, device="cuda:0"))
    assert calls == [{"cuda": True, "cudnn": True, "msvc": False}]
    printed = capsys.readouterr()
    assert "Failed to load" not in printed.out and "Failed to load libcudnn.so.9" in printed.err
