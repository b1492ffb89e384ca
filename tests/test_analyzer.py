"""The analyzer: shapes, params, MACs and activations under both conventions, and bad networks.

Expected values are worked out by hand in the comments from the layer formulas (Caffe's and Netscope's)."""

from __future__ import annotations

import pytest

from harness.analysis.analyzer import analyze
from harness.errors import GraphError, PrototxtError, UnknownLayerError
from harness.ir.build import load_graph
from harness.layers import known_types
from harness.layers.base import handlers
from harness.layers.data import InputLayer


def net(body: str, shape: str = "dim: 1 dim: 3 dim: 8 dim: 8") -> str:
    return f'input: "data"\ninput_shape {{ {shape} }}\n{body}'


def layer(name: str, type_: str, bottom: str, top: str, params: str = "") -> str:
    bottoms = "".join(f' bottom: "{b}"' for b in bottom.split(",") if b)
    tops = "".join(f' top: "{t}"' for t in top.split(",") if t)
    return f'layer {{ name: "{name}" type: "{type_}"{bottoms}{tops} {params} }}\n'


def run(text: str, convention: str = "paper", **kw):
    return analyze(load_graph("t.prototxt", text), convention, **kw)


def test_convolution_counts() -> None:
    # 3->4 channels, 3x3, pad 1 on 8x8: out 1x4x8x8 = 256 acts; params 4*3*9 + 4 = 112; MACs 9*256*3 = 6912
    a = run(net(layer("c", "Convolution", "data", "c", "convolution_param { num_output: 4 kernel_size: 3 pad: 1 }")))
    s = a.layers[0]
    assert s.output_shapes == [(1, 4, 8, 8)]
    assert (s.params, s.macs, s.activations) == (112, 6912, 256)
    assert a.totals.activations == 256 + 3 * 64  # the input blob counts once


def test_grouped_dilated_per_axis_convolution() -> None:
    # 4 channels, group 2, kernel 3x1, dilation 2, stride_h 2: H = (8 - 5)//2 + 1 = 2, W = 8
    p = "convolution_param { num_output: 6 kernel_h: 3 kernel_w: 1 dilation: 2 stride_h: 2 stride_w: 1 group: 2 }"
    a = run(net(layer("c", "Convolution", "data", "c", p), "dim: 2 dim: 4 dim: 8 dim: 8"), "caffe")
    s = a.layers[0]
    assert s.output_shapes == [(2, 6, 2, 8)]
    assert s.param_shapes == [(6, 2, 3, 1), (6,)]
    assert s.macs == 3 * 1 * (2 * 6 * 2 * 8) * 2  # k * out count * C_in/group


def test_pooling_rounding_differs_between_conventions() -> None:
    # 8x8, kernel 3 stride 2 pad 1: ceil((8+2-3)/2)+1 = 5; Caffe clips: (5-1)*2 = 8 >= 8+1? no -> 5
    # 7x7, kernel 2 stride 2 pad 1: ceil((7+2-2)/2)+1 = 5; Caffe: (5-1)*2 = 8 >= 7+1 -> 4
    p = "pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 }"
    text = net(layer("p", "Pooling", "data", "p", p), "dim: 1 dim: 1 dim: 7 dim: 7")
    assert run(text, "paper").layers[0].output_shapes == [(1, 1, 5, 5)]
    assert run(text, "caffe").layers[0].output_shapes == [(1, 1, 4, 4)]


def test_global_pooling_and_inner_product() -> None:
    body = layer("g", "Pooling", "data", "g", "pooling_param { pool: AVE global_pooling: true }")
    body += layer("fc", "InnerProduct", "g", "fc", "inner_product_param { num_output: 10 }")
    a = run(net(body), "caffe")
    assert a.layers[0].output_shapes == [(1, 3, 1, 1)]
    assert a.layers[1].output_shapes == [(1, 10)]
    assert a.layers[1].param_shapes == [(10, 3), (10,)]
    assert a.layers[1].macs == 30


def test_batchnorm_and_scale_params_per_convention() -> None:
    body = layer("bn", "BatchNorm", "data", "data") + \
        layer("sc", "Scale", "data", "data", "scale_param { bias_term: true }")
    paper, caffe = run(net(body), "paper"), run(net(body), "caffe")
    # Netscope: BN 2*C, Scale 0 params but one MAC per element; Caffe: BN 3 blobs (C, C, 1), Scale gamma+beta
    assert [s.params for s in paper.layers] == [6, 0]
    assert [s.params for s in caffe.layers] == [7, 6]
    assert paper.layers[1].macs == caffe.layers[1].macs == 3 * 64
    # In-place layers add activations under Netscope's rule but share the blob in Caffe
    assert paper.totals.activations == 3 * 192
    assert caffe.totals.activations == 192


