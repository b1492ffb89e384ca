"""The paper convention counts as the Netscope CNN Analyzer does: one single-feature network per layer type,
field and graph rule Netscope reads (tests/data/netscope/), with the totals worked out by hand from
Netscope's formulas (src/analyzer.coffee of github dgschwend/netscope, gh-pages) in the comments.

Where Netscope's behaviour is a plain bug the harness gives the sensible number and a warning naming the
deviation; those files are in DEVIATIONS with Netscope's own totals (measured with the real Netscope,
benchmarks/netscope_parity.py), and docs/netscope.md lists each of them. With a Netscope checkout at
$HARNESS_NETSCOPE (and node), the last test runs the real thing on every file.

Every network has a 2x3x8x8 input (384 elements) unless said otherwise; "conv1" is 4 filters of 3x3, pad 1:
output 2x4x8x8 (512), MACs 9*64*3*4*2 = 13824, params 9*3*4 + 4 = 112.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.analysis.analyzer import analyze
from harness.cli.main import main
from harness.errors import GraphError, HarnessError, UnknownLayerError
from harness.ir.build import load_graph

DATA = Path(__file__).parent / "data" / "netscope"
ROOT = Path(__file__).resolve().parents[1]

# file -> (MACs, params, activations) in the paper convention, TRAIN phase: Netscope's numbers.
NETSCOPE: dict[str, tuple[int | float, int, int]] = {
    # inputs: the input counts once; conv1 adds 512
    "input_dim": (13824, 112, 384 + 512),
    "input_shape": (13824, 112, 384 + 512),
    "input_layer": (13824, 112, 384 + 512),
    "data_input_param": (13824, 112, 384 + 512),  # Netscope reads input_param on a Data layer too
    "input_layer_renamed": (13824, 112, 384 + 384 + 512),  # Input "input" writes "data": a pass-through node
    "input_after_shape": (13824, 112, 384 + 512),  # 'info' follows the image's input_shape: unseen, 0
    "two_inputs": (0, 0, 384 + 384 + 384),  # a, b, and their SUM (an add, no MAC)
    # data_label: the label is a pass-through node of the data node (+384); fc: 256*5*2 MACs, 256*5 + 5
    # params, 10 activations; SoftmaxWithLoss: its input's 10
    "data_label": (13824 + 2560, 112 + 1285, 384 + 384 + 512 + 10 + 10),
    # convolution: k_h*k_w*H_out*W_out*C_in*C_out*B/group MACs, k_h*k_w*C_in*C_out/group + C_out params
    "conv_basic": (13824, 112, 384 + 512),
    "conv_stride_pad": (9 * 16 * 3 * 4 * 2, 112, 384 + 2 * 4 * 16),  # 8x8 -> 4x4
    "conv_hw": (3 * 32 * 3 * 4 * 2, 3 * 3 * 4 + 4, 384 + 2 * 4 * 32),  # 3x1, stride 2x1, pad 1x0: 4x8
    "conv_group": (9 * 36 * 6 * 6 * 2 // 3, 9 * 6 * 6 // 3 + 6, 768 + 2 * 6 * 36),  # 2x6x8x8 in, 3 groups
    "conv_dilation": (9 * 16 * 3 * 4 * 2, 112, 384 + 2 * 4 * 16),  # extent 5: 4x4
    "conv_no_bias": (9 * 36 * 12 * 2, 108, 384 + 2 * 4 * 36),
    # inner product: H*W*C_in*C_out*B MACs, H*W*C_in*C_out + C_out params, B*C_out activations
    "ip_after_conv": (13824 + 256 * 10 * 2, 112 + 2570, 384 + 512 + 20),
    "ip_no_bias": (192 * 10 * 2, 1920, 384 + 20),
    "softmax": (3840, 1930, 384 + 20 + 20),
    "argmax": (3840, 1930, 384 + 20),  # ArgMax: unknown to Netscope, counted 0
    # pooling: ceil((in + 2*pad - k)/stride) + 1, never clipped; no MACs
    "pool_max": (0, 0, 384 + 96),
    "pool_ave": (0, 0, 384 + 96),  # k3 s2: ceil(5/2) + 1 = 4
    "pool_pad_ceil": (0, 0, 294 + 150),  # 2x3x7x7, k2 s2 p1: ceil(7/2) + 1 = 5 (Caffe clips to 4)
    "pool_global": (0, 0, 384 + 6),
    "pool_hw": (0, 0, 384 + 2 * 3 * 4 * 7),  # k 3x2, stride 2x1: 4x7
    "pool_ceil_mode_false": (0, 0, 486 + 150),  # 2x3x9x9, k2 s2: ceil -> 5x5, ceil_mode ignored
    "pool_stochastic": (0, 0, 384 + 96),
    "pool_two_tops": (0, 0, 384 + 96 + 96),  # the mask top is a pass-through node: the output again
    # normalisation: BatchNorm 2*C params; Scale one MAC per element, no params; LRN input*local_size MACs
    # (local_size 1 when not given), 2 params; Normalize is Netscope's LRN
    "batchnorm": (13824, 112 + 8, 384 + 512 + 512),
    "bn_fork_type": (13824, 112 + 8, 384 + 512 + 512),
    "scale": (13824 + 512, 112, 384 + 512 + 512),
    "scale_bias": (13824 + 512, 112, 384 + 512 + 512),
    "lrn": (384 * 5, 2, 384 + 384),
    "lrn_default_size": (384 * 1, 2, 384 + 384),
    "lrn_within_channel": (384 * 3, 2, 384 + 384),
    "normalize": (13824 + 512, 112 + 2, 384 + 512 + 512),
    # structure
    "concat": (13824, 112, 384 + 512 + 2 * 7 * 64),
    # 3 filters of 3x1 give 2x3x6x8; Netscope sums the channels whatever the axis: 6 at the first input's 8x8
    "concat_axis2": (3 * 48 * 3 * 3 * 2, 30, 384 + 288 + 2 * 6 * 64),
    "flatten": (0, 0, 384 + 384),
    "reshape": (0, 0, 384),  # Reshape: no activations
    "crop": (0, 0, 384 + 96 + 96),
    "eltwise_sum": (13824 + 1536, 112 + 16, 384 + 512 + 512 + 512),
    "eltwise_max": (13824 + 1536, 112 + 16, 384 + 512 + 512 + 512),
    "top_renamed": (13824, 112, 384 + 512 + 512),  # conv1 writes "out": a pass-through node
    "layer_without_top": (13824, 112, 384 + 512 + 512),  # a Softmax without a top still counts its output
    "bottom_names_layer": (13824, 112, 384 + 512 + 512 + 512),  # a bottom naming a layer reads its output
    "implicit_type": (13824, 112, 384 + 512 + 512),
    "type_lowercase": (13824, 112, 384 + 512 + 512),  # "input", "convolution", "relu"
    # activations: one comparison per element, no MACs, the output as activations; PReLU has no params
    "relu_in_place": (13824, 112, 1408),
    "relu": (13824, 112, 1408),
    "relu6": (13824, 112, 1408),
    "elu": (13824, 112, 1408),
    "prelu": (13824, 112, 1408),
    "dropout": (13824, 112, 1408),
    "sigmoid": (13824, 112, 896),  # unknown to Netscope: 0
    "tanh": (13824, 112, 896),
    "bias": (13824, 112, 896),
    "unknown_type_last": (13824, 112, 896),  # a type neither knows, read by no layer: 0
    "slice": (0, 0, 384),  # its tops are pass-through nodes of a node Netscope gives no size: 0
    "split": (0, 0, 384),
    # losses: SoftmaxWithLoss counts its input's elements, Accuracy nothing; the label is a pass-through
    "softmax_with_loss": (3840, 1930, 384 + 384 + 20 + 20),
    "accuracy": (3840, 1930, 384 + 384 + 20),
    # Power: C*H*W MACs when scale != 1 and C*H*W activations, no batch factor
    "power_scale": (192, 0, 384 + 192),
    "power_shift_power": (0, 0, 384 + 192),
    # Deconvolution: out = s*(in-1) + k - 2p; C_in*C_out*H_out*W_out*(k/s)^2*B MACs, k^2*C_in*C_out params
    "deconv": (3 * 4 * 256 * 4 * 2, 16 * 12, 384 + 2 * 4 * 256),  # k4 s2 p1: 16x16
    "deconv_fraction": (15606, 9 * 12, 384 + 2 * 4 * 289),  # k3 s2: 17x17, 3*4*289*1.5*1.5*2
    "deconv_group_bias": (4 * 4 * 256 * 2, 4 * 4 * 4, 512 + 2 * 4 * 256),  # group and bias ignored
    # SSD: Permute and PriorBox add no activations; PriorBox is (B, 2, 4, min_size*aspect_ratio*2)
    "permute": (13824, 112, 384 + 512 + 0 + 512),
    "priorbox": (13824, 112, 384 + 512),
    # prior1 2x2x4x16, prior2 (on a 2x4x4x4 pool) 2x2x4x36; their Concat: 2+2 channels at 4x16
    "priorbox_concat": (13824, 112, 384 + 512 + 128 + 2 * 4 * 4 * 16),
    "detection_output": (13824, 112, 384 + 512 + 512 + 512),  # DetectionOutput: unknown to Netscope
    # Faster R-CNN: the proposal layer gives 300x5 (1500, again as its "rois" pass-through node) and
    # B*8*9*H*W + 2*300*299/2 MACs; ROIPooling one MAC per region, 300 regions of C*2*2
    "python_proposal": (6912 + 13824 + 2 * 72 * 64 + 89700, 72 + 144, 384 + 2304 + 4608 + 3000),
    "roi_pooling": (6912 + 4608 + 9216 + 72 * 64 + 89700 + 300, 112 + 90 + 180,  # batch 1
                    192 + 256 + 256 + 1152 + 2304 + 3000 + 300 * 4 * 4),
    # formats and phases
    "v1_layers": (13824 + 64 * 10 * 2, 112 + 650, 384 + 512 + 512 + 128 + 20),
    "v1_v2_mixed": (13824, 112, 384 + 512 + 512),
    "v1_crop": (0, 0, 384 + 96 + 96),
    "phases": (9 * 36 * 12 * 2, 112, 384 + 2 * 4 * 36),  # the TRAIN layer: 3x3 unpadded, 4 filters
}

# file -> (the harness's totals, Netscope's totals, what the warning says): Netscope's plain bugs. NaN
# marks the totals Netscope cannot give.
NAN = float("nan")
DEVIATIONS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float], str]] = {
    "data_crop_size": ((13824, 112, 384 + 384 + 512), (NAN, 112, NAN), "channel count"),
    "memory_data": ((13824, 112, 384 + 384 + 512), (NAN, 4, NAN), "unknown to Netscope"),
    "dummy_data": ((13824, 112, 384 + 512), (NAN, 4, NAN), "unknown to Netscope"),
    "image_data": ((13824, 112, 384 + 384 + 512), (NAN, 4, NAN), "unknown to Netscope"),
    "conv_repeated_kernel": ((7776, 112, 672), (NAN, NAN, NAN), "kernel_size"),
    "conv_bias_zero": ((7776, 108, 672), (7776, 112, 672), "bias_term"),
    "pool_global_false": ((0, 0, 480), (0, 0, 390), "global_pooling: false"),
    "eltwise_prod": ((15872, 128, 1920), (15360, 128, 1920), "Eltwise as SUM"),
    "power_no_param": ((0, 0, 576), (NAN, NAN, NAN), "power_param"),
    "concat_same_bottom_twice": ((0, 0, 1152), (0, 0, 768), "twice"),
    "sigmoid_middle": ((1536, 16, 896), (0, 4, 384), "unknown to Netscope"),
    "roi_pooling_conv_feature": ((115344, 382, 11704), (115344, 382, 10504), "feature map's input"),
    "deconv_dilation": ((19494, 108, 3272), (15606, 108, 2696), "dilation"),
    "phase_exclude": ((13824, 112, 896), (13824, 112, 1408), "exclude"),
    "priorbox_flip_false": ((13824, 112, 1024), (13824, 112, 1152), "flip: false"),
    "priorbox_two_ratios": ((13824, 112, 3456), (13824, 112, NAN), "min_size * aspect_ratio"),
    "permute_short_order": ((13824, 112, 1408), (13824, 112, NAN), "fewer than 4 axes"),
    "two_inputs_input_shape": ((0, 0, 1152), (0, 0, NAN), "NaN totals"),
}


def paper(name: str):
    return analyze(load_graph(DATA / f"{name}.prototxt", phase="TRAIN"), "paper")


def totals(name: str) -> tuple[int | float, int, int]:
    t = paper(name).totals
    return t.macs, t.params, t.activations


def test_every_file_is_covered() -> None:
    files = {p.stem for p in DATA.glob("*.prototxt")}
    assert files == set(NETSCOPE) | set(DEVIATIONS)
    assert not set(NETSCOPE) & set(DEVIATIONS)


@pytest.mark.parametrize("name", sorted(NETSCOPE))
def test_paper_convention_gives_netscopes_totals(name: str) -> None:
    assert totals(name) == NETSCOPE[name]


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_netscope_bugs_give_the_sensible_number_and_say_so(name: str) -> None:
    ours, _netscope, said = DEVIATIONS[name]
    result = paper(name)
    assert (result.totals.macs, result.totals.params, result.totals.activations) == ours
    assert any(said in w for w in result.warnings), result.warnings


def test_docs_list_every_deviation_with_both_numbers() -> None:
    doc = (ROOT / "docs" / "netscope.md").read_text(encoding="utf-8")
    for name, (ours, netscope, _said) in DEVIATIONS.items():
        row = next((line for line in doc.splitlines() if f"`{name}.prototxt`" in line), None)
        assert row is not None, f"docs/netscope.md does not list {name}"
        for value in (*ours, *netscope):
            shown = "NaN" if value != value else f"{int(value):,}"
            assert shown in row, f"{name}: {shown} not in {row}"


# ---- per-layer rules the totals do not show -------------------------------------------------------

def test_pass_through_nodes_are_named_on_their_layer() -> None:
    result = paper("top_renamed")
    assert result.layers[0].pass_through == ["out"] and result.layers[0].activations == 1024


def test_deconvolution_keeps_netscopes_fraction() -> None:
    layer = paper("deconv_fraction").layers[0]
    assert layer.output_shapes == [(2, 4, 17, 17)] and layer.macs == 15606  # a whole number here
    text = (DATA / "deconv_fraction.prototxt").read_text().replace("dim: 2 dim: 3", "dim: 1 dim: 1")
    odd = analyze(load_graph("odd.prototxt", text=text, phase="TRAIN"), "paper").layers[0]
    assert odd.macs == 1 * 4 * 289 * 1.5 * 1.5 * 1  # Netscope's doubles, whole here by chance


def test_a_fractional_mac_count_is_kept_and_a_benchmark_record_of_it_reads_back(tmp_path: Path) -> None:
    """1 filter of 3x3, stride 2, on 1x1x8x8: 17x17 outputs, 289 * 1.5 * 1.5 = 650.25 MACs as Netscope counts
    them. A benchmark record carries the paper convention's MACs per forward; the store must read it back."""
    from harness.results.records import Config, Record
    from harness.results.store import ResultsStore

    text = ('input: "data"\ninput_shape { dim: 1 dim: 1 dim: 8 dim: 8 }\nlayer { name: "up" type: "Deconvolution" '
            'bottom: "data" top: "up" convolution_param { num_output: 1 kernel_size: 3 stride: 2 } }\n')
    macs = analyze(load_graph("up.prototxt", text=text, phase="TRAIN"), "paper").totals.macs
    assert macs == 650.25
    store = ResultsStore(tmp_path)
    store.append(Record(config=Config("up", "pytorch", 1), status="ok", macs_per_forward=macs))
    merged = store.read()
    assert [r.macs_per_forward for r in merged.records] == [650.25] and not merged.warnings()


