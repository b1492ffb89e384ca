"""The zoo: generated prototxts, their equivalence to the originals, BVLC-loadability, the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import zoo
from harness.cli.main import main
from harness.errors import HarnessError
from harness.ir.build import load_graph
from harness.ir.graph import Graph, Layer
from harness.ir.textformat import Message, parse_text

REPO = Path(__file__).resolve().parents[1]
ORIGINALS = Path(__file__).resolve().parents[2] / "shared/reference/originals"
# Training-only parts of the originals that the deploy files leave out.
TRAINING_ONLY_TYPES = {"SoftmaxWithLoss", "Accuracy"}
TRAINING_ONLY_FIELDS = {"weight_filler", "bias_filler", "filler"}
# Fields of Caffe forks, not of BVLC's caffe.proto.
FORK_FIELDS = {"ceil_mode"}
DEPLOY_LAYER_FIELDS = {"name", "type", "bottom", "top"}


def _block(msg: Message) -> list[tuple[str, object]]:
    """A param block as a sorted field list (field order carries no meaning in protobuf), minus dropped fields."""
    out = [(f.name, tuple(_block(f.value)) if isinstance(f.value, Message) else f.value)
           for f in msg.fields if f.name not in TRAINING_ONLY_FIELDS | FORK_FIELDS]
    return sorted(out, key=repr)


def _structure(layer: Layer) -> tuple:
    blocks = {f.name: _block(f.value) for f in layer.spec.fields if f.name.endswith("_param")}
    return layer.name, layer.type, tuple(layer.bottoms), tuple(layer.tops), blocks


def _original(name: str) -> Graph:
    if not ORIGINALS.is_dir():
        pytest.skip(f"the original prototxts ({ORIGINALS}) are not available: nothing to compare with")
    return load_graph(ORIGINALS / f"{name}.prototxt")


def test_committed_prototxts_are_the_generators_output() -> None:
    generated = zoo.generated_files()
    committed = {p.name for p in (REPO / "prototxts").glob("*.prototxt")}
    assert committed == set(generated), "prototxts/ and the generator disagree on the file list"
    for filename, text in generated.items():
        on_disk = (REPO / "prototxts" / filename).read_bytes()
        assert on_disk == text.encode("utf-8"), f"prototxts/{filename} is stale: run `harness zoo build`"


@pytest.mark.parametrize("name", zoo.zoo_names())
def test_structurally_equivalent_to_the_original(name: str) -> None:
    original = _original(name)
    ours = zoo.zoo_graph(name)
    expected = [_structure(lay) for lay in original.layers if lay.type not in TRAINING_ONLY_TYPES]
    if any(lay.type == "SoftmaxWithLoss" for lay in original.layers):
        # The deploy conversion: the loss becomes a Softmax over the same scores.
        scores = expected[-1][3][0]
        expected.append(("prob", "Softmax", (scores,), ("prob",), {}))
    assert [_structure(lay) for lay in ours.layers] == expected
    # Same input blob, at the paper's size and batch 1.
    assert [spec.name for spec in ours.inputs] == [original.inputs[0].name]


@pytest.mark.parametrize("name", zoo.zoo_names())
def test_deploy_input_is_the_papers(name: str) -> None:
    size = zoo.paper_input_size(name)
    assert [(s.name, s.shape) for s in zoo.zoo_graph(name).inputs] == [("data", (1, 3, size, size))]


@pytest.mark.parametrize("name", [*zoo.zoo_names(), *zoo.EXTRAS])
def test_bvlc_loadable_without_caffe(name: str) -> None:
    """No fork-only or training-only fields; every field known to the analyzer's BVLC caffe.proto schema."""
    text = zoo.zoo_prototxt(name)
    net = parse_text(text, name)
    assert "engine" not in net.names()  # Intel Caffe's net-level engine
    assert "ceil_mode" not in text
    graph = load_graph(f"zoo:{name}", text=text)
    assert graph.warnings == []
    for lay in graph.layers:
        extra = {f for f in lay.spec.names() if not f.endswith("_param")} - DEPLOY_LAYER_FIELDS
        assert not extra, f"{lay.where()}: training-only layer fields {extra}"
        assert lay.type not in TRAINING_ONLY_TYPES


def test_mobilenet_keeps_its_per_layer_engine() -> None:
    """``convolution_param.engine: CAFFE`` on the depthwise convolutions is BVLC's own field: kept."""
    depthwise = [lay for lay in zoo.zoo_graph("mobilenet_v1").layers
                 if lay.type == "Convolution" and lay.name.endswith("/dw")]
    assert len(depthwise) == 13
    assert all(str(lay.param("convolution_param").get("engine")) == "CAFFE" for lay in depthwise)