def test_lrn_eltwise_concat_slice() -> None:
    body = layer("n", "LRN", "data", "n", "lrn_param { local_size: 5 }")
    body += layer("e", "Eltwise", "data,n", "e", "eltwise_param { operation: SUM coeff: 1 coeff: -1 }")
    body += layer("cat", "Concat", "data,e", "cat")
    body += layer("sl", "Slice", "cat", "a,b", "slice_param { slice_point: 2 }")
    a = run(net(body))
    assert a.layers[0].macs == 192 * 5 and a.layers[0].params == 2  # Netscope: input count * local_size
    assert a.blob_shapes["cat"] == (1, 6, 8, 8)
    assert (a.blob_shapes["a"], a.blob_shapes["b"]) == ((1, 2, 8, 8), (1, 4, 8, 8))


def test_flatten_reshape_crop_argmax_softmax() -> None:
    body = layer("f", "Flatten", "data", "f")
    body += layer("r", "Reshape", "f", "r", "reshape_param { shape { dim: 0 dim: -1 dim: 4 } }")
    body += layer("s", "Softmax", "r", "s", "softmax_param { axis: 2 }")
    body += layer("am", "ArgMax", "f", "am", "argmax_param { top_k: 3 }")
    a = run(net(body), "caffe")
    assert a.blob_shapes["f"] == (1, 192)
    assert a.blob_shapes["r"] == (1, 48, 4)
    assert a.blob_shapes["am"] == (1, 1, 3)  # argmax_layer.cpp: max(3, bottom axes) axes, not always 4
    # Flatten and Reshape share their bottom's memory in Caffe
    assert [s.activations for s in a.layers[:2]] == [0, 0]


def test_batch_and_input_size_override() -> None:
    text = net(layer("c", "Convolution", "data", "c", "convolution_param { num_output: 2 kernel_size: 1 }"))
    a = run(text, batch=4, input_size=16)
    assert a.layers[0].output_shapes == [(4, 2, 16, 16)]
    assert a.layers[0].macs == 3 * 4 * 2 * 256


def test_unknown_layer_type_and_allow_unknown() -> None:
    text = net(layer("w", "Warp", "data", "w") + layer("r", "ReLU", "w", "r"))
    with pytest.raises(UnknownLayerError, match=r"layer 'w'.*unknown layer type 'Warp'"):
        run(text)
    a = run(text, allow_unknown=True)
    assert a.layers[0].output_shapes == [(1, 3, 8, 8)] and a.layers[0].macs == 0
    assert any("pass-through" in w for w in a.warnings)


def _graph_error(body: str, match: str, shape: str = "dim: 1 dim: 3 dim: 8 dim: 8") -> None:
    with pytest.raises(GraphError, match=match):
        run(net(body, shape))


def test_kernel_larger_than_padded_input() -> None:
    _graph_error(layer("c", "Convolution", "data", "c", "convolution_param { num_output: 1 kernel_size: 11 }"),
                 r"layer 'c'.*larger than the padded input 8\+2\*0")


def test_group_not_dividing_channels() -> None:
    _graph_error(layer("c", "Convolution", "data", "c", "convolution_param { num_output: 4 kernel_size: 1 group: 2 }"),
                 "group 2 does not divide the 3 input channels")


def test_concat_of_mismatched_shapes() -> None:
    body = layer("p", "Pooling", "data", "p", "pooling_param { pool: MAX kernel_size: 2 stride: 2 }")
    body += layer("cat", "Concat", "data,p", "cat")
    with pytest.raises(GraphError, match=r"all inputs must have the same shape, except at concat_axis 1"):
        run(net(body), "caffe")
    # Netscope sums the channels and keeps the first input's size: 3 + 3 channels at 8x8, and says so.
    a = run(net(body), "paper")
    assert a.blob_shapes["cat"] == (1, 6, 8, 8)
    assert any("Netscope concatenates channels" in w for w in a.warnings)


def test_string_where_a_number_belongs() -> None:
    _graph_error(layer("c", "Convolution", "data", "c", 'convolution_param { num_output: "x" kernel_size: 1 }'),
                 "'num_output' must be an integer")