def test_unknown_types_count_zero_but_pass_their_real_shape_on() -> None:
    result = paper("sigmoid_middle")
    assert [(s.macs, s.params, s.activations) for s in result.layers] == [(0, 0, 0), (1536, 16, 512)]
    assert any("type 'Sigmoid' is unknown to Netscope" in w for w in result.warnings)


def test_ceil_mode_is_ignored_as_netscope_does_and_the_warning_gives_the_floor_size() -> None:
    result = paper("pool_ceil_mode_false")
    assert result.layers[0].output_shapes == [(2, 3, 5, 5)]
    assert any("ceil_mode: false ignored, as Netscope ignores it: pooled with ceil to 5x5" in w
               and "with floor, to 4x4" in w for w in result.warnings)


# ---- the caffe convention: BVLC Caffe's refusals, the forks' shapes with --allow-unknown -------------

def caffe(name: str, allow_unknown: bool = False, phase: str = "TEST"):
    return analyze(load_graph(DATA / f"{name}.prototxt", phase=phase), "caffe", allow_unknown=allow_unknown)


@pytest.mark.parametrize("name, type_", [
    ("permute", "Permute"), ("priorbox", "PriorBox"), ("detection_output", "PriorBox"),
    ("python_proposal", "Python"), ("roi_pooling", "Python"), ("relu6", "ReLU6"), ("bn_fork_type", "BN"),
    ("normalize", "Normalize"), ("v1_crop", "CROP"), ("implicit_type", "implicit")])