def test_squeezenext_variants_differ_where_they_should() -> None:
    def convs(name: str) -> list[Message]:
        return [lay.param("convolution_param") for lay in zoo.zoo_graph(name).layers if lay.type == "Convolution"]

    base, grouped, wide = convs("1.0-SqNxt-23"), convs("1.0-G-SqNxt-23"), convs("2.0-SqNxt-23")
    assert len(base) == len(grouped) == len(wide) == 111
    assert {c.get("group") for c in base} == {1} and {c.get("group") for c in grouped} == {1, 2}
    doubled = [w.get("num_output") == 2 * b.get("num_output") for b, w in zip(base, wide, strict=True)]
    assert doubled.count(False) == 2  # the stem and the last 1x1 keep their width
    v5 = zoo.zoo_graph("1.0-SqNxt-23v5")
    assert v5.layer("Convolution1").param("convolution_param").get("kernel_size") == 5
    # v5 puts the first block's projection in series: Convolution3 reads Convolution2, not pool1.
    assert v5.layer("Convolution3").bottoms == ["Convolution2"]
    assert zoo.zoo_graph("1.0-SqNxt-23").layer("Convolution3").bottoms == ["pool1"]


def test_names_follow_table2() -> None:
    from harness.analysis.paper import paper_table

    rows = paper_table("table2")
    assert [zoo.paper_name(n) for n in zoo.zoo_names()] == [r["model"] for r in rows]
    assert [zoo.paper_input_size(n) for n in zoo.zoo_names()] == [int(r["image_size"]) for r in rows]
    assert zoo.paper_name("mobilenet_v1") == "1.0-MobileNet-224"
    assert zoo.paper_input_size("inception_v2") == 231


def test_zoo_graph_points_at_the_committed_file() -> None:
    graph = zoo.zoo_graph("alexnet")
    assert Path(graph.source) == REPO / "prototxts" / "alexnet.prototxt"
    assert graph.name == "alexnet"


def test_resolve_name_path_and_unknown(tmp_path: Path) -> None:
    assert zoo.resolve("googlenet").name == "googlenet"
    path = tmp_path / "net.prototxt"
    path.write_text(zoo.zoo_prototxt("fig2_5x5"))
    assert zoo.resolve(str(path)).source == str(path)
    with pytest.raises(HarnessError, match=r"alexnet, squeezenet_v1\.0"):
        zoo.resolve("resnet50")
    with pytest.raises(HarnessError, match="unknown zoo network 'resnet50'"):
        zoo.paper_name("resnet50")


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "densenet121      DenseNet-121       224x224" in out
    assert "inception_v2     Inception-V2       231x231" in out


def test_cli_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "show", "squeezenet_v1.1"]) == 0
    assert capsys.readouterr().out == zoo.zoo_prototxt("squeezenet_v1.1")
    assert main(["zoo", "show", "vgg16"]) == 2
    assert "unknown zoo network 'vgg16'" in capsys.readouterr().err


def test_cli_build_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["zoo", "build", "--out", str(out)]) == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == zoo.generated_files()
    assert main(["zoo", "build", "--out", str(out), "--check"]) == 0
    (out / "alexnet.prototxt").write_text("name: \"edited\"\n")
    assert main(["zoo", "build", "--out", str(out), "--check"]) == 1
    assert "alexnet.prototxt: differs" in capsys.readouterr().out
    assert main(["zoo", "build", "--out", str(out)]) == 0
    assert (out / "alexnet.prototxt").read_text() == zoo.zoo_prototxt("alexnet")
    (out / "googlenet.prototxt").write_bytes(b"name: \"\xff\"\n")  # damaged: not even UTF-8
    assert main(["zoo", "build", "--out", str(out), "--check"]) == 1
    assert main(["zoo", "build", "--out", str(out)]) == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == zoo.generated_files()  # no temporaries left


def test_cli_build_defaults_to_the_current_directorys_prototxts(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prototxts").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["zoo", "build"]) == 0
    assert len(list((tmp_path / "prototxts").iterdir())) == len(zoo.generated_files())


def test_cli_build_refuses_a_file_as_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("")
    assert main(["zoo", "build", "--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_build_into_an_unwritable_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file" / "prototxts"  # under a regular file: no folder can be made there (even as root)
    target.parent.write_text("")
    assert main(["zoo", "build", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{target}: cannot write (Not a directory)" in err and "Traceback" not in err
