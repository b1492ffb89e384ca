"""PyTorch precision modes: fp32 is IEEE fp32 (TF32 off, read back and recorded), ``tf32`` is its own
mode, and fp16/bf16 autocast run every zoo network (on CPU here) with the reduced-precision layer types
measured and recorded."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness import zoo  # noqa: E402
from harness.backends.base import RunTarget, get_backend  # noqa: E402
from harness.backends.pytorch import (  # noqa: E402
    TF32_OVERRIDE,
    cpu_autocast_works,
    precision_state,
    set_fp32_precision,
)
from harness.convert.blobs import output_blob, pre_softmax_blob  # noqa: E402
from harness.errors import BackendUnavailable  # noqa: E402
from harness.ir.build import load_graph  # noqa: E402

NO_GPU = "needs a CUDA GPU visible to torch"
#: unit roundoff (2^-p, p significand bits with the implicit one) of the autocast dtypes
UNIT_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}
#: allowed error of a reduced-precision blob relative to the blob's largest fp32 magnitude: 8 unit
#: roundoffs. Rounding errors of the 20-60 layers partly cancel; the worst measured over the 12 zoo
#: networks at B=1 on CPU (torch 2.13) was 2.9 u for bf16 (1.0-G-SqNxt-23) and 1.8 u for fp16 (AlexNet).
TOLERANCE_ROUNDOFFS = 8

TINY = """
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 9 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _restore_fp32_precision():
    """The flags are process-wide: leave them as IEEE fp32 for the tests that follow."""
    yield
    set_fp32_precision(tf32=False)


def test_fp32_modes_switch_tf32_off_at_load_whatever_came_before() -> None:
    graph = load_graph("<tiny>", text=TINY)
    for mode in ("eager-fp32", "channels_last"):
        set_fp32_precision(tf32=True)  # as a tf32 session earlier in this process would have left it
        with get_backend("pytorch").load(RunTarget(graph, "tiny", 1, mode=mode)) as session:
            assert session.info["precision"] == "fp32"
            assert session.info["float32_matmul_precision"] == "highest"
            assert session.info["tf32"] == "not applicable on cpu"
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.get_float32_matmul_precision() == "highest"


def test_cuda_precision_state_is_the_flags_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TF32_OVERRIDE, "0")
    set_fp32_precision(tf32=True)
    state = precision_state("cuda:0")
    assert state["float32_matmul_precision"] == "high"
    assert state["tf32"]["cuda.matmul.allow_tf32"] is True and state["tf32"]["cudnn.allow_tf32"] is True
    assert state["tf32"][TF32_OVERRIDE] == "0"
    # the override (and, here, the missing GPU) keeps the libraries from using TF32 whatever torch allows
    assert state["tf32"]["matmul_tf32"] is False and state["tf32"]["cudnn_tf32"] is False
    set_fp32_precision(tf32=False)
    state = precision_state("cuda:0")
    assert state["float32_matmul_precision"] == "highest"
    assert state["tf32"]["cuda.matmul.allow_tf32"] is False and state["tf32"]["cudnn.allow_tf32"] is False
    if "cuda.matmul.fp32_precision" in state["tf32"]:  # torch >= 2.9 reports the new API's view too
        assert state["tf32"]["cuda.matmul.fp32_precision"] == "ieee"


def test_worker_env_leaves_nvidia_tf32_override_out_of_the_tf32_mode_only() -> None:
    backend = get_backend("pytorch")
    assert backend.worker_env("cuda:0", "tf32") == {}
    for mode in (None, "eager-fp32", "compile", "cuda-graphs", "fp16-autocast"):
        assert backend.worker_env("cuda:0", mode) == {TF32_OVERRIDE: "0"}
    assert backend.worker_env("cpu", "eager-fp32") == {}