def test_caffe_convention_refuses_fork_layers_as_bvlc_caffe_does(name: str, type_: str) -> None:
    with pytest.raises(UnknownLayerError, match=rf"type '{type_}' is .*which BVLC Caffe refuses \(use "
                                                r"--allow-unknown"):
        caffe(name)


def test_with_allow_unknown_fork_layers_have_their_forks_shapes() -> None:
    blobs = caffe("detection_output", allow_unknown=True).blob_shapes
    # PriorBox (SSD): aspect ratios 1, 2, 1/2 at each of 8x8 positions, 4 values each: (1, 2, 8*8*3*4)
    assert blobs["prior"] == (1, 2, 768)
    assert blobs["det"] == (1, 1, 1, 7)  # DetectionOutput's shape at set-up
    assert caffe("permute", allow_unknown=True).blob_shapes["perm"] == (2, 8, 8, 4)
    rcnn = caffe("roi_pooling", allow_unknown=True)
    assert rcnn.blob_shapes["rois"] == (300, 5) and rcnn.blob_shapes["roi_pool"] == (300, 4, 2, 2)
    assert any("rpn.proposal_layer" not in f and "Python" in f for f in rcnn.fork_features)


def test_a_type_neither_knows_is_counted_0_where_nothing_reads_it_and_refused_where_something_does() -> None:
    result = paper("unknown_type_last")
    assert result.layers[-1].output_shapes == [] and "up" not in result.blob_shapes
    assert any("layer 'up' (Upsample)" in w and "no layer reads" in w for w in result.warnings)
    text = (DATA / "unknown_type_last.prototxt").read_text() + \
        'layer { name: "relu" type: "ReLU" bottom: "up" top: "relu" }\n'
    with pytest.raises(UnknownLayerError, match="unknown layer type 'Upsample'"):
        analyze(load_graph("read.prototxt", text=text, phase="TRAIN"), "paper")
    with pytest.raises(UnknownLayerError, match="unknown layer type 'Upsample'"):
        caffe("unknown_type_last")


