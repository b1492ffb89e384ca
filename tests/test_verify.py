"""``harness verify`` and the backend comparison table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.convert.verify import verify
from harness.report.compare import comparison_table, format_comparison
from harness.results.records import Config, LatencyFigures, Record

NET = """
name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 13 dim: 13 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 7 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
FRAMEWORKS = ["pytorch", "onnxruntime", "opencv"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # one cache per test session: every exported ONNX / written caffemodel is made once
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "verify-cache"))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.prototxt"
    path.write_text(NET)
    return path


def test_cli_agrees_and_reports_pre_softmax(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(small), "--backends", ",".join(FRAMEWORKS), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "pytorch vs opencv" in out and "pre-softmax" in out and "AGREE" in out


def test_cli_json_and_a_tolerance_nothing_meets(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(small), "--backends", "pytorch,opencv", "--tol", "1e-30", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data[0]["ok"] is False and {e["blob"] for e in data[0]["errors"]} >= {"prob", "fc"}


@pytest.mark.parametrize("args, message", [
    (["--backends", "pytorch,tensorflow"], "unknown backend(s) tensorflow"),
    (["--backends", ""], "unknown backend(s) (none given)"),
    (["--tol", "nan"], "expected a finite number > 0, got 'nan'"),
    (["--tol", "inf"], "expected a finite number > 0, got 'inf'"),
    (["--tol", "-0.001"], "expected a finite number > 0, got '-0.001'"),
    (["--tol", "0"], "expected a finite number > 0, got '0'"),
    (["--device", "gpu0"], "unknown device 'gpu0' (use cpu or cuda:N)"),
])
def test_cli_bad_input_is_a_usage_error(small: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                        message: str) -> None:
    with pytest.raises(SystemExit) as exit_:  # argparse: usage and exit 2, before anything runs
        main(["verify", str(small), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_device_reaches_every_backend(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends import base
    from harness.errors import BackendUnavailable

    targets = []

    class Recorder:
        def load(self, target: base.RunTarget) -> None:
            targets.append((target.device, target.batch, target.seed))
            raise BackendUnavailable("recorded only")

    monkeypatch.setattr("harness.convert.verify.get_backend", lambda name: Recorder())
    assert main(["verify", str(small), "--backends", "pytorch,onnxruntime,opencv,caffe", "--device", "cuda:1",
                 "--seed", "3"]) == 1
    assert targets == [("cuda:1", 1, 3)] * 4


def test_a_failing_backend_is_reported_and_not_fatal(small: Path) -> None:
    from harness.ir.build import load_graph

    text = NET.replace('layer { name: "prob"', 'layer { name: "am" type: "ArgMax" bottom: "fc" top: "am" }\n'
                                                'layer { name: "prob"')
    graph = load_graph("<in-memory>", text=text)  # no file: OpenCV cannot read it, the others go on
    result = verify(graph, "small", ["pytorch", "onnxruntime", "opencv"])
    status = {r.backend: r.status for r in result.runs}
    assert status == {"pytorch": "ok", "onnxruntime": "ok", "opencv": "failed"}
    assert not result.ok and all(e.ok for e in result.errors)


CEIL_MODE_NET = """
name: "floor"
input: "data"
input_shape { dim: 1 dim: 3 dim: 14 dim: 14 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "pool1" type: "Pooling" bottom: "conv" top: "pool1"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 ceil_mode: false } }
layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }
layer { name: "fc" type: "InnerProduct" bottom: "pool2" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_ceil_mode_false_is_run_as_the_fork_and_opencv_run_it(tmp_path: Path) -> None:
    """A Caffe fork's ceil_mode: false pools with floor (12 -> 6 -> 2 here; BVLC's ceil would give 7 -> 3):
    the PyTorch conversion and its ONNX export follow it as OpenCV does, and say so."""
    from harness.cli.verify import format_verification
    from harness.ir.build import load_graph
    from harness.results.metadata import run_metadata

    path = tmp_path / "floor.prototxt"
    path.write_text(CEIL_MODE_NET)
    result = verify(load_graph(path), "floor", FRAMEWORKS, batch=2)
    assert result.ok, [e for e in result.errors if not e.ok] + [r for r in result.runs if r.status != "ok"]
    assert {e.blob for e in result.errors} >= {"prob", "fc"}
    forks = ["pool1: pooling_param.ceil_mode: false", "pool2: pooling_param.ceil_mode: false"]
    for run in result.runs:
        assert run.info["fork_features"] == forks
        # ... kept with a benchmark record of that engine (its metadata is made from the session's info)
        assert run_metadata(run.info, {}, {})["backend_fork_features"] == forks
    # ... and said in verify's output
    assert f"run as the Caffe fork builds it: {'; '.join(forks)}" in format_verification(result)


def _zoo_names() -> list[str]:
    try:
        from harness.zoo import zoo_names
    except ImportError:
        return []
    return list(zoo_names())


@pytest.mark.slow
@pytest.mark.parametrize("network", _zoo_names() or [pytest.param("zoo", marks=pytest.mark.skip(
    reason="harness.zoo is not available in this checkout"))])
def test_zoo_networks_agree_across_engines(network: str) -> None:
    from harness.backends.base import get_backend
    from harness.zoo import resolve

    backends = FRAMEWORKS + (["caffe"] if get_backend("caffe").probe().available else [])
    graph = resolve(network)
    for batch in (1, 2):
        start = time.perf_counter()
        result = verify(graph, network, backends, batch=batch)
        failures = [e for e in result.errors if not e.ok] + [r for r in result.runs if r.status != "ok"]
        assert result.ok, f"{network} batch {batch}: {failures}"
        if os.environ.get("HARNESS_VERIFY_TIMES"):
            print(f"{network} B={batch}: {time.perf_counter() - start:.1f}s")


def _record(network: str, backend: str, mode: str | None, median_s: float | None, status: str = "ok") -> Record:
    latency = None if median_s is None else LatencyFigures(
        iterations=10, total_s=10 * median_s, median_s=median_s, mean_s=median_s, p90_s=median_s, min_s=median_s,
        max_s=median_s, stddev_s=0.0, ci_low_s=median_s, ci_high_s=median_s, ci_coverage=None, warmup_iters=2,
        warmup_s=0.0, throughput_fps=4 / median_s)
    return Record(Config(network, backend, 4, mode=mode), status, latency=latency,
                  message=None if status == "ok" else "unsupported: x Y")


def test_comparison_table_prefers_caffe_then_pytorch_eager() -> None:
    rows = comparison_table([
        _record("alexnet", "pytorch", None, 0.02), _record("alexnet", "caffe", None, 0.04),
        _record("alexnet", "onnxruntime", "opt-all", 0.01), _record("alexnet", "opencv", "cpu", None, "unsupported"),
        _record("mobilenet", "pytorch", "eager-fp32", 0.01), _record("mobilenet", "pytorch", "compile", 0.005),
    ])
    by = {(r.network, r.backend, r.mode): r for r in rows}
    assert rows[0].backend == "caffe" and rows[0].speedup == pytest.approx(1.0)
    assert by[("alexnet", "onnxruntime", "opt-all")].speedup == pytest.approx(4.0)
    assert by[("alexnet", "pytorch", "default")].throughput_ratio == pytest.approx(2.0)
    assert by[("alexnet", "opencv", "cpu")].speedup is None and by[("alexnet", "opencv", "cpu")].message
    assert by[("mobilenet", "pytorch", "compile")].baseline == "pytorch/eager-fp32"
    assert by[("mobilenet", "pytorch", "compile")].speedup == pytest.approx(2.0)
    text = format_comparison(rows)
    assert "relative to caffe" in text and "relative to pytorch/eager-fp32" in text


def test_verify_on_a_gpu_takes_a_gpu_build_of_caffe(cudnn_caffe) -> None:
    """Caffe's GPU build names its devices `cuda:N` (any GPU): verify selects it for cuda:0 as bench does."""
    from harness.cli.verify import _backends

    assert "caffe" in _backends(None, "cuda:0")
