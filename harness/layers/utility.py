"""BVLC Caffe's remaining structural and utility types: Tile, Embed, SPP, Reduction, Im2col, Filter,
BatchReindex, Silence, Parameter, MVN, HDF5Output.

Shapes and CHECKs follow each layer's ``LayerSetUp``/``Reshape`` in Caffe 9b891540. Costs: Embed is a
table lookup (its parameters count, no MACs); SPP costs what its poolings cost (nothing under Netscope's
rule); the others move or reduce data and cost no MACs. Filter's output batch depends on the data (Caffe
sizes it to the full batch at set-up, as here), and Silence and HDF5Output have no output; ``cost_note``
says so.
"""

from __future__ import annotations

import math

from harness.ir.graph import Layer, Shape
from harness.layers.base import Convention, LayerHandler, bool_field, int_field, register
from harness.layers.caffe_rules import (
    as_int,
    axis_index,
    blob,
    check,
    enum_name,
    int_div,
    legacy,
    pool_outputs,
    proto_fields,
    touched,
    uint_field,
    uint_list,
    window,
)


@register
class Tile(LayerHandler):
    type = "Tile"
    param_block = "tile_param"
    fields = proto_fields("TileParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        p = layer.param("tile_param")
        axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
        check(p.has("tiles"), layer, "the number of tiles must be specified")
        tiles = int_field(layer, p, "tiles", minimum=None)
        check(tiles > 0, layer, f"the number of tiles must be positive, got {tiles}")
        out = list(ins[0])
        out[axis] *= tiles
        return [tuple(out)]


def _embed(layer: Layer) -> tuple[int, int, bool]:
    p = layer.param("embed_param")
    n, k = uint_field(layer, p, "num_output", 0), uint_field(layer, p, "input_dim", 0)
    check(n > 0, layer, f"EmbedLayer num_output must be positive, got {n}")
    check(k > 0, layer, f"EmbedLayer input_dim must be positive, got {k}")
    return n, k, bool_field(layer, p, "bias_term", True)


@register
class Embed(LayerHandler):
    """A lookup table: bottom holds indices, each becomes a row of the (input_dim, num_output) weight."""

    type = "Embed"
    param_block = "embed_param"
    fields = proto_fields("EmbedParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        n, _, bias = _embed(layer)
        if bias and conv is Convention.CAFFE:
            touched(layer, math.prod(ins[0]), "the bias multiplier (one per index)")
        return [(*ins[0], n)]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        n, k, bias = _embed(layer)
        return [(k, n), (n,)] if bias else [(k, n)]


SPP_METHODS = "SPPParameter.PoolMethod"


@register
class SPP(LayerHandler):
    """Spatial pyramid pooling: level i pools to 2^i x 2^i bins; the levels are flattened and concatenated
    (one level is the pooling itself, 4-D)."""

    type = "SPP"
    param_block = "spp_param"
    fields = proto_fields("SPPParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        p = layer.param("spp_param")
        n, _, h, w = (legacy(layer, ins[0], i) for i in range(4))
        check(h > 0 and w > 0, layer, "input dimensions cannot be zero")
        height = uint_field(layer, p, "pyramid_height", 0)
        check(height >= 1, layer, f"pyramid_height {height}: the pyramid needs at least one level (Caffe's "
                                  "internal Split layer would produce no top)")
        check(height <= 31, layer, f"pyramid_height {height}: 2^level overflows Caffe's int")
        check(len(ins[0]) == 4, layer, f"input must have 4 axes (num, channels, height, width), got {ins[0]}")
        method = enum_name(layer, p, "pool", SPP_METHODS, "MAX")
        total = 0
        for level in range(height):
            bins = 2 ** level
            geometry = []
            for size in (h, w):
                kernel = -(-size // bins)
                pad = (kernel * bins - size + 1) // 2
                geometry.append((kernel, pad))
            (kh, ph), (kw, pw) = geometry
            pooled = pool_outputs(_pooling(layer, method, kh, kw, ph, pw), [ins[0]])[0]
            if height == 1:
                return [pooled]
            total += math.prod(pooled[1:])
        return [blob(layer, (n, total), "the top")]


def _pooling(layer: Layer, method: str, kh: int, kw: int, ph: int, pw: int) -> Layer:
    """The Pooling layer SPPLayer::GetPoolingParam configures for one level."""
    from harness.ir.textformat import parse_text

    block = (f"pooling_param {{ pool: {method} kernel_h: {kh} kernel_w: {kw} stride_h: {kh} stride_w: {kw} "
             f"pad_h: {ph} pad_w: {pw} }}")
    return Layer(layer.name, "Pooling", layer.bottoms, layer.tops[:1], parse_text(block), layer.loc)


@register
class Reduction(LayerHandler):
    type = "Reduction"
    param_block = "reduction_param"
    fields = proto_fields("ReductionParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        p = layer.param("reduction_param")
        operation = enum_name(layer, p, "operation", "ReductionParameter.ReductionOp", "SUM")
        axis = axis_index(layer, int_field(layer, p, "axis", 0, minimum=None), ins[0])
        if operation in ("SUM", "MEAN") and conv is Convention.CAFFE:
            touched(layer, math.prod(ins[0][axis:]), "the sum multiplier")
        return [ins[0][:axis]]


@register
class Im2col(LayerHandler):
    """The convolution's column buffer as a layer: channels times the kernel size, the output's extent."""

    type = "Im2col"
    v1_names = ("IM2COL",)
    param_block = "convolution_param"
    fields = proto_fields("ConvolutionParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        axis, kernel, stride, pad, dilation = window(layer, ins[0], least_spatial=1)
        out = list(ins[0])
        for i in range(len(kernel)):
            out[axis] = as_int(out[axis] * kernel[i])
            extent = as_int(dilation[i] * (kernel[i] - 1) + 1)
            out[axis + 1 + i] = as_int(int_div(as_int(ins[0][axis + 1 + i] + 2 * pad[i] - extent), stride[i]) + 1)
        return [tuple(out)]


@register
class Filter(LayerHandler):
    """Keeps the items whose selector (the last bottom) is nonzero: the batch depends on the data; Caffe
    sets it up, and so the analysis counts it, at the full batch."""

    type = "Filter"
    bottoms = (2, None)
    tops = (1, None)
    cost_note = "Filter: its output batch depends on the selector's values; counted at the full batch"

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        check(len(layer.tops) == len(ins) - 1, layer, f"{len(layer.tops)} tops for {len(ins)} bottoms (one top per "
                                                      "bottom but the selector)")
        selector = ins[-1]
        check(len(selector) >= 1, layer, "the selector blob needs an axis 0")
        touched(layer, math.prod(selector), "the selector (Caffe reads its values at set-up)")
        check(all(d == 1 for d in selector[1:]), layer,
              f"selector blob dimensions must be singletons (1), except the first: {selector}")
        for shape in ins[:-1]:
            check(len(shape) >= 1 and shape[0] == selector[0], layer,
                  "each bottom should have the same 0th dimension as the selector blob")
        return [(ins[0][0], *ins[t][1:]) for t in range(len(layer.tops))]


@register
class BatchReindex(LayerHandler):
    type = "BatchReindex"
    bottoms = (2, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        check(len(ins[1]) == 1, layer, f"the index blob must have 1 axis, got {ins[1]}")
        check(len(ins[0]) >= 1, layer, "the data blob needs an axis 0")
        return [(ins[1][0], *ins[0][1:])]


@register
class Silence(LayerHandler):
    type = "Silence"
    v1_names = ("SILENCE",)
    bottoms = (1, None)
    tops = (0, 0)
    cost_note = "Silence: discards its bottoms; no output and no cost"

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        return []


def _parameter_shape(layer: Layer) -> Shape:
    dims = uint_list(layer, layer.param("parameter_param").message("shape"), "dim")
    return blob(layer, tuple(dims), "the parameter blob")


@register
class Parameter(LayerHandler):
    """A learnable blob as a layer's output (parameter_param.shape)."""

    type = "Parameter"
    param_block = "parameter_param"
    fields = proto_fields("ParameterParameter")
    bottoms = (0, 0)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        return [_parameter_shape(layer)]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return [_parameter_shape(layer)]


@register
class MVN(LayerHandler):
    """Mean-variance normalisation; Caffe reshapes its top to the bottom's 4-D legacy shape."""

    type = "MVN"
    v1_names = ("MVN",)
    param_block = "mvn_param"
    fields = proto_fields("MVNParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        shape = tuple(legacy(layer, ins[0], i) for i in range(4))
        if conv is Convention.CAFFE:
            across = bool_field(layer, layer.param("mvn_param"), "across_channels", False)
            touched(layer, math.prod(shape[1 if across else 2:]), "the sum multiplier")
        return [shape]


@register
class HDF5Output(LayerHandler):
    type = "HDF5Output"
    v1_names = ("HDF5_OUTPUT",)
    param_block = "hdf5_output_param"
    fields = proto_fields("HDF5OutputParameter")
    bottoms = (2, 2)
    tops = (0, 0)
    cost_note = "HDF5Output: writes its bottoms to a file; no output and no cost"

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            name = layer.param("hdf5_output_param").get("file_name", "")
            check(bool(name), layer, "no hdf5_output_param.file_name: Caffe fails to create the HDF5 file")
        return []
