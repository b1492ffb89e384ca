"""Per-layer profiler ranges: the PyTorch conversion marks each layer's call with ``layer:<name>`` when a
profiling run asks for it (``Session.mark_layers``), and only then. Checked on CPU with torch.profiler."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from torch.profiler import ProfilerActivity, profile

from harness.backends.base import RunTarget, get_backend
from harness.ir.build import load_graph
from harness.kernels.parsers import load_trace

NET = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
LAYERS = ["conv1", "relu1", "pool1", "fc", "prob"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def _captured(tmp_path: Path, mark: bool, forwards: int = 2):
    graph = load_graph("tiny.prototxt", text=NET)
    with get_backend("pytorch").load(RunTarget(graph, "tiny", 1)) as session:
        if mark:
            assert session.mark_layers() is True
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(forwards):
                session.forward()
    path = tmp_path / f"trace-{mark}.json"
    prof.export_chrome_trace(str(path))
    return load_trace(path)


def test_marked_layers_appear_as_ranges_in_order_around_their_ops(tmp_path: Path) -> None:
    trace = _captured(tmp_path, mark=True)
    ranges = sorted((r for r in trace.ranges if r.name.startswith("layer:")), key=lambda r: r.start_ns)
    assert [r.name for r in ranges] == [f"layer:{n}" for n in LAYERS] * 2
    convs = [op for op in trace.cpu_ops if op.name == "aten::conv2d"]
    conv_ranges = [r for r in ranges if r.name == "layer:conv1"]
    assert len(convs) == 2
    for op, rng in zip(sorted(convs, key=lambda o: o.start_ns), conv_ranges, strict=True):
        assert rng.start_ns <= op.start_ns and op.end_ns <= rng.end_ns  # the conv ran inside its layer's range


def test_unmarked_runs_have_no_layer_ranges(tmp_path: Path) -> None:
    trace = _captured(tmp_path, mark=False, forwards=1)
    assert any(op.name == "aten::conv2d" for op in trace.cpu_ops)
    assert not [r for r in trace.ranges if r.name.startswith("layer:")]


def test_harness_profile_torch_captures_layer_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness import zoo
    from harness.cli.main import main

    assert main(["profile", "squeezenet_v1.1", "--backend", "pytorch", "--tool", "torch", "--iters", "1",
                 "--device", "cpu", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (capture,) = (tmp_path / "profiles" / "captures").glob("*/kineto.json")
    trace = load_trace(capture)
    names = [r.name for r in sorted(trace.ranges, key=lambda r: r.start_ns) if r.name.startswith("layer:")]
    assert names == [f"layer:{layer.name}" for layer in zoo.resolve("squeezenet_v1.1").layers]


def test_backends_without_per_layer_host_code_say_so(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    graph = load_graph("tiny.prototxt", text=NET)
    with get_backend("onnxruntime").load(RunTarget(graph, "tiny", 1)) as session:
        assert session.mark_layers() is False