def test_tf32_is_a_gpu_mode() -> None:
    graph = load_graph("<tiny>", text=TINY)
    assert "tf32" not in get_backend("pytorch").modes("cpu")
    with pytest.raises(BackendUnavailable, match=r"'tf32' is not available on cpu \(needs a GPU\)"):
        get_backend("pytorch").load(RunTarget(graph, "tiny", 1, mode="tf32"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_tf32_mode_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = load_graph("<tiny>", text=TINY)
    backend = get_backend("pytorch")
    ampere = torch.cuda.get_device_capability(0) >= (8, 0)
    assert ("tf32" in backend.modes("cuda:0")) == ampere
    if not ampere:
        return
    monkeypatch.delenv(TF32_OVERRIDE, raising=False)
    with backend.load(RunTarget(graph, "tiny", 1, device="cuda:0", mode="tf32")) as session:
        assert session.info["tf32"]["matmul_tf32"] and session.info["tf32"]["cudnn_tf32"]
    with backend.load(RunTarget(graph, "tiny", 1, device="cuda:0")) as session:
        assert not session.info["tf32"]["matmul_tf32"] and not session.info["tf32"]["cudnn_tf32"]
    monkeypatch.setenv(TF32_OVERRIDE, "0")
    with pytest.raises(BackendUnavailable, match="NVIDIA_TF32_OVERRIDE=0"):
        backend.load(RunTarget(graph, "tiny", 1, device="cuda:0", mode="tf32"))


def test_cpu_autocast_modes_are_offered_where_torch_runs_them() -> None:
    """bfloat16 CPU autocast exists in every torch the harness allows (>= 2.1): it is offered on the CPU,
    and the cheap default mode is the fp32 one."""
    backend = get_backend("pytorch")
    assert "bf16-autocast" in backend.modes("cpu") and cpu_autocast_works("bfloat16")
    assert backend.default_mode("cpu") == backend.modes("cpu")[0] == "eager-fp32"


@pytest.mark.parametrize("mode", ["fp16-autocast", "bf16-autocast"])
def test_autocast_record_names_the_reduced_precision_layer_types(mode: str) -> None:
    """Measured per layer: Convolution and InnerProduct compute in the reduced dtype; the converted
    BatchNorm and Scale (x * a + b with fp32 parameters) promote back to fp32."""
    if mode not in get_backend("pytorch").modes("cpu"):
        pytest.skip(f"CPU autocast of torch {torch.__version__} does not run {mode}")
    graph = load_graph("<bn>", text=TINY.replace(
        'layer { name: "pool"',
        'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }\n'
        'layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }\n'
        'layer { name: "pool"'))
    with get_backend("pytorch").load(RunTarget(graph, "bn", 1, mode=mode)) as session:
        record = session.info["autocast"]
        out = session.output()
    dtype = {"fp16-autocast": "float16", "bf16-autocast": "bfloat16"}[mode]
    assert record["dtype"] == dtype and record["first_nonfinite_layer"] is None
    assert record["layer_output_dtypes"]["Convolution"] == [dtype]
    assert record["layer_output_dtypes"]["InnerProduct"] == [dtype]
    assert record["layer_output_dtypes"]["BatchNorm"] == record["layer_output_dtypes"]["Scale"] == ["float32"]
    assert {"Convolution", "InnerProduct"} <= set(record["reduced_precision_layer_types"])
    assert "BatchNorm" not in record["reduced_precision_layer_types"]
    assert out.shape == (1, 5) and np.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("network", zoo.zoo_names())
def test_autocast_runs_every_zoo_network_on_cpu(network: str) -> None:
    """fp16 and bf16 autocast at B=1: the output is finite and the pre-softmax blob (the output when
    there is no Softmax) is within TOLERANCE_ROUNDOFFS of fp32 - unless the fp32 values themselves
    exceed the dtype's range, which the record must then name."""
    modes = [m for m in ("fp16-autocast", "bf16-autocast") if m in get_backend("pytorch").modes("cpu")]
    if not modes:
        pytest.skip(f"CPU autocast of torch {torch.__version__} runs neither fp16 nor bf16")
    graph = zoo.zoo_graph(network)
    blob = pre_softmax_blob(graph) or output_blob(graph)
    backend = get_backend("pytorch")

    def run(mode: str) -> tuple[np.ndarray | None, np.ndarray, dict]:
        with backend.load(RunTarget(graph, network, 1, mode=mode)) as session:
            values = session.blobs()
            # an autocast session keeps the output of its measuring run at load: no extra forward
            out = session.output() if mode != "eager-fp32" or blob not in values else None
            return out, values.get(blob, out), session.info

    _, ref, _ = run("eager-fp32")
    scale = float(np.abs(ref).max())
    for mode in modes:
        out, values, info = run(mode)
        dtype = info["autocast"]["dtype"]
        assert info["precision"] == f"{mode.split('-')[0]} autocast"
        assert "Convolution" in info["autocast"]["reduced_precision_layer_types"]
        assert dtype in info["autocast"]["layer_output_dtypes"]["Convolution"]
        if scale > float(torch.finfo(getattr(torch, dtype)).max):
            # the synthetic weights drive this network's activations past fp16's 65504: inf is the
            # right answer, and the record says where it began
            assert info["autocast"]["first_nonfinite_layer"] is not None
            assert not np.isfinite(values).all()
            continue
        assert info["autocast"]["first_nonfinite_layer"] is None
        assert np.isfinite(out).all()
        error = float(np.abs(values - ref).max()) / scale
        assert error <= TOLERANCE_ROUNDOFFS * UNIT_ROUNDOFF[dtype], f"{mode}: {error:.2e} of the blob's scale"
