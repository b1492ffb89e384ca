"""Binary .caffemodel writing and reading, without compiled caffe.proto."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffemodel_bytes import blob, ld, model, varint

from harness.convert.caffemodel import (
    CaffemodelError,
    CaffemodelMismatch,
    parse_source_layers,
    read_caffemodel,
    write_caffemodel,
)
from harness.convert.weights import check_weights, weight_set
from harness.errors import GraphError
from harness.ir.build import load_graph

NET = """
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
"""


def _graph():
    return load_graph("<net>", text=NET)


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    graph = _graph()
    weights = weight_set(graph, seed=7)
    weights["fc"] = [weights["fc"][0], np.array([np.nan, -0.0, np.inf, 1e-45, -3.5], np.float32)]
    path = write_caffemodel(tmp_path / "m.caffemodel", weights, {lay.name: lay.type for lay in graph.layers})
    back = read_caffemodel(path)
    assert list(back) == list(weights)
    for name, blobs in weights.items():
        assert [b.shape for b in back[name]] == [b.shape for b in blobs]
        for a, b in zip(blobs, back[name], strict=True):
            assert a.tobytes() == b.tobytes()


def test_reads_v1_layers_with_legacy_blob_dims(tmp_path: Path) -> None:
    data = np.arange(6, dtype="<f4")
    legacy_blob = b"".join(varint(f << 3) + varint(v) for f, v in ((1, 1), (2, 1), (3, 2), (4, 3)))
    # unpacked floats (wire type 5), as old writers produced
    legacy_blob += b"".join(varint(5 << 3 | 5) + x.tobytes() for x in data)
    layer = ld(4, b"ip") + varint(5 << 3) + varint(14) + ld(6, legacy_blob)  # type 14 = INNER_PRODUCT
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(ld(1, b"net") + ld(2, layer))
    weights = read_caffemodel(path)
    assert weights["ip"][0].shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(weights["ip"][0].ravel(), data)


FC = (5, 144)  # the fc layer of NET: 5 outputs of 4x6x6 inputs


def _check(data: bytes, partial: bool = True) -> dict:
    return check_weights(_graph(), parse_source_layers(data, "m.caffemodel"), partial=partial)


def test_blobs_are_matched_as_caffe_copies_trained_layers() -> None:
    # legacy dims are the blob's last 4 axes padded with 1s; an explicit shape is never padded
    assert _check(model(("fc", [blob(legacy={1: 1, 2: 1, 3: 5, 4: 144}, values=720), blob((5,), values=5)])))[
        "fc"][0].shape == FC
    with pytest.raises(CaffemodelMismatch, match=r"layer 'fc' blob 0 has shape \(1, 1, 5, 144\), the net needs "
                                                 r"\(5, 144\).*Cannot copy param 0"):
        _check(model(("fc", [blob((1, 1, 5, 144), values=720), blob((5,), values=5)])))
    # a legacy dimension left out is caffe.proto's default 0, not 1
    with pytest.raises(CaffemodelMismatch, match=r"blob 1 has shape \(0, 0, 0, 5\) \(legacy"):
        _check(model(("fc", [blob(FC, values=720), blob(legacy={4: 5}, values=5)])))
    # an empty BlobShape is a 0-axis blob, not a vector
    with pytest.raises(CaffemodelMismatch, match=r"blob 1 has shape \(\), the net needs \(5,\)"):
        _check(model(("fc", [blob(FC, values=720), blob((), values=1)])))
    # a layer given with no blobs, or another number of them, is refused (the layers the file lacks are not)
    for blobs in ([], [blob(FC, values=720)]):
        with pytest.raises(CaffemodelMismatch, match=rf"layer 'fc' has {len(blobs)} blob\(s\), the net's layer of "
                                                     "that name 2.*Incompatible number of blobs"):
            _check(model(("fc", blobs)))
    assert _check(model(("relu-not-in-net", []), ("conv9", [blob((1,), values=1)]))) == {}
    # the values must fill the blob; double_data counts when given; a diff must fill it too
    with pytest.raises(CaffemodelMismatch, match=r"blob 1 holds 4 values for its 5 elements"):
        _check(model(("fc", [blob(FC, values=720), blob((5,), values=4)])))
    assert _check(model(("fc", [blob(FC, values=720, doubles=True), blob((5,), values=5)])))["fc"][0][0, 1] == 1
    with pytest.raises(CaffemodelMismatch, match=r"blob 0 holds 3 diff values for its 720 elements"):
        _check(model(("fc", [blob(FC, values=720, diff=3), blob((5,), values=5)])))
    with pytest.raises(GraphError, match=r"layer 'conv1'.*no blobs for this layer"):
        _check(model(("fc", [blob(FC, values=720), blob((5,), values=5)])), partial=False)


def test_protobuf_skips_what_it_does_not_know() -> None:
    group = varint(50 << 3 | 3) + varint(1 << 3) + varint(7) + varint(50 << 3 | 4)  # an unknown group
    data_as_varint = varint(5 << 3) + varint(1)  # a known field in a wire type its type does not have
    odd_blob = blob((5,), values=5) + group + data_as_varint
    assert _check(model(("fc", [blob(FC, values=720), odd_blob])))["fc"][1].tolist() == [0, 1, 2, 3, 4]
    both = model(("fc", [])) + ld(2, ld(4, b"x"))
    with pytest.raises(CaffemodelError, match="both 'layer' and 'layers'"):
        parse_source_layers(both, "m.caffemodel")


def test_unreadable_files_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaffemodelError, match="cannot read"):
        read_caffemodel(tmp_path / "missing.caffemodel")
    truncated = tmp_path / "t.caffemodel"
    truncated.write_bytes(ld(100, ld(1, b"conv1"))[:-2])
    with pytest.raises(CaffemodelError, match="past the end"):
        read_caffemodel(truncated)


def test_opencv_loads_the_written_model(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Caffe importer")
    graph = _graph()
    weights = weight_set(graph)
    proto = tmp_path / "net.prototxt"
    proto.write_text(NET)
    model = write_caffemodel(tmp_path / "m.caffemodel", weights, {lay.name: lay.type for lay in graph.layers})
    net = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    got = net.getParam("conv1", 0)
    np.testing.assert_array_equal(got, weights["conv1"][0])


def test_caffe_loads_the_written_model(tmp_path: Path) -> None:
    from harness.backends.base import RunTarget, get_backend

    info = get_backend("caffe").probe()
    if not info.available:
        pytest.skip(f"Caffe is not available here: {info.reason}")
    graph_file = tmp_path / "net.prototxt"
    graph_file.write_text(NET)
    graph = load_graph(graph_file)
    weights = weight_set(graph, seed=5)
    model = write_caffemodel(tmp_path / "m.caffemodel", weights, {lay.name: lay.type for lay in graph.layers})
    with get_backend("caffe").load(RunTarget(graph, "net", 1, weights=model)) as caffe_session, \
            get_backend("pytorch").load(RunTarget(graph, "net", 1, weights=model)) as torch_session:
        caffe_session.forward()
        torch_session.forward()
        np.testing.assert_allclose(caffe_session.output(), torch_session.output(), rtol=1e-5, atol=1e-5)


# ---- damage: one line naming the file and the byte; weights of another network named by layer ---------

def _model_bytes(tmp_path: Path) -> bytes:
    graph = _graph()
    weights = weight_set(graph)
    path = write_caffemodel(tmp_path / "m.caffemodel", weights, {lay.name: lay.type for lay in graph.layers})
    return path.read_bytes()


def test_every_flipped_byte_and_every_truncation_is_read_or_one_clear_error(tmp_path: Path) -> None:
    good = _model_bytes(tmp_path)
    graph = _graph()
    for pos in range(len(good)):
        for data in (good[:pos] + bytes([good[pos] ^ 0xFF]) + good[pos + 1:], good[:pos]):
            try:
                check_weights(graph, parse_source_layers(data, "d.caffemodel"))
            except CaffemodelMismatch as exc:  # it parsed, but Caffe would not copy a layer's blobs
                assert "layer '" in str(exc) and "\n" not in str(exc)
            except CaffemodelError as exc:
                assert str(exc).startswith("d.caffemodel:") and "byte" in str(exc) and "\n" not in str(exc), str(exc)
            except GraphError as exc:  # it parsed, but a blob no longer fits its layer
                assert "layer '" in str(exc) and "\n" not in str(exc)


def test_a_damaged_blob_names_the_field_and_the_offset(tmp_path: Path) -> None:
    blob = ld(7, ld(1, varint(2) + varint(3))) + ld(5, np.zeros(6, "<f4").tobytes()[:-1])  # 23 bytes, not 24
    path = tmp_path / "odd.caffemodel"
    path.write_bytes(ld(100, ld(1, b"conv1") + ld(7, blob)))
    with pytest.raises(CaffemodelError, match=r"odd.caffemodel: layer 'conv1' blob 0: BlobProto.data at byte \d+ "
                                              r"holds 23 bytes, not a whole number of 4-byte values"):
        read_caffemodel(path)
    path.write_bytes(ld(100, ld(1, b"conv1") + ld(7, varint(5 << 3) + varint(1))))  # data as a varint
    with pytest.raises(CaffemodelError, match=r"layer 'conv1': the blob at byte \d+ has shape \(\) but 0 values"):
        read_caffemodel(path)  # protobuf keeps the varint as an unknown field: the blob has no values


def test_weights_of_another_network_are_refused_naming_layer_and_shapes(tmp_path: Path) -> None:
    from harness.convert.weights import WeightSource

    other = load_graph("<other>", text=NET.replace("num_output: 4", "num_output: 6"))
    weights = weight_set(other)
    path = write_caffemodel(tmp_path / "other.caffemodel", weights, {lay.name: lay.type for lay in other.layers})
    with pytest.raises(CaffemodelMismatch, match=r"layer 'conv1' blob 0 has shape \(6, 3, 3, 3\), the net needs "
                                                 r"\(4, 3, 3, 3\)"):
        WeightSource(_graph(), path=path).caffemodel()  # before Caffe or OpenCV would read (and abort on) it


# ---- the cache: checked, rebuilt when damaged, written whole --------------------------------------------

@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_damaged_cached_caffemodel_is_rebuilt(cache: Path) -> None:
    from harness.convert.cache import manifest_path
    from harness.convert.weights import WeightSource

    source = WeightSource(_graph(), seed=3)
    path = source.caffemodel()
    good = path.read_bytes()
    for damage in (lambda: path.write_bytes(good[:-7]),  # truncated
                   lambda: path.write_bytes(good[:40] + bytes([good[40] ^ 1]) + good[41:]),  # one flipped bit
                   lambda: manifest_path(path).unlink(),  # written by a harness without manifests, or interrupted
                   lambda: path.unlink()):
        damage()
        assert source.caffemodel() == path and path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, manifest_path(path).name]  # no temporaries


def test_a_failed_write_leaves_no_temporary_file(cache: Path, tmp_path: Path) -> None:
    from harness.convert.cache import CacheError, write_atomic

    def full(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(CacheError, match=r"cannot write .*x.bin \(No space left on device\)"):
        write_atomic(tmp_path / "x.bin", full)
    assert not list(tmp_path.glob("*x.bin*"))


def test_a_damaged_generated_prototxt_is_rewritten(cache: Path) -> None:
    from harness import zoo
    from harness.convert.cache import prototxt_file

    graph = zoo.load_graph("zoo:alexnet", text=zoo.zoo_prototxt("alexnet"))
    path = prototxt_file(graph, "caffe")
    path.write_text(path.read_text()[:100])
    assert prototxt_file(graph, "caffe") == path and path.read_text() == zoo.zoo_prototxt("alexnet")


def test_a_truncated_cached_onnx_export_is_rebuilt(cache: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from harness.convert.onnx_export import export_onnx
    from harness.convert.weights import WeightSource

    source = WeightSource(_graph())
    models = export_onnx(source)
    weights = next(p for p in models.timing.parent.glob("*.weights"))
    good = {p: p.read_bytes() for p in (models.probe, models.timing, weights)}
    for damaged in good:
        damaged.write_bytes(good[damaged][: len(good[damaged]) // 2])
        export_onnx(source)
        assert {p: p.read_bytes() for p in good} == good, damaged.name