@pytest.mark.parametrize("params, said", [
    ("min_size: -4 aspect_ratio: 2", "min_size must be a positive number, got -4"),
    ("min_size: 'a' min_size: 4 aspect_ratio: 2", "min_size must be a positive number, got the string 'a'"),
    ("aspect_ratio: 2", "min_size is required"),
    ("min_size: 4 max_size: 2 aspect_ratio: 2", r"max_size \[2.0\] must be given once per min_size \[4.0\]"),
    ("min_size: 4 min_size: 8 max_size: 9 aspect_ratio: 2", "must be given once per min_size"),
    ("min_size: 4 aspect_ratio: 0", "aspect_ratio must be a positive number, got 0"),
])
def test_priorbox_sizes_ssd_refuses_are_refused_in_either_convention(params: str, said: str) -> None:
    """SSD's set-up checks its sizes (prior_box_layer.cpp); Netscope would multiply a negative min_size into
    a negative width. A GraphError (one line, exit 2 at the CLI) in the paper convention and in the caffe
    convention's fork counting."""
    text = (DATA / "priorbox.prototxt").read_text().replace("min_size: 4 aspect_ratio: 2", params)
    for convention, allow in (("paper", False), ("caffe", True)):
        with pytest.raises(GraphError, match=said):
            analyze(load_graph("prior.prototxt", text=text, phase="TRAIN"), convention, allow_unknown=allow)


