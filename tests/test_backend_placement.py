"""A record says ``cuda`` only if the GPU ran the graph: ONNX Runtime's node placement and OpenCV's layer
placement are read back at load, and a GPU requested where the framework has none is ``unavailable``
with the reason. Without a GPU here, the detection runs on real CPU sessions and real CPU-only builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import RunTarget, get_backend
from harness.errors import BackendUnavailable
from harness.ir.build import load_graph

ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("torch")

from harness.backends.onnxruntime import (  # noqa: E402
    CPU_EP,
    CUDA_EP,
    OnnxRuntimeSession,
    check_providers,
    node_providers,
)
from harness.backends.opencv import check_placement, layer_placement  # noqa: E402

NET = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 15 dim: 15 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 stride: 2 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "norm" type: "LRN" bottom: "pool1" top: "norm" lrn_param { local_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
ORT_HAS_CUDA = CUDA_EP in ort.get_available_providers()
CV2_HAS_CUDA = bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tiny(tmp_path: Path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(NET)
    return load_graph(path)


@pytest.mark.parametrize(("backend", "reason", "has_cuda"), [
    ("pytorch", r"pytorch: cuda:0 requested but this torch sees no such CUDA device", None),
    ("onnxruntime", rf"CUDAExecutionProvider is not available here \(providers: .*{CPU_EP}", ORT_HAS_CUDA),
    ("opencv", r"opencv: cuda:0 is not available to this cv2 build \(devices: cpu\)", CV2_HAS_CUDA),
])
def test_cuda_on_a_build_without_it_is_unavailable_with_the_reason(tiny, backend: str, reason: str,
                                                                   has_cuda: bool | None) -> None:
    if has_cuda or (has_cuda is None and get_backend("pytorch").probe().devices != ["cpu"]):
        pytest.skip(f"{backend} has CUDA here")
    assert "cuda:0" not in get_backend(backend).probe().devices
    with pytest.raises(BackendUnavailable, match=reason):
        get_backend(backend).load(RunTarget(tiny, "tiny", 1, device="cuda:0"))


@pytest.mark.skipif(ORT_HAS_CUDA, reason="needs a CPU-only onnxruntime build")
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available")
def test_onnxruntime_cuda_session_cannot_fall_back_to_cpu_silently(tiny) -> None:
    """ORT asked for its CUDA provider where it has none runs on the CPU with a warning; the harness's
    CUDA sessions disable that fallback, so the same request fails and becomes 'unavailable'."""
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource

    model = export_onnx(WeightSource(tiny)).timing
    with pytest.warns(UserWarning, match="not in available provider names"):
        plain = ort.InferenceSession(str(model), providers=[CUDA_EP])
    assert plain.get_providers() == [CPU_EP]  # the silent fallback the check exists for
    with pytest.raises(BackendUnavailable, match="fallback to CPU EP has been explicitly disabled"):
        OnnxRuntimeSession(RunTarget(tiny, "tiny", 1, device="cuda:0"), "opt-all")


def test_onnxruntime_records_which_provider_ran_every_node(tiny) -> None:
    with get_backend("onnxruntime").load(RunTarget(tiny, "tiny", 1)) as session:
        counts = session.info["node_providers"]
        assert list(counts) == [CPU_EP] and counts[CPU_EP] >= 6
        assert session.session.end_profiling() == ""  # profiling ended at load: timed runs are not profiled


def test_onnxruntime_provider_check_on_a_real_profile(tiny, tmp_path: Path) -> None:
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource, network_inputs

    options = ort.SessionOptions()
    options.enable_profiling, options.profile_file_prefix = True, str(tmp_path / "run")
    session = ort.InferenceSession(str(export_onnx(WeightSource(tiny)).timing), options, providers=[CPU_EP])
    session.run(None, network_inputs(tiny))
    ran = node_providers(json.loads(Path(session.end_profiling()).read_text()))
    assert list(ran) == [CPU_EP]
    assert any(node.startswith("Gemm:") for node in ran[CPU_EP])
    assert check_providers(ran, CPU_EP) is None
    assert check_providers(ran, CUDA_EP) == f"no node ran on {CUDA_EP} (ran: {CPU_EP})"


def test_provider_check_names_the_nodes_that_ran_elsewhere() -> None:
    ran = {CUDA_EP: ["Conv:conv1", "Relu:relu1"], CPU_EP: ["Shape:s", "Gather:g", "Shape:t"]}
    assert check_providers(ran, CUDA_EP) == \
        f"3 of 5 nodes ran outside {CUDA_EP}: 3 on {CPU_EP} (Shape, Gather)"


def test_opencv_records_where_every_layer_ran(tiny) -> None:
    with get_backend("opencv").load(RunTarget(tiny, "tiny", 1)) as session:
        placement = layer_placement(session.net.dump())
        assert session.info["layer_placement"] == {"OCV/CPU": len(placement)}
    # every layer of the prototxt is named once, alone or in its fused group (conv+bn+scale+relu)
    named = [name for group in placement for name in group.split("+")]
    assert sorted(named) == sorted(layer.name for layer in tiny.layers)
    assert "conv1+bn1+sc1+relu1" in placement
    assert check_placement(placement, "OCV/CPU") is None
    reason = check_placement(placement, "CUDA/CUDA")
    assert reason is not None and reason.startswith(f"{len(placement)} of {len(placement)} layers did not run "
                                                    f"on CUDA/CUDA ({len(placement)} on OCV/CPU: conv1+bn1")


@pytest.mark.skipif(CV2_HAS_CUDA, reason="needs a cv2 without the DNN CUDA backend")
def test_cpu_only_cv2_turns_a_cuda_target_into_cpu(tiny) -> None:
    """OpenCV 4.x without CUDA maps DNN_TARGET_CUDA to DNN_TARGET_CPU when it is set; 4.14 then refuses
    the CUDA backend with the CPU target at the first forward pass, which is why the probe lists no GPU."""
    from harness.convert.weights import WeightSource, network_inputs

    net = cv2.dnn.readNetFromCaffe(str(tiny.source), str(WeightSource(tiny).caffemodel()))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
    net.setInput(network_inputs(tiny)["data"])
    with pytest.raises(cv2.error, match=r"preferableBackend != DNN_BACKEND_CUDA \|\| IS_DNN_CUDA_TARGET"):
        net.forward()
