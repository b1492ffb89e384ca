"""The Caffe backend: its worker protocol and abort parsing (always), and real pycaffe runs: weights
loaded, forward passes timed in the worker, aborts/kills/timeouts turned into clean errors."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import BACKENDS, RunTarget, get_backend
from harness.backends.caffe import backend as caffe_backend
from harness.backends.caffe.backend import CaffeBackend, CaffeSession, fatal_message
from harness.backends.caffe.protocol import recv, send
from harness.convert.caffemodel import write_caffemodel
from harness.convert.weights import network_inputs, weight_set
from harness.errors import BackendFailed, BackendUnavailable, GraphError, HarnessError
from harness.ir.build import load_graph
from harness.measure.timer import TimingProtocol
from harness.zoo import zoo_prototxt

# A deliberately small network: Convolution -> ReLU (in place) -> InnerProduct.
TINY = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 5 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 7 } }
"""

# The original DenseNet's pooling layers carry ceil_mode, a field of a Caffe fork, not of BVLC Caffe.
CEIL_MODE = TINY.replace(
    'layer { name: "relu"',
    'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"\n'
    "        pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: false } }\n"
    'layer { name: "relu"',
)


def _target(path: Path, batch: int = 2, **kw: object) -> RunTarget:
    return RunTarget(graph=load_graph(path), network=path.stem, batch=batch, **kw)  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "tiny.prototxt"
    path.write_text(TINY)
    return path


# ---- without pycaffe ----------------------------------------------------------------------------

def test_caffe_is_registered() -> None:
    assert BACKENDS["caffe"] == "harness.backends.caffe.backend:CaffeBackend"
    assert isinstance(get_backend("caffe"), CaffeBackend)


def test_protocol_round_trip_keeps_arrays_exact() -> None:
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1.5, -2.0])}
    buf = io.BytesIO()
    send(buf, {"op": "x", "n": 3}, arrays)
    send(buf, {"op": "y"})
    buf.seek(0)
    header, got = recv(buf)
    assert header == {"op": "x", "n": 3}
    assert set(got) == {"a", "b"} and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert got["a"].dtype == np.float32
    assert recv(buf) == ({"op": "y"}, {})


def test_fatal_message_names_glog_line_and_protobuf_parse_error() -> None:
    log = (
        "[libprotobuf ERROR google/protobuf/text_format.cc:335] Error parsing text-format caffe.NetParameter: "
        '9:60: Message type "caffe.PoolingParameter" has no field named "ceil_mode".\n'
        "F1124 05:40:01.123456  4242 upgrade_proto.cpp:88] Check failed: ReadProtoFromTextFile(param_file, "
        "param) Failed to parse NetParameter file: net.prototxt\n"
        "*** Check failure stack trace: ***\n"
    )
    message = fatal_message(log)
    assert message is not None
    assert message.startswith("caffe aborted: F1124 05:40:01.123456  4242 upgrade_proto.cpp:88] Check failed")
    assert '9:60: Message type "caffe.PoolingParameter" has no field named "ceil_mode"' in message
    assert fatal_message("I1124 all fine\nW1124 a warning\n") is None


def test_missing_caffemodel_is_a_clear_error(tiny: Path) -> None:
    with pytest.raises(HarnessError, match=r"caffemodel not found: .*nope\.caffemodel"):
        CaffeBackend().load(_target(tiny, weights=tiny.parent / "nope.caffemodel"))


def test_a_graph_without_a_file_is_a_clear_error() -> None:
    graph = load_graph("made-up.prototxt", text=TINY)
    with pytest.raises(HarnessError, match=r"caffe reads the prototxt file itself, but 'made-up\.prototxt'"):
        CaffeBackend().load(RunTarget(graph=graph, network="tiny", batch=1))