def test_a_python_layer_of_another_module_is_refused_or_passed_through() -> None:
    text = (DATA / "roi_pooling.prototxt").read_text().replace("rpn.proposal_layer", "my.layer")
    graph = load_graph("py.prototxt", text=text, phase="TRAIN")
    with pytest.raises(UnknownLayerError, match=r"Python layer of module 'my.layer': its output shape is made"):
        analyze(graph, "paper")
    assert analyze(graph, "paper", allow_unknown=True).blob_shapes["rois"] == (1, 18, 8, 8)


@pytest.mark.parametrize("name, reason", [
    ("v1_v2_mixed", "mixes V2 'layer' and V1 'layers' blocks, which BVLC Caffe refuses"),
    ("type_lowercase", "type 'input' is 'Input' in BVLC Caffe, whose type names are case-sensitive"),
    ("bottom_names_layer", "bottom 'conv1' is no blob but the name of layer 'conv1'"),
])
def test_files_bvlc_caffe_refuses_are_read_as_netscope_reads_them_in_the_paper_convention(name: str,
                                                                                         reason: str) -> None:
    assert any(reason.split(",")[0] in w for w in paper(name).warnings)
    for allow in (False, True):
        with pytest.raises(GraphError, match=reason):
            caffe(name, allow_unknown=allow)


