"""The pytorch, onnxruntime and opencv backends on CPU: probes, modes, failures, agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import BACKENDS, RunTarget, get_backend
from harness.errors import BackendFailed, BackendUnavailable, HarnessError, UnsupportedLayer
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
layer { name: "pool2" type: "Pooling" bottom: "conv1" top: "pool2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "norm" type: "LRN" bottom: "pool2" top: "norm" lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layer { name: "cat" type: "Concat" bottom: "pool1" bottom: "norm" top: "cat" }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tiny(tmp_path: Path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(NET)
    return load_graph(path)


def _run(name: str, graph, batch: int = 1, mode: str | None = None) -> tuple[np.ndarray, dict, dict]:
    with get_backend(name).load(RunTarget(graph, "tiny", batch, mode=mode)) as session:
        session.forward()
        return session.output(), session.blobs(), session.info


def test_registered_and_probed() -> None:
    for name in ("pytorch", "onnxruntime", "opencv"):
        assert name in BACKENDS
        info = get_backend(name).probe()
        assert info.available, info.reason
        assert info.version and "cpu" in info.devices


def test_modes_on_cpu_and_cuda() -> None:
    # torch 2.13's CPU autocast runs convolution and matmul in both half dtypes (cpu_autocast_works tries it)
    assert get_backend("pytorch").modes("cpu") == ["eager-fp32", "channels_last", "compile", "fp16-autocast",
                                                   "bf16-autocast"]
    assert {"fp16-autocast", "bf16-autocast", "cuda-graphs", "tf32"} <= set(get_backend("pytorch").modes("cuda:0"))
    assert get_backend("onnxruntime").modes("cpu")[0] == "opt-all"
    assert get_backend("opencv").modes("cpu") == ["cpu"]
    assert get_backend("opencv").modes("cuda:0") == ["cuda", "cuda-fp16"]


@pytest.mark.parametrize("batch", [1, 3])
def test_three_engines_agree_on_output_and_intermediates(tiny, batch: int) -> None:
    ref_out, ref_blobs, info = _run("pytorch", tiny, batch)
    assert info["mode"] == "eager-fp32" and info["torch"]
    assert set(ref_blobs) >= {"fc", "conv1", "pool1"}
    for name in ("onnxruntime", "opencv"):
        out, blobs, info = _run(name, tiny, batch)
        assert info["mode"] and info[name]
        np.testing.assert_allclose(out.reshape(ref_out.shape), ref_out, rtol=1e-4, atol=1e-6)
        for blob, value in blobs.items():
            np.testing.assert_allclose(value.reshape(ref_blobs[blob].shape), ref_blobs[blob], rtol=1e-4,
                                       atol=1e-5 * float(np.abs(ref_blobs[blob]).max()))


@pytest.mark.parametrize("mode", ["channels_last", "compile"])
def test_pytorch_cpu_modes_compute_the_same(tiny, mode: str) -> None:
    ref, _, _ = _run("pytorch", tiny)
    out, _, info = _run("pytorch", tiny, mode=mode)
    assert info["mode"] == mode
    if mode == "compile":
        assert info["compile_s"] > 0
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["opt-disabled", "opt-basic", "opt-extended"])
def test_onnxruntime_levels_compute_the_same(tiny, mode: str) -> None:
    ref, _, _ = _run("onnxruntime", tiny)
    out, _, info = _run("onnxruntime", tiny, mode=mode)
    assert info["provider"] == "CPUExecutionProvider" and info["mode"] == mode
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)


def test_gpu_modes_need_a_gpu(tiny) -> None:
    for mode in ("cuda-graphs", "tf32"):
        with pytest.raises(BackendUnavailable, match=rf"'{mode}' is not available on cpu \(needs a GPU\)"):
            get_backend("pytorch").load(RunTarget(tiny, "tiny", 1, mode=mode))
    for name in ("pytorch", "onnxruntime"):
        with pytest.raises(HarnessError, match="unknown"):
            get_backend(name).load(RunTarget(tiny, "tiny", 1, mode="turbo"))


def test_unsupported_layer_is_per_backend(tmp_path: Path) -> None:
    path = tmp_path / "loss.prototxt"
    path.write_text(NET.replace('input_shape { dim: 1 dim: 3 dim: 15 dim: 15 }',
                                'input_shape { dim: 1 dim: 3 dim: 15 dim: 15 }\ninput: "label"\n'
                                'input_shape { dim: 1 }') +
                    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n')
    graph = load_graph(path)
    for name in ("pytorch", "onnxruntime"):
        with pytest.raises(UnsupportedLayer, match="unsupported: loss SoftmaxWithLoss"):
            get_backend(name).load(RunTarget(graph, "loss", 1))


def test_opencv_needs_the_prototxt_file() -> None:
    graph = load_graph("<memory>", text=NET)
    with pytest.raises(BackendFailed, match="not a file"):
        get_backend("opencv").load(RunTarget(graph, "tiny", 1))


def test_onnx_export_is_cached_and_found_without_drawing_the_weights(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    from harness.convert import weights as weights_module
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource

    first = export_onnx(WeightSource(tiny))
    stamp = first.timing.stat().st_mtime_ns

    def no_drawing(*args: object) -> None:
        raise AssertionError("a cached export must not draw the weights")
    with monkeypatch.context() as patch:
        patch.setattr(weights_module, "weight_set", no_drawing)
        again = export_onnx(WeightSource(tiny))
    assert again == first and first.timing.stat().st_mtime_ns == stamp
    other = export_onnx(WeightSource(tiny.with_inputs(batch=2)))
    assert other.timing != first.timing
    assert [o.name for o in onnx.load(str(first.timing)).graph.output] == ["prob"]
    assert [o.name for o in onnx.load(str(first.probe)).graph.output][:2] == ["prob", "fc"]
    # the probe and timing models share one external weights file, written once
    weight_files = sorted(p.name for p in first.timing.parent.glob("*.weights"))
    assert len(weight_files) == 2  # batch 1 and batch 2
    assert any(t.external_data for t in onnx.load(str(first.timing), load_external_data=False).graph.initializer)


def test_one_caffemodel_serves_every_batch_and_a_given_file_is_used_as_is(tiny, tmp_path) -> None:
    from harness.convert.caffemodel import read_caffemodel
    from harness.convert.weights import WeightSource, weight_set

    one = WeightSource(tiny, seed=4).caffemodel()
    assert WeightSource(tiny.with_inputs(batch=4), seed=4).caffemodel() == one
    assert WeightSource(tiny, seed=5).caffemodel() != one
    expected = weight_set(tiny, 4)
    assert all(np.array_equal(a, b) for k, blobs in read_caffemodel(one).items()
               for a, b in zip(blobs, expected[k], strict=True))
    given = WeightSource(tiny, path=one)
    assert given.caffemodel() == one and given.key().startswith("file-")


BIG_INPUT = """
input: "data"
input_shape { dim: 1 dim: 3 dim: 512 dim: 512 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 1 kernel_size: 1 stride: 8 } }
"""


@pytest.mark.parametrize("name", ["pytorch", "onnxruntime", "opencv"])
def test_no_backend_copies_the_input_to_float64(tmp_path: Path, name: str) -> None:
    """The input is drawn in float32 and fed as it is. tracemalloc sees NumPy's allocations: a load,
    forward and output of a network whose input dwarfs everything else peaks at the input itself (a
    float64 copy would add twice its size); what torch allocates is checked by dtype."""
    import tracemalloc

    path = tmp_path / "big.prototxt"
    path.write_text(BIG_INPUT)
    target = RunTarget(load_graph(path), "big", 2)
    input_bytes = 2 * 3 * 512 * 512 * 4
    with get_backend(name).load(target) as session:  # imports, caches and the ONNX export, untraced
        session.forward()
    tracemalloc.start()
    try:
        with get_backend(name).load(target) as session:
            session.forward()
            session.output()
            held = session.inputs if name == "pytorch" else list(session.feed.values())
            assert [str(x.dtype).removeprefix("torch.") for x in held] == ["float32"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * input_bytes, f"{name}: NumPy peaked at {peak / input_bytes:.2f} x the input"

# ---- which device really ran the graph ----------------------------------------------------------------
# A record says ``cuda`` only if the GPU ran the graph: ONNX Runtime's node placement and OpenCV's layer
# placement are read back at load, and a GPU requested where the framework has none is ``unavailable``
# with the reason. Without a GPU here, the detection runs on real CPU sessions and real CPU-only builds.

ORT_HAS_CUDA = CUDA_EP in ort.get_available_providers()
CV2_HAS_CUDA = bool(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA))


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
    CUDA sessions check the provider the session runs on, so the same request becomes 'unavailable'."""
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource

    model = export_onnx(WeightSource(tiny)).timing
    with pytest.warns(UserWarning, match="not in available provider names"):
        plain = ort.InferenceSession(str(model), providers=[CUDA_EP])
    assert plain.get_providers() == [CPU_EP]  # the silent fallback the check exists for
    with pytest.raises(BackendUnavailable, match=f"{CUDA_EP} was requested but the session runs on {CPU_EP}"):
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