def test_unavailable_pycaffe_names_each_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAFFE_ROOT", str(tmp_path))  # no pycaffe there
    monkeypatch.setenv("HARNESS_CAFFE_PYTHON", sys.executable)
    monkeypatch.setattr(caffe_backend, "DEFAULT_CAFFE_ROOT", tmp_path)
    caffe_backend.find_pycaffe.cache_clear()
    try:
        try:
            import caffe  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("this interpreter imports caffe from site-packages")
        info = CaffeBackend.probe()
        assert not info.available
        assert info.reason is not None and sys.executable in info.reason and "cannot import pycaffe" in info.reason
        assert "docker/build-caffe.sh" in (info.hint or "")
    finally:
        caffe_backend.find_pycaffe.cache_clear()


def test_doctor_exits_0_and_lists_caffe() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "doctor"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "caffe" in proc.stdout and "NVIDIA GPU:" in proc.stdout


# ---- with pycaffe -------------------------------------------------------------------------------

@pytest.mark.needs_pycaffe
def test_forward_matches_numpy_with_the_deterministic_weights(tiny: Path) -> None:
    target = _target(tiny, batch=2, seed=3)
    graph = target.graph.with_inputs(batch=2)
    with CaffeBackend().load(target) as session:
        assert isinstance(session, CaffeSession)
        session.forward()
        out = session.output()
        blobs = session.blobs()
        info = session.info
    x = network_inputs(graph, 3)["data"]
    w = weight_set(graph, 3)
    conv_w, conv_b = w["conv"]
    cols = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))  # (2, 3, 2, 2, 3, 3)
    conv = np.einsum("nchwij,ocij->nohw", cols, conv_w) + conv_b[None, :, None, None]
    fc_w, fc_b = w["fc"]
    expected = np.maximum(conv, 0).reshape(2, -1) @ fc_w.T + fc_b
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(blobs["data"], x)
    assert info["engine"] == "CAFFE" and info["device"] == "cpu" and info["mode"] == "caffe"


@pytest.mark.needs_pycaffe
def test_timed_run_happens_in_the_worker_and_reports_shapes_and_memory(tiny: Path) -> None:
    with CaffeBackend().load(_target(tiny, batch=4)) as session:
        assert isinstance(session, CaffeSession)
        timing = session.run_timed(TimingProtocol(warmup_iters=2, warmup_s=0.0, min_iters=5, min_s=0.0))
        assert session.blob_shapes == {"data": (4, 3, 4, 4), "conv": (4, 5, 2, 2), "fc": (4, 7)}
        assert session.param_shapes == {"conv": [(5, 3, 3, 3), (5,)], "fc": [(7, 20), (7,)]}
        floats = 4 * 3 * 16 + 4 * 5 * 4 + 4 * 7 + 5 * 27 + 5 + 7 * 20 + 7
        assert session.framework_memory_bytes() == 4 * floats
    assert timing.iterations == 5 and timing.warmup_iters == 2 and timing.median_s > 0


@pytest.mark.needs_pycaffe
def test_unknown_field_aborts_cleanly_naming_field_and_line(tiny: Path) -> None:
    path = tiny.with_name("ceil.prototxt")
    path.write_text(CEIL_MODE)
    with pytest.raises(BackendFailed) as err:
        CaffeBackend().load(_target(path))
    message = str(err.value)
    line = 1 + next(i for i, text in enumerate(CEIL_MODE.splitlines()) if "ceil_mode" in text)
    # Caffe aborts on it; a cuDNN build's engine rewrite reads it with Caffe's caffe.proto first and refuses it
    assert message.startswith("caffe aborted: F") or "caffe.proto refuses it" in message
    assert re.search(rf'\b{line}:\d+ ?: Message type "caffe.PoolingParameter" has no field named "ceil_mode"',
                     message)
    assert "ceil batch 2 on cpu" in message