def test_ceil_mode_in_the_caffe_convention() -> None:
    with pytest.raises(UnknownLayerError, match=r"pooling_param.ceil_mode: false is a field of Caffe forks, which "
                                                r"BVLC Caffe refuses"):
        caffe("pool_ceil_mode_false")
    result = caffe("pool_ceil_mode_false", allow_unknown=True)
    assert result.layers[0].output_shapes == [(2, 3, 4, 4)]  # floor((9 - 2)/2) + 1, as the fork's Caffe
    assert result.fork_features == ["pool: pooling_param.ceil_mode: false"]
    assert any("honoured: pooled with floor to 4x4" in w for w in result.warnings)


def test_bvlc_round_mode_floor_is_caffes_and_netscope_ignores_it() -> None:
    text = (DATA / "pool_ceil_mode_false.prototxt").read_text().replace("ceil_mode: false", "round_mode: FLOOR")
    graph = load_graph("round.prototxt", text=text, phase="TRAIN")
    caffe_ = analyze(graph, "caffe")  # a BVLC field: no --allow-unknown needed
    assert caffe_.layers[0].output_shapes == [(2, 3, 4, 4)] and not caffe_.fork_features
    result = analyze(graph, "paper")
    assert result.layers[0].output_shapes == [(2, 3, 5, 5)]
    assert any("round_mode: FLOOR ignored, as Netscope ignores it" in w for w in result.warnings)


# ---- inputs --------------------------------------------------------------------------------------

def test_data_layer_shape_from_batch_size_and_crop_size_with_the_channels_assumed() -> None:
    graph = load_graph(DATA / "data_crop_size.prototxt", phase="TRAIN")
    assert [(s.name, s.shape) for s in graph.inputs] == [("data", (2, 3, 8, 8)), ("label", (2,))]
    result = analyze(graph, "caffe")
    assert any("channel count is in the data source" in w and "assumed 3 (--channels sets it)" in w
               for w in result.warnings)
    replaced = analyze(graph, "caffe", channels=1, input_size=5)
    assert replaced.input_shapes["data"] == (2, 1, 5, 5) and not any("assumed" in w for w in replaced.warnings)