def test_blobs_beyond_caffes_int_max_are_refused_as_caffe_does() -> None:
    # blob.cpp: CHECK_LE(shape[i], INT_MAX / count_) << "blob size exceeds INT_MAX"
    conv = layer("c", "Convolution", "data", "c", "convolution_param { num_output: 100000000 kernel_size: 1 }")
    _graph_error(conv, r"layer 'c' \(Convolution\).*: top 'c' would hold 6,400,000,000 elements .*INT_MAX")
    _graph_error(conv, r"input 'data' would hold 3,000,000,000,000 elements", "dim: 1 dim: 3 dim: 1000000 dim: 1000000")
    with pytest.raises(GraphError, match=r"layer 'c' .*: bottom 'data' would hold 3,000,000,000 elements"):
        run(net(conv, "dim: 1 dim: 3 dim: 8 dim: 8"), batch=15_625_000)  # an input grown by --batch
    ip = layer("ip", "InnerProduct", "data", "ip", "inner_product_param { num_output: 20000000 }")
    _graph_error(ip, "parameter blob 0 would hold 3,840,000,000 elements")
    # Within the limit, large networks are counted exactly (Python integers do not overflow).
    big = layer("c", "Convolution", "data", "c", "convolution_param { num_output: 1000 kernel_size: 1 }")
    a = run(net(big, "dim: 1000 dim: 3 dim: 40 dim: 40"))
    assert a.totals.macs == 3 * 1000 * 1000 * 1600


def test_integers_beyond_int32_are_refused_as_caffe_does() -> None:
    _graph_error(layer("c", "Convolution", "data", "c", "convolution_param { num_output: 3000000000 kernel_size: 1 }"),
                 r"field 'num_output' must be between 1 and 2147483647 .*got 3000000000 at t.prototxt:3:83")
    with pytest.raises(PrototxtError, match="dim is 2147483648, beyond INT_MAX"):
        run(net("", "dim: 1 dim: 2147483648"))


def test_wrong_arity() -> None:
    _graph_error(layer("e", "Eltwise", "data", "e"), "takes at least 2 bottom")


# Enough hyperparameters for each type to reach its shape rules (types not listed need none).
REQUIRED_PARAMS = {
    "Convolution": "convolution_param { num_output: 2 kernel_size: 1 }",
    "Deconvolution": "convolution_param { num_output: 2 kernel_size: 1 }",
    "InnerProduct": "inner_product_param { num_output: 2 }",
    "Pooling": "pooling_param { kernel_size: 1 }",
    "Reshape": "reshape_param { shape { dim: -1 } }",
    "Python": "python_param { module: 'rpn.proposal_layer' }",
}


@pytest.mark.parametrize("type_", [t for t in known_types() if not isinstance(handlers()[t], InputLayer)])
@pytest.mark.parametrize("rank", range(6))
def test_a_bottom_of_any_rank_is_a_result_or_a_graph_error(type_: str, rank: int) -> None:
    """Every handler, fed a blob of 0 to 5 axes: a result or one GraphError naming the layer, never an
    IndexError (the rank each type needs is checked in the handler table's common path)."""
    handler = handlers()[type_]
    bottoms = ",".join(["data"] * max(handler.bottoms[0], 1))
    tops = ",".join(f"t{i}" for i in range(max(handler.tops[0], 1)))
    text = net(layer("x", type_, bottoms, tops, REQUIRED_PARAMS.get(type_, "")), " ".join(["dim: 2"] * rank))
    for convention in ("paper", "caffe"):
        try:
            a = run(text, convention)
        except GraphError as exc:
            assert "layer 'x'" in str(exc) and "\n" not in str(exc)
        else:
            assert len(a.layers[0].output_shapes) == len(tops.split(","))


def test_wrong_rank_names_the_layer_and_the_axes_needed() -> None:
    body = layer("fc", "InnerProduct", "data", "fc", "inner_product_param { num_output: 3 axis: 0 }")
    with pytest.raises(GraphError, match=r"layer 'pool' \(Pooling\).*needs a bottom with 4 axes, got 'fc' of "
                                         r"shape \(3,\)"):
        run(net(body + layer("pool", "Pooling", "fc", "p", "pooling_param { kernel_size: 1 }"), "dim: 2"), "caffe")
    _graph_error(layer("acc", "Accuracy", "data,data", "a"), r"layer 'acc' \(Accuracy\).*axis 1 is out of range "
                 r"for a 1-D input", "dim: 2")