@pytest.mark.needs_pycaffe
def test_mismatched_caffemodel_is_refused_first_and_aborts_caffe_cleanly(tiny: Path) -> None:
    bad = tiny.with_name("bad.caffemodel")
    write_caffemodel(bad, {"conv": [np.zeros((5, 3, 2, 2), np.float32), np.zeros(5, np.float32)]},
                     {"conv": "Convolution"})
    with pytest.raises(GraphError, match=r"layer 'conv'.*blob 0 has shape \(5, 3, 2, 2\)"):
        CaffeBackend().load(_target(tiny, weights=bad))  # the harness checks a user's weights first
    # Caffe's own check, handed the file directly: its abort becomes one clean error
    worker = caffe_backend.Worker(caffe_backend.find_pycaffe(), 120, "tiny")
    inputs = network_inputs(load_graph(tiny).with_inputs(batch=2))
    cudnn = caffe_backend.build_details(caffe_backend.find_pycaffe())["cudnn"]
    request = {"op": "load", "prototxt": str(tiny), "caffemodel": str(bad), "batch": 2, "device": "cpu",
               "output": "fc", "engine": "CAFFE" if cudnn else None}
    try:
        with pytest.raises(BackendFailed, match=r"caffe aborted: F.*Cannot copy param 0 weights from layer 'conv'"):
            worker.request(request, inputs)
    finally:
        worker.close()


@pytest.mark.needs_pycaffe
def test_worker_killed_by_a_signal_is_reported_and_the_caller_goes_on(tiny: Path) -> None:
    backend = CaffeBackend()
    session = backend.load(_target(tiny))
    assert isinstance(session, CaffeSession)
    os.kill(session.net.worker.pid, signal.SIGKILL)
    with pytest.raises(BackendFailed, match="caffe worker killed by signal SIGKILL"):
        session.forward()
    session.close()
    with backend.load(_target(tiny)) as again:  # the next configuration runs normally
        again.forward()


@pytest.mark.needs_pycaffe
def test_stuck_worker_times_out_and_is_killed(tiny: Path) -> None:
    session = CaffeBackend().load(_target(tiny))
    assert isinstance(session, CaffeSession)
    worker = session.net.worker
    worker.timeout_s = 1.0
    os.kill(worker.pid, signal.SIGSTOP)  # a worker that never answers
    try:
        with pytest.raises(BackendFailed, match=r"stuck: no reply to 'forward' within 1 s; killed it"):
            session.forward()
        assert worker.proc.poll() is not None
    finally:
        session.close()


@pytest.mark.needs_pycaffe
def test_zoo_graph_not_checked_out_as_a_file_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    graph = load_graph("zoo:squeezenet_v1.1", text=zoo_prototxt("squeezenet_v1.1"))
    with CaffeBackend().load(RunTarget(graph=graph, network="squeezenet_v1.1", batch=1)) as session:
        session.forward()
        probabilities = session.output()
    assert probabilities.shape == (1, 1000, 1, 1)
    assert probabilities.sum() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.needs_pycaffe
def test_cuda_device_on_a_cpu_only_build_is_unavailable(tiny: Path) -> None:
    if CaffeBackend.probe().details.get("gpu_build"):
        pytest.skip("this Caffe is a GPU build")
    with pytest.raises(BackendUnavailable, match="CPU-only build"):
        CaffeBackend().load(_target(tiny, device="cuda:0"))


@pytest.mark.needs_pycaffe
def test_engines_are_modes_and_the_cpu_has_only_caffes_own(tiny: Path) -> None:
    backend = CaffeBackend()
    assert backend.modes("cpu") == ["caffe"]
    with backend.load(_target(tiny)) as session:
        assert session.info["mode"] == "caffe" and session.info["engine"] == "CAFFE"
    with pytest.raises(HarnessError, match="caffe mode 'cudnn' is not available on cpu"):
        backend.load(_target(tiny, mode="cudnn"))


def test_a_cudnn_build_runs_on_the_cpu_with_the_caffe_engine(tiny: Path, cudnn_caffe: Path) -> None:
    """A cuDNN build picks CUDNN for DEFAULT engines even in CPU mode, and aborts without a GPU; the
    backend rewrites the prototxt it loads with `engine: CAFFE` (with Caffe's own protobuf classes) and
    records that it did."""
    with CaffeBackend().load(_target(tiny)) as session:
        session.forward()
        assert session.output().shape == (2, 7)
    assert session.info["cudnn_build"] is True and session.info["engine"] == "CAFFE"
    assert session.info["engine_rewrite"] == "engine: CAFFE set on 2 layers of the prototxt"  # conv, relu