def test_a_data_layer_without_crop_size_assumes_the_image_size_and_says_so() -> None:
    text = 'layer { name: "d" type: "Data" top: "data" data_param { batch_size: 4 } }'
    result = analyze(load_graph("d.prototxt", text=text, phase="TRAIN"), "paper")
    assert result.input_shapes["data"] == (4, 3, 224, 224)
    assert sum("assumed" in w for w in result.warnings) == 2  # the size and the channels


@pytest.mark.parametrize("layer, shapes", [
    ('type: "ImageData" top: "data" top: "label" image_data_param { batch_size: 5 new_height: 6 new_width: 7 '
     'is_color: false }', {"data": (5, 1, 6, 7), "label": (5,)}),
    ('type: "MemoryData" top: "data" top: "label" memory_data_param { batch_size: 3 channels: 2 height: 4 '
     'width: 5 }', {"data": (3, 2, 4, 5), "label": (3,)}),
    ('type: "DummyData" top: "a" top: "b" dummy_data_param { num: 2 channels: 3 channels: 1 height: 4 width: 4 }',
     {"a": (2, 3, 4, 4), "b": (2, 1, 4, 4)}),
    ('type: "WindowData" top: "data" top: "label" window_data_param { batch_size: 6 crop_size: 9 }',
     {"data": (6, 3, 9, 9), "label": (6,)}),
    ('type: "Data" top: "data" top: "label" input_param { shape { dim: 2 dim: 1 dim: 5 dim: 5 } }',
     {"data": (2, 1, 5, 5), "label": (2,)}),
])
def test_data_layer_shapes_as_caffe_derives_them(layer: str, shapes: dict) -> None:
    graph = load_graph("d.prototxt", text=f'layer {{ name: "d" {layer} }}')
    assert {s.name: s.shape for s in graph.inputs} == shapes


def test_hdf5_data_shapes_come_from_the_file(tmp_path: Path) -> None:
    text = ('layer { name: "d" type: "HDF5Data" top: "data" top: "label" '
            'hdf5_data_param { source: "list.txt" batch_size: 4 } }')
    net = tmp_path / "net.prototxt"
    net.write_text(text)
    with pytest.raises(GraphError, match=r"the shapes of an HDF5Data layer are in the HDF5 files 'list.txt' lists, "
                                         r"which is not there"):
        load_graph(net)
    h5py = pytest.importorskip("h5py", reason="h5py (the harness[hdf5] extra) reads HDF5Data's shapes")
    with h5py.File(tmp_path / "train.h5", "w") as h5:
        h5["data"] = [[[[0.0] * 6] * 5] * 2] * 10  # 10 samples of 2x5x6
        h5["label"] = [0.0] * 10
    (tmp_path / "list.txt").write_text("train.h5\n")
    assert {s.name: s.shape for s in load_graph(net).inputs} == {"data": (4, 2, 5, 6), "label": (4,)}
    # a group, or a scalar, where a top's dataset belongs: one line, as Caffe cannot load it either
    for make in (lambda h5: h5.create_group("data"), lambda h5: h5.create_dataset("data", data=1.0)):
        with h5py.File(tmp_path / "train.h5", "w") as h5:
            make(h5)
            h5["label"] = [0.0] * 10
        with pytest.raises(GraphError, match=r"train.h5 has no dataset 'data' with a first axis of samples"):
            load_graph(net)


