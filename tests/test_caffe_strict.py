"""``--convention caffe`` accepts exactly what BVLC Caffe's ``caffe.Net(prototxt, caffe.TEST)`` accepts.

One reproducer per class of difference a schema-free reader has with protobuf and Caffe's Net: each gives
Caffe's outcome (refused with exit status 2 and one line naming the place, or built with Caffe's shapes);
where pycaffe is available each is also run through real Caffe (tests/caffe_oracle.py), which must agree.
Then: the schema module is what the generator makes of caffe.proto; ``.caffemodel`` files are refused
where Caffe's CopyTrainedLayersFrom refuses them; a channel-shared PReLU runs on every backend.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from caffe_fuzz import Oracle, harness_outcome, verdict
from caffemodel_bytes import blob, model

from harness.ir.build import load_graph

INPUT = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
CONV = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        "convolution_param { num_output: 4 kernel_size: 3 } }\n")
RELU = 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
BN = 'layer {{ name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" {} }}\n'
NET = INPUT + CONV + RELU


def conv(name: str, bottom: str, body: str = "", extra: str = "") -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" {extra} '
            f"convolution_param {{ num_output: 4 kernel_size: 3 {body} }} }}\n")


def v1(types: str) -> str:
    return (f'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
            f'layers {{ name: "conv" type: {types} bottom: "data" top: "conv" '
            "convolution_param { num_output: 4 kernel_size: 3 } }\n")


# (name, file contents, expected: a regex the one error line matches, or the blob shapes Caffe builds)
REPRODUCERS: list[tuple[str, str | bytes, str | dict[str, tuple[int, ...]]]] = [
    # ---- the text against caffe.proto
    ("byte order mark", "\ufeff" + NET, r":1:1: a UTF-8 byte order mark"),
    ("U+001C as a space", NET.replace('name: "conv"', 'name:\x1c"conv"'), r":2:\d+: character U\+001C is not "),
    ("U+00A0 as a space", NET.replace('name: "conv"', 'name:\xa0"conv"'), r"character U\+00A0 is not whitespace"),
    ("U+2028 as a space", NET.replace('name: "relu"', 'name:\u2028"relu"'), r"character U\+2028 is not whitespace"),
    ("list syntax on a field that does not repeat", NET.replace("num_output: 4", "num_output: [4]"),
     r":2:\d+: field 'num_output' does not repeat: list syntax"),
    ("an empty list on a field that does not repeat", NET.replace("num_output: 4", "num_output: 4 group: []"),
     r"field 'group' does not repeat"),
    ("a field that does not repeat given twice", NET.replace("num_output: 4", "num_output: 4 num_output: 5"),
     r"non-repeated field 'num_output' is specified multiple times"),
    ("a block that does not repeat given twice", NET.replace("convolution_param {", "convolution_param { } "
                                                             "convolution_param {"),
     r"non-repeated field 'convolution_param' is specified multiple times"),
    ("an unknown layer field", NET.replace('type: "ReLU"', 'type: "ReLU" engine: CAFFE'),
     r'message type "caffe.LayerParameter" has no field named \'engine\''),
    ("an unknown field in another layer's block", NET.replace('top: "conv" }', 'top: "conv" relu_param { '
                                                              "kernel_size: 3 } }"),
     r'message type "caffe.ReLUParameter" has no field named \'kernel_size\''),
    ("a string for a float never read", NET.replace('type: "ReLU"', 'type: "ReLU" param { lr_mult: "x" }'),
     r"expected double for 'lr_mult', got the string 'x'"),
    ("a V1 type written as a V2 name", v1("Convolution"), r"unknown enumeration value the unquoted 'Convolution'"),
    ("a V1 type quoted", v1('"CONVOLUTION"'), r"type must be a V1 LayerType enum.*got the string 'CONVOLUTION'"),
    ("a hexadecimal float", NET.replace('top: "conv" }', 'top: "conv" relu_param { negative_slope: 0x1 } }'),
     r"expected a decimal number for 'negative_slope'"),
    ("-0 for an unsigned field", NET.replace("num_output: 4", "num_output: -0"), r"'num_output' is unsigned"),
    ("2 for a bool", NET.replace("num_output: 4", "num_output: 4 bias_term: 2"),
     r"invalid value for boolean field 'bias_term'"),
    ("an unknown enum value", NET + 'layer { name: "p" type: "Pooling" bottom: "conv" top: "p" pooling_param { '
     "pool: AVG kernel_size: 2 } }\n", r"unknown enumeration value the unquoted 'AVG' for field 'pool'"),
    ("a required field left out", NET.replace('type: "ReLU"', 'type: "Clip" clip_param { min: 0 }'),
     r"message missing required fields: .*clip_param.*max"),
    ("layer and layers in one file", v1("CONVOLUTION") + RELU, r"mixes V2 'layer' and V1 'layers' blocks"),
    ("bytes that are not UTF-8 in a comment", (NET + "# caf\xe9 \xff\n").encode("latin-1"),
     {"conv": (1, 4, 6, 6)}),
    ("vertical tab and form feed as spaces", NET.replace(" top:", "\v top:").replace(" bottom:", "\f bottom:"),
     {"conv": (1, 4, 6, 6)}),
    ("values protobuf converts", NET.replace("num_output: 4", "num_output: 0x4 bias_term: 0x1 kernel_h: 3")
     .replace("kernel_size: 3", "kernel_w: 010"), {"conv": (1, 4, 6, 1)}),
    ("an unknown field given as an empty list", NET.replace('type: "ReLU"', 'type: "ReLU" engine: []'),
     r'has no field named \'engine\''),
    ("numbers protobuf reads apart", NET + 'layer { name: "p" type: "Pooling" bottom: "conv" top: "p" pooling_param { '
     "pool: -0 kernel_size: 2 } }\n" + 'layer { name: "r2" type: "ReLU" bottom: "p" top: "p" relu_param { '
     "negative_slope: 99999999999999999999999 } }\n", {"p": (1, 4, 5, 5)}),  # an enum -0 is 0; beyond uint64 a float
    # ---- Caffe's Net and its layers
    ("more param specs than blobs", NET.replace('type: "ReLU"', 'type: "ReLU" param { lr_mult: 1 }'),
     r"1 param specs for 0 parameter blob\(s\).*Too many params specified"),
    ("BatchNorm with lr_mult 1", INPUT + CONV + BN.format("param { lr_mult: 1 decay_mult: 0 }"),
     r"param 0 has lr_mult 1; BatchNorm's statistics are not learnable"),
    ("BatchNorm with a param spec and the default lr_mult", INPUT + CONV + BN.format("param { decay_mult: 0 }"),
     r"param 0 has lr_mult 1"),
    ("BatchNorm's three old specs", INPUT + CONV + BN.format("param { lr_mult: 1 } " * 3), {"conv": (1, 4, 6, 6)}),
    ("shared params of different shapes", INPUT + conv("a", "data", extra='param { name: "w" }')
     + conv("b", "a", extra='param { name: "w" }'),
     r"layer 'b'.*cannot share param 'w' of layer 'a'.*\(4, 4, 3, 3\).*\(4, 3, 3, 3\)"),
    ("shared params, permissive, same count", INPUT
     + conv("a", "data", extra='param { name: "w" }').replace("kernel_size: 3", "kernel_h: 1 kernel_w: 3")
     + conv("b", "data", extra='param { name: "w" share_mode: PERMISSIVE }').replace("kernel_size: 3",
                                                                                     "kernel_h: 3 kernel_w: 1"),
     {"a": (1, 4, 8, 6), "b": (1, 4, 6, 8)}),
    ("shared params, strict, same count", INPUT
     + conv("a", "data", extra='param { name: "w" }').replace("kernel_size: 3", "kernel_h: 1 kernel_w: 3")
     + conv("b", "data", extra='param { name: "w" }').replace("kernel_size: 3", "kernel_h: 3 kernel_w: 1"),
     r"cannot share param 'w'.*share_mode: PERMISSIVE compares counts only"),
    ("shared params with other lr_mults", INPUT + conv("a", "data", extra='param { name: "w" lr_mult: 1 }')
     + conv("b", "data", extra='param { name: "w" lr_mult: 2 }'), r"shared param 'w' has lr_mult 2"),
    ("in place on a blob another layer reads", INPUT + CONV + 'layer { name: "pool" type: "Pooling" bottom: "conv" '
     'top: "pool" pooling_param { kernel_size: 2 } }\n' + RELU, r"layer 'relu'.*computes 'conv' in place, but another "
     r"layer also reads"),
    ("an Input layer with a bottom", INPUT + INPUT.replace('"in"', '"in2"').replace('top: "data"',
                                                                                   'bottom: "data" top: "d2"'),
     r"Input Layer takes 0 bottom blob\(s\)"),
    ("an Input layer after its consumer", CONV + INPUT, r"layer 'conv'.*unknown bottom blob 'data'"),
    ("a Split in place", NET + 'layer { name: "s" type: "Split" bottom: "conv" top: "conv" top: "c2" }\n',
     r"Split Layer does not allow in-place computation"),
    ("a Flatten in place", NET + 'layer { name: "f" type: "Flatten" bottom: "conv" top: "conv" }\n',
     r"Flatten Layer does not allow in-place computation"),
    ("STOCHASTIC pooling with padding", NET + 'layer { name: "p" type: "Pooling" bottom: "conv" top: "p" '
     "pooling_param { pool: STOCHASTIC kernel_size: 3 pad: 1 } }\n",
     r"padding implemented only for average and max pooling"),
    ("an im2col buffer over INT_MAX", INPUT.replace("dim: 8 dim: 8", "dim: 4096 dim: 4096").replace("dim: 3", "dim: 4")
     + conv("big", "data", "pad: 1").replace("kernel_size: 3", "kernel_size: 11"),
     r"the im2col buffer \(col_buffer_\) \(484, 4088, 4088\) exceeds INT_MAX"),
    ("propagate_down not once per bottom",
     NET.replace('type: "ReLU"', 'type: "ReLU" propagate_down: true propagate_down: false'),
     r"2 propagate_down values for 1 bottoms"),
    ("a loss with two tops and no loss_weight", 'layer { name: "in" type: "Input" top: "x" top: "y" input_param { '
     "shape { dim: 2 dim: 5 } shape { dim: 2 } } }\n"
     'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "l" top: "p" }\n',
     r"1 loss_weight value\(s\) for 2 top\(s\)"),
    ("two loss weights for one top", INPUT + CONV.replace("convolution_param", "loss_weight: 1 loss_weight: 0 "
                                                          "convolution_param"),
     r"2 loss_weight value\(s\) for 1 top\(s\)"),
    ("two loss weights for one top that another layer reads (Caffe moves them onto its Split)",
     INPUT + CONV.replace("convolution_param", "loss_weight: 1 loss_weight: 0 convolution_param")
     + 'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { kernel_size: 2 } }\n',
     {"conv": (1, 4, 6, 6), "pool": (1, 4, 5, 5)}),
    ("in place on a blob that is also a loss", INPUT + CONV.replace("convolution_param", "loss_weight: 1 "
                                                                    "convolution_param") + RELU,
     r"layer 'relu'.*computes 'conv' in place, but another layer also reads"),
    ("a top produced twice", NET + CONV.replace('name: "conv"', 'name: "conv2"'),
     r"layer 'conv2'.*top 'conv' is already produced"),
    ("a layer type of a fork", NET + 'layer { name: "n" type: "Normalize" bottom: "conv" top: "n" }\n',
     r"type 'Normalize' is the SSD fork of Caffe .*, which BVLC Caffe refuses"),
    ("an unknown filler", NET.replace("kernel_size: 3", 'kernel_size: 3 weight_filler { type: "he" }'),
     r"unknown filler type 'he'"),
    ("a xavier filler for a 0-axis blob", NET + 'layer { name: "p" type: "PReLU" bottom: "conv" top: "p" '
     'prelu_param { channel_shared: true filler { type: "xavier" } } }\n', r"the xavier filler needs an axis 0"),
    ("a PReLU on 5 axes", INPUT.replace("dim: 8 dim: 8", "dim: 8 dim: 8 dim: 2")
     + 'layer { name: "p" type: "PReLU" bottom: "data" top: "p" }\n', r"legacy .* accessors need at most 4 axes"),
    ("a pooling kernel larger than the padded input", NET + 'layer { name: "p" type: "Pooling" bottom: "conv" '
     'top: "p" pooling_param { pool: MAX kernel_size: 7 stride: 3 } }\n', {"p": (1, 4, 1, 1)}),
    ("a convolution kernel larger than the input by less than the stride", NET + conv("c2", "conv", "stride: 4")
     .replace("kernel_size: 3", "kernel_size: 8"), {"c2": (1, 4, 1, 1)}),  # (6 - 8) / 4 + 1, C's division
    ("a convolution to an empty blob, without a bias",
     NET + conv("c2", "conv", "stride: 4 bias_term: false").replace("kernel_size: 3", "kernel_size: 11"),
     {"c2": (1, 4, 0, 0)}),
    ("a convolution to an empty blob, with a bias (Caffe fills its multiplier)",
     NET + conv("c2", "conv", "stride: 4").replace("kernel_size: 3", "kernel_size: 11"),
     r"the bias multiplier \(one per output position\) would be empty"),
    ("ArgMax of a 2-axis blob", NET + 'layer { name: "f" type: "Flatten" bottom: "conv" top: "f" }\n'
     'layer { name: "am" type: "ArgMax" bottom: "f" top: "am" argmax_param { top_k: 2 } }\n', {"am": (1, 1, 2)}),
    ("a channel-shared PReLU", NET + 'layer { name: "p" type: "PReLU" bottom: "conv" top: "p" '
     "prelu_param { channel_shared: true } }\n", {"p": (1, 4, 6, 6)}),
    ("Eltwise MAX with coefficients", NET + 'layer { name: "e" type: "Eltwise" bottom: "conv" bottom: "conv" '
     'top: "e" eltwise_param { operation: MAX coeff: 1 coeff: 2 } }\n', {"e": (1, 4, 6, 6)}),
    ("more input_dim values than inputs", v1("CONVOLUTION").replace("input_dim: 8\n", "input_dim: 8\ninput_dim: 5\n",
                                                                    1), {"conv": (1, 4, 6, 3)}),  # the first 4 count
    ("the BVLC types beyond the common ones", INPUT + 'layer { name: "t" type: "Tile" bottom: "data" top: "t" '
     "tile_param { tiles: 2 } }\n"
     'layer { name: "s" type: "SPP" bottom: "t" top: "s" spp_param { pyramid_height: 2 } }\n'
     'layer { name: "r" type: "Reduction" bottom: "s" top: "r" reduction_param { axis: 1 } }\n',
     {"t": (1, 6, 8, 8), "s": (1, 30), "r": (1,)}),
]
PARAMS = {"a channel-shared PReLU": {"p": [()]}}


@pytest.mark.parametrize(("name", "text", "expected"), REPRODUCERS, ids=[r[0] for r in REPRODUCERS])
def test_reproducer_gives_caffes_outcome(tmp_path: Path, name: str, text: str | bytes,
                                         expected: str | dict[str, tuple[int, ...]]) -> None:
    path = tmp_path / "net.prototxt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    ours = harness_outcome(path)
    assert ours["rc"] in (0, 2), ours["error"]
    if isinstance(expected, str):
        assert ours["rc"] == 2, f"accepted; Caffe refuses it ({expected})"
        assert re.search(expected, ours["error"]), ours["error"]
        assert f"{path}:" in ours["error"], "the refusal does not say where (file:line:column)"
    else:
        assert ours["rc"] == 0, ours["error"]
        assert {k: tuple(ours["blobs"][k]) for k in expected} == expected
        for layer, shapes in PARAMS.get(name, {}).items():
            assert [tuple(s) for s in ours["params"][layer]] == shapes


WHITESPACE = [r for r in REPRODUCERS if "as a space" in r[0]]


@pytest.mark.parametrize(("name", "text", "expected"), WHITESPACE, ids=[r[0] for r in WHITESPACE])
def test_odd_whitespace_is_refused_in_the_paper_convention_too(tmp_path: Path, capsys, name: str, text: str,
                                                               expected: str) -> None:
    from harness.cli.main import main

    path = tmp_path / "net.prototxt"
    path.write_text(text, encoding="utf-8")
    assert main(["analyze", str(path), "--convention", "paper"]) == 2
    assert re.search(expected, capsys.readouterr().err)


@pytest.fixture(scope="module")
def oracle():
    found = Oracle()
    yield found
    found.close()


@pytest.mark.needs_pycaffe
def test_real_caffe_agrees_with_every_reproducer(tmp_path: Path, oracle: Oracle) -> None:
    disagree = []
    for i, (name, text, _) in enumerate(REPRODUCERS):
        path = tmp_path / f"r{i}.prototxt"
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        path.write_bytes(data)
        ours, theirs = harness_outcome(path), oracle.judge(path)
        if verdict(ours, theirs, data) != "agree":
            disagree.append(f"{name}: harness {ours.get('error') or 'accepted'} | caffe {json.dumps(theirs)[:300]}")
    assert not disagree, "\n".join(disagree)


def caffe_source() -> Path:
    """The ``src/caffe`` tree of a Caffe build here (docker/build-caffe.sh keeps it in the prefix, and the
    fetched source in its cache); skips (fails with HARNESS_REQUIRE_PYCAFFE) without one."""
    candidates = [Path(os.environ.get("CAFFE_ROOT", "/opt/caffe")), Path.home() / ".cache/harness"]
    trees = [p for root in candidates for p in [*root.glob("src/caffe"), *root.glob("caffe-source-*/tree/src/caffe")]
             if (p / "proto/caffe.proto").is_file()]
    if not trees:
        if os.environ.get("HARNESS_REQUIRE_PYCAFFE"):
            pytest.fail("no source tree of a Caffe build found")
        pytest.skip("no source tree of a Caffe build here")
    return trees[0]


def test_the_schema_module_is_generated_from_caffes_proto() -> None:
    from harness.ir import caffe_schema
    from harness.ir.caffe_schema_gen import render

    proto = caffe_source() / "proto/caffe.proto"
    text = proto.read_text(encoding="utf-8")
    assert render(proto, text) == Path(caffe_schema.__file__).read_text(encoding="utf-8")


def test_the_handler_table_knows_every_layer_type_caffe_registers() -> None:
    """docs/caffe-convention.md: every type BVLC Caffe registers (REGISTER_LAYER_CLASS / _CREATOR in its
    source) has a handler."""
    from harness.layers.base import known_types

    registered = {m for path in caffe_source().rglob("*.c[pu]*")
                  for m in re.findall(r"REGISTER_LAYER_(?:CLASS|CREATOR)\((\w+)", path.read_text(errors="replace"))}
    assert len(registered) > 50
    assert registered <= set(known_types()), sorted(registered - set(known_types()))


def test_the_graph_is_read_once_for_both_conventions() -> None:
    """The caffe convention's checks read the parsed text again: the paper convention of the same graph
    object is not affected by them (a fork field is fine for Netscope)."""
    from harness.analysis.analyzer import analyze
    from harness.errors import HarnessError

    graph = load_graph("f.prototxt", NET.replace('type: "ReLU"', 'type: "ReLU" engine: CAFFE'))
    assert analyze(graph, "paper").totals.params == 112
    with pytest.raises(HarnessError, match="no field named 'engine'"):
        analyze(graph, "caffe")
    assert analyze(graph, "caffe", forks=True).totals.params == 112


# ---- .caffemodel: refused where Caffe's CopyTrainedLayersFrom refuses it ---------------------------------

WEIGHTED = (INPUT + CONV + 'layer { name: "p" type: "PReLU" bottom: "conv" top: "p" '
            "prelu_param { channel_shared: true } }\n")
W, B = (4, 3, 3, 3), (4,)
LEGACY_W = {1: 4, 2: 3, 3: 3, 4: 3}
MODELS = {
    "exact shapes": (model(("conv", [blob(W, values=108), blob(B, values=4)]), ("p", [blob((), values=1)])), True),
    "legacy dims padded with 1s": (model(("conv", [blob(legacy=LEGACY_W, values=108),
                                                   blob(legacy={1: 1, 2: 1, 3: 1, 4: 4}, values=4)]),
                                         ("p", [blob(legacy={1: 1, 2: 1, 3: 1, 4: 1}, values=1)])), True),
    "an explicit shape padded with 1s": (model(("conv", [blob(W, values=108), blob((1, 1, 1, 4), values=4)])),
                                         False),
    "a legacy dimension left out (0)": (model(("conv", [blob(W, values=108),
                                                        blob(legacy={2: 1, 3: 1, 4: 4}, values=4)])), False),
    "an empty shape for a vector": (model(("conv", [blob(W, values=108), blob((), values=1)])), False),
    "a layer with no blobs": (model(("conv", [blob(W, values=108), blob(B, values=4)]), ("p", [])), False),
    "a blob too few": (model(("conv", [blob(W, values=108)])), False),
    "too few values": (model(("conv", [blob(W, values=107), blob(B, values=4)])), False),
    "a layer the net does not have": (model(("conv", [blob(W, values=108), blob(B, values=4)]),
                                            ("fc9", [blob((3,), values=3)])), True),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_analyze_weights_refuses_what_caffe_refuses_to_copy(tmp_path: Path, name: str) -> None:
    from harness.cli.main import main

    data, caffe_copies = MODELS[name]
    net, model = tmp_path / "net.prototxt", tmp_path / "m.caffemodel"
    net.write_text(WEIGHTED)
    model.write_bytes(data)
    rc = main(["analyze", str(net), "--convention", "caffe", "--weights", str(model), "--format", "csv"])
    assert rc == (0 if caffe_copies else 2)


@pytest.mark.needs_pycaffe
def test_real_caffe_copies_exactly_those_models(tmp_path: Path, oracle: Oracle) -> None:
    net = tmp_path / "net.prototxt"
    net.write_text(WEIGHTED)
    differ = []
    for i, (name, (data, caffe_copies)) in enumerate(sorted(MODELS.items())):
        model = tmp_path / f"m{i}.caffemodel"
        model.write_bytes(data)
        said = oracle.judge(net, model)
        if said["ok"] is not caffe_copies:
            differ.append(f"{name}: expected {caffe_copies}, Caffe: {said}")
    assert not differ, "\n".join(differ)


@pytest.mark.needs_pycaffe
def test_channel_shared_prelu_runs_on_every_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    net = tmp_path / "prelu.prototxt"
    net.write_text(WEIGHTED + 'layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" '
                   "inner_product_param { num_output: 3 } }\n")
    rc = main(["verify", str(net), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    ran = {r["backend"]: r["status"] for doc in report for r in doc["runs"]}
    assert rc == 0 and report[0]["ok"], ran
    # PyTorch and Caffe always; OpenCV and ONNX Runtime where installed
    assert set(ran) >= {"pytorch", "caffe"} and set(ran.values()) == {"ok"}, ran


DEPLOY_TYPES = INPUT.replace("dim: 3 dim: 8 dim: 8", "dim: 4 dim: 6 dim: 6") + "".join(
    f'layer {{ name: "{name}" type: "{type_}" bottom: "{bottom}" top: "{name}" {params} }}\n'
    for name, type_, bottom, params in [
        ("abs", "AbsVal", "data", ""), ("bnll", "BNLL", "abs", ""),
        ("clip", "Clip", "bnll", "clip_param { min: 0.5 max: 1.5 }"),
        ("exp", "Exp", "clip", "exp_param { base: 2 scale: 0.5 shift: 0.1 }"),
        ("log", "Log", "exp", "log_param { base: 10 shift: 1 }"), ("sw", "Swish", "log", "swish_param { beta: 1.5 }"),
        ("tile", "Tile", "sw", "tile_param { axis: 1 tiles: 2 }"),
        ("mvn", "MVN", "tile", "mvn_param { across_channels: true }"),
        ("spp", "SPP", "mvn", "spp_param { pyramid_height: 3 pool: AVE }"),
        ("cols", "Im2col", "mvn", "convolution_param { kernel_size: 3 stride: 2 pad: 1 }"),
        ("red", "Reduction", "cols", "reduction_param { operation: SUMSQ axis: 2 coeff: 0.5 }"),
        ("th", "Threshold", "red", "threshold_param { threshold: 10 }"),
        ("fc", "InnerProduct", "spp", "inner_product_param { num_output: 6 }")])
DEPLOY_RECURRENT = ('layer { name: "in" type: "Input" top: "x" top: "cont" top: "s" top: "idx" input_param { '
                    "shape { dim: 1 dim: 1 dim: 3 } shape { dim: 1 dim: 1 } shape { dim: 1 dim: 5 } "
                    "shape { dim: 1 dim: 1 } } }\n"
                    'layer { name: "emb" type: "Embed" bottom: "idx" top: "emb" embed_param { num_output: 3 '
                    "input_dim: 2 } }\n"
                    'layer { name: "sum" type: "Eltwise" bottom: "emb" bottom: "x" top: "xs" }\n'
                    'layer { name: "lstm" type: "LSTM" bottom: "xs" bottom: "cont" bottom: "s" top: "h" '
                    "recurrent_param { num_output: 6 } }\n"
                    'layer { name: "rnn" type: "RNN" bottom: "h" bottom: "cont" top: "o" recurrent_param { '
                    "num_output: 3 } }\n")


@pytest.mark.needs_pycaffe
@pytest.mark.parametrize("text", [DEPLOY_TYPES, DEPLOY_RECURRENT], ids=["element-wise and structural", "recurrent"])
def test_pytorch_conversion_of_bvlc_types_computes_what_caffe_computes(tmp_path: Path, text: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    net = tmp_path / "types.prototxt"
    net.write_text(text)
    rc = main(["verify", str(net), "--backends", "pytorch,caffe", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report[0]["ok"], json.dumps(report)[-2000:]