def test_public_training_files_analyse_without_edits() -> None:
    """AlexNet's train_val as the model zoo has it: a TRAIN and a TEST Data layer with crop_size, a loss
    and an accuracy layer (written here, not copied: the same structure, one convolution)."""
    text = """name: "train_val"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mirror: true crop_size: 227 mean_file: "mean.binaryproto" }
  data_param { source: "train_lmdb" batch_size: 256 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { mirror: false crop_size: 227 } data_param { source: "val_lmdb" batch_size: 50 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
    train = analyze(load_graph("tv.prototxt", text=text, phase="TRAIN"), "paper")
    test = analyze(load_graph("tv.prototxt", text=text, phase="TEST"), "caffe")
    assert train.input_shapes["data"] == (256, 3, 227, 227) and train.phase == "TRAIN"
    assert test.input_shapes["data"] == (50, 3, 227, 227) and [s.name for s in test.layers][-2:] == ["accuracy",
                                                                                                   "loss"]


# ---- the CLI: --phase, and the output names it ---------------------------------------------------------

def test_phase_defaults_to_train_for_paper_and_test_for_caffe(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "phases.prototxt")
    assert main(["analyze", path, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)[0]
    assert doc["phase"] == "TRAIN" and [lay["name"] for lay in doc["layers"]] == ["conv_train"]
    assert main(["analyze", path, "--convention", "caffe", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert dict(zip(header.split(","), row.split(","), strict=True))["phase"] == "test"
    assert main(["analyze", path, "--phase", "test"]) == 0
    out = capsys.readouterr().out
    assert "paper convention, test phase" in out


def test_netscopes_phase_rule_is_said_in_the_paper_convention_only() -> None:
    """Where Netscope's one-include rule selects otherwise than Caffe's, only the count that follows Netscope
    says so; the caffe convention, reading the same TRAIN layers, has nothing to say about Netscope."""
    graph = load_graph(DATA / "phase_exclude.prototxt", phase="TRAIN")
    assert any("Netscope, which reads one include" in w for w in analyze(graph, "paper").warnings)
    assert not any("Netscope" in w for w in analyze(graph, "caffe").warnings)


def test_phase_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(DATA / "phases.prototxt"), "--phase", "deploy"])
    assert exit_.value.code == 2 and "invalid choice: 'deploy'" in capsys.readouterr().err
    assert main(["analyze", str(DATA / "phases.prototxt"), "--phase", "TEST", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["phase"] == "TEST"  # Caffe's spelling of the phase is taken
    with pytest.raises(HarnessError, match="phase must be TRAIN or TEST"):
        load_graph(DATA / "phases.prototxt", phase="deploy")


def test_a_net_without_input_in_the_phase_says_which_phase(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(DATA / "data_crop_size.prototxt"), "--convention", "caffe"]) == 2
    assert "has no input in the TEST phase" in capsys.readouterr().err


# ---- against the real Netscope --------------------------------------------------------------------

NETSCOPE_DIR = os.environ.get("HARNESS_NETSCOPE")


@pytest.mark.skipif(not NETSCOPE_DIR or not shutil.which("node"),
                    reason="set HARNESS_NETSCOPE to a Netscope checkout with coffeescript and lodash installed, "
                           "and have node, to compare with the real Netscope")
def test_the_real_netscope_gives_these_numbers() -> None:
    """Netscope's own totals for every file: those of NETSCOPE, and for DEVIATIONS the ones docs/netscope.md
    gives (NaN where Netscope's totals are not numbers; a thrown error counts as NaN)."""
    files = sorted(DATA.glob("*.prototxt"))
    done = subprocess.run(["node", str(ROOT / "benchmarks" / "netscope_driver.js"), "--netscope", str(NETSCOPE_DIR),
                           "--phase", "train", *map(str, files)], capture_output=True, text=True, check=True)
    measured = {}
    for line in done.stdout.splitlines():
        doc = json.loads(line)
        total = doc.get("total", {})
        measured[Path(doc["file"]).stem] = tuple(
            float(total[k]) if isinstance(total.get(k), int | float) else NAN for k in ("macc", "param", "activation"))
    expected = {**{n: tuple(map(float, t)) for n, t in NETSCOPE.items()},
                **{n: netscope for n, (_ours, netscope, _said) in DEVIATIONS.items()}}
    same = {n for n in expected if all(a == b or (a != a and b != b) for a, b in zip(measured[n], expected[n],
                                                                                       strict=True))}
    assert same == set(expected), {n: (measured[n], expected[n]) for n in set(expected) - same}
