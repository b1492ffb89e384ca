"""Spatial layers: Convolution, Deconvolution, Pooling, LRN."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.ir.graph import Layer, Shape
from harness.layers import caffe_rules
from harness.layers.base import (
    Convention,
    LayerHandler,
    bool_field,
    count,
    enum_field,
    given_false,
    int_field,
    netscope_reading_notes,
    register,
    require,
    spatial_triplet,
)


@dataclass(frozen=True)
class ConvGeometry:
    num_output: int
    group: int
    kernel: list[int]
    stride: list[int]
    pad: list[int]
    dilation: list[int]
    bias: bool


# The spatial fields Netscope reads as one number each (a repeated one is a list to it: NaN).
NETSCOPE_SCALARS = ("kernel_size", "stride", "pad", "dilation")
_CONV_FIELDS = frozenset({
    "num_output", "bias_term", "pad", "kernel_size", "stride", "dilation", "pad_h", "pad_w", "kernel_h",
    "kernel_w", "stride_h", "stride_w", "group", "weight_filler", "bias_filler", "engine", "axis",
    "force_nd_im2col"})


def conv_geometry(layer: Layer, ins: list[Shape]) -> ConvGeometry:
    p = layer.param("convolution_param")
    axis = int_field(layer, p, "axis", 1, minimum=None) % len(ins[0])
    require(axis == 1, layer, "only channel axis 1 is supported")
    nsp = len(ins[0]) - 2
    geo = ConvGeometry(
        num_output=int_field(layer, p, "num_output", minimum=1),
        group=int_field(layer, p, "group", 1, minimum=1),
        kernel=spatial_triplet(layer, p, "kernel", 0, nsp, minimum=1) if p.has("kernel_h")
        else spatial_triplet(layer, p, "kernel_size", 0, nsp, minimum=1),
        stride=spatial_triplet(layer, p, "stride", 1, nsp, minimum=1),
        pad=spatial_triplet(layer, p, "pad", 0, nsp),
        dilation=spatial_triplet(layer, p, "dilation", 1, nsp),  # 0 acts as 1 (Caffe has no check)
        bias=bool_field(layer, p, "bias_term", True),
    )
    require(all(k > 0 for k in geo.kernel), layer, "kernel_size (or kernel_h and kernel_w) is required")
    channels = ins[0][1]
    require(channels % geo.group == 0, layer,
            f"group {geo.group} does not divide the {channels} input channels")
    require(geo.num_output % geo.group == 0, layer,
            f"group {geo.group} does not divide num_output {geo.num_output}")
    return geo


def _channel_axis_is_1(layer: Layer, ins: list[Shape]) -> bool:
    """Whether the convolution's channel axis is 1, the one conv_geometry (and Netscope) reads; another is
    BVLC Caffe's, which only the caffe convention accepts (:mod:`harness.layers.caffe_rules`)."""
    axis = int_field(layer, layer.param("convolution_param"), "axis", 1, minimum=None)
    return len(ins[0]) > 2 and axis % len(ins[0]) == 1  # and a spatial axis: Caffe also convolves none


def _conv_params(layer: Layer, ins: list[Shape], reverse: bool) -> list[Shape]:
    if not _channel_axis_is_1(layer, ins):
        return caffe_rules.conv_params(layer, ins, reverse)
    geo = conv_geometry(layer, ins)
    weight = ((ins[0][1], geo.num_output // geo.group) if reverse else (geo.num_output, ins[0][1] // geo.group))
    return [(*weight, *geo.kernel), (geo.num_output,)] if geo.bias else [(*weight, *geo.kernel)]


def _conv_spatial(layer: Layer, geo: ConvGeometry, spatial: Shape) -> list[int]:
    out = []
    for size, k, s, p, d in zip(spatial, geo.kernel, geo.stride, geo.pad, geo.dilation, strict=True):
        extent = d * (k - 1) + 1
        require(size + 2 * p >= extent, layer,
                f"kernel extent {extent} is larger than the padded input {size}+2*{p}")
        out.append((size + 2 * p - extent) // s + 1)
    return out


@register
class Convolution(LayerHandler):
    type = "Convolution"
    v1_names = ("CONVOLUTION",)
    param_block = "convolution_param"
    fields = _CONV_FIELDS
    bottoms = tops = (1, None)  # each bottom convolved alike (BaseConvolutionLayer)
    equal_bottoms_tops = True

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.conv_outputs(layer, ins, reverse=False)
        require(len(ins[0]) >= 3, layer, f"needs a bottom with channels and a spatial axis, got {ins[0]}")
        geo = conv_geometry(layer, ins)
        return [(ins[0][0], geo.num_output, *_conv_spatial(layer, geo, ins[0][2:]))] * len(layer.tops)

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return _conv_params(layer, ins, reverse=False)

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        # each output value: (C_in / group) * kernel multiply-adds, the weight's size per output channel
        return math.prod(_conv_params(layer, ins, reverse=False)[0][1:]) * count(outs[0]) * len(outs)

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is not Convention.PAPER:
            return []
        return netscope_reading_notes(layer, "convolution_param", NETSCOPE_SCALARS, bias=True)

    def workspace(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        # Caffe's im2col buffer (col_buffer_): C_in*k*k rows by the output's spatial size, for one
        # image at a time; a 1x1, stride-1, unpadded convolution skips im2col and never allocates it.
        if not _channel_axis_is_1(layer, ins):
            geo_caffe = caffe_rules.conv(layer, ins[0], reverse=False)
            return ins[0][geo_caffe.axis] * math.prod(geo_caffe.kernel) * count(outs[0][geo_caffe.axis + 1:])
        geo = conv_geometry(layer, ins)
        if all(k == 1 for k in geo.kernel) and all(s == 1 for s in geo.stride) and not any(geo.pad):
            return 0
        return ins[0][1] * math.prod(geo.kernel) * count(outs[0][2:])


@register
class Deconvolution(LayerHandler):
    type = "Deconvolution"
    v1_names = ("DECONVOLUTION",)
    param_block = "convolution_param"
    fields = _CONV_FIELDS
    bottoms = tops = (1, None)
    equal_bottoms_tops = True

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.conv_outputs(layer, ins, reverse=True)
        require(len(ins[0]) >= 3, layer, f"needs a bottom with channels and a spatial axis, got {ins[0]}")
        geo = conv_geometry(layer, ins)
        spatial = []
        for size, k, s, p, d in zip(ins[0][2:], geo.kernel, geo.stride, geo.pad, geo.dilation, strict=True):
            out = s * (size - 1) + d * (k - 1) + 1 - 2 * p
            require(out > 0, layer, f"output size {out} is not positive")
            spatial.append(out)
        return [(ins[0][0], geo.num_output, *spatial)] * len(layer.tops)

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return _conv_params(layer, ins, reverse=True)

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        # each input value: (num_output / group) * kernel multiply-adds
        return math.prod(_conv_params(layer, ins, reverse=True)[0][1:]) * count(ins[0]) * len(outs)

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        # Netscope: k_h*k_w*C_in*C_out, whatever the group and the bias.
        return math.prod(conv_geometry(layer, ins).kernel) * ins[0][1] * outs[0][1]

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int | float:
        # Netscope: C_in*C_out*H_out*W_out*(k_w/s_w)*(k_h/s_h)*B, in doubles and in its order, so that a
        # fraction (a kernel that the stride does not divide) comes out as Netscope shows it.
        geo = conv_geometry(layer, ins)
        macs = float(ins[0][1] * outs[0][1] * count(outs[0][2:]))
        for k, s in zip(reversed(geo.kernel), reversed(geo.stride), strict=True):
            macs *= k / s
        macs *= ins[0][0]
        return int(macs) if macs.is_integer() else macs

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is not Convention.PAPER:
            return []
        geo = conv_geometry(layer, ins)
        notes = netscope_reading_notes(layer, "convolution_param", NETSCOPE_SCALARS)
        if any(d != 1 for d in geo.dilation):
            notes.append(f"Netscope ignores a Deconvolution's dilation {geo.dilation} in its output size; the output "
                         f"{outs[0]} is Caffe's")
        return notes

    def workspace(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        if not _channel_axis_is_1(layer, ins):
            geo_caffe = caffe_rules.conv(layer, ins[0], reverse=True)
            return geo_caffe.num_output * math.prod(geo_caffe.kernel) * count(ins[0][geo_caffe.axis + 1:])
        geo = conv_geometry(layer, ins)
        return geo.num_output * math.prod(geo.kernel) * count(ins[0][2:])


POOL_METHODS = ("MAX", "AVE", "STOCHASTIC")


@dataclass(frozen=True)
class PoolGeometry:
    method: str
    kernel: list[int]
    stride: list[int]
    pad: list[int]
    global_pooling: bool
    # False: the output size is rounded down (BVLC's ``round_mode: FLOOR``, or a fork's ``ceil_mode: false``).
    ceil: bool = True


def pool_geometry(layer: Layer, ins: list[Shape]) -> PoolGeometry:
    p = layer.param("pooling_param")
    method = enum_field(layer, p, "pool", "MAX", POOL_METHODS)
    if bool_field(layer, p, "global_pooling", False):
        return PoolGeometry(method, list(ins[0][2:]), [1, 1], [0, 0], True)
    # BVLC's own round_mode (CEIL or FLOOR, caffe.proto since 2018) and the forks' ceil_mode say the same.
    ceil = enum_field(layer, p, "round_mode", "CEIL", ("CEIL", "FLOOR")) == "CEIL" and \
        bool_field(layer, p, "ceil_mode", True)
    kernel = spatial_triplet(layer, p, "kernel", 0, 2, minimum=1) if p.has("kernel_h") \
        else [int_field(layer, p, "kernel_size", minimum=1)] * 2
    stride = spatial_triplet(layer, p, "stride", 1, 2, minimum=1) if p.has("stride_h") \
        else [int_field(layer, p, "stride", 1, minimum=1)] * 2
    pad = spatial_triplet(layer, p, "pad", 0, 2) if p.has("pad_h") else [int_field(layer, p, "pad", 0)] * 2
    for k, pd in zip(kernel, pad, strict=True):
        require(pd < k, layer, f"pad {pd} must be smaller than the kernel {k}")
    return PoolGeometry(method, kernel, stride, pad, False, ceil)


def pooled_size(size: int, k: int, s: int, p: int, conv: Convention, ceil: bool = True) -> int:
    """Netscope (paper): always ceil, never clipped. Caffe: ceil, or floor where a fork's ``ceil_mode: false``
    says so (as the fork's Caffe and OpenCV do), and a last window that would start in the padding dropped."""
    if conv is Convention.CAFFE and not ceil:
        return (size + 2 * p - k) // s + 1
    out = math.ceil((size + 2 * p - k) / s) + 1
    # BVLC Caffe: the last window must start inside the (left-)padded input, else it is dropped.
    if conv is Convention.CAFFE and p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


@register
class Pooling(LayerHandler):
    type = "Pooling"
    v1_names = ("POOLING",)
    param_block = "pooling_param"
    fields = frozenset({"pool", "pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w", "stride",
                        "stride_h", "stride_w", "engine", "global_pooling", "round_mode"})
    fork_params = frozenset({"ceil_mode"})
    tops = (1, 2)
    input_rank = (4, 4)  # pooling_layer.cpp: "Input must have 4 axes, corresponding to (num, channels, height, width)"

    def blob_counts(self, layer: Layer) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        # pooling_layer.hpp: only MAX pooling has the second top, its mask
        method = enum_field(layer, layer.param("pooling_param"), "pool", "MAX", POOL_METHODS)
        return self.bottoms, (1, 2 if method == "MAX" else 1)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.pool_outputs(layer, ins)
        geo = pool_geometry(layer, ins)
        spatial = []
        for size, k, s, p in zip(ins[0][2:], geo.kernel, geo.stride, geo.pad, strict=True):
            require(size + 2 * p >= k, layer, f"kernel {k} is larger than the padded input {size}+2*{p}")
            spatial.append(pooled_size(size, k, s, p, conv, geo.ceil))
        out = (ins[0][0], ins[0][1], *spatial)
        return [out] * len(layer.tops)

    def fork_fields(self, layer: Layer) -> list[str]:
        p = layer.param("pooling_param")
        return [] if bool_field(layer, p, "ceil_mode", True) or bool_field(layer, p, "global_pooling", False) \
            else ["pooling_param.ceil_mode: false"]

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is Convention.CAFFE and not self.fork_fields(layer):
            return []  # (Caffe's own rules, caffe_rules.pool_outputs, have no note to give)
        geo = pool_geometry(layer, ins)
        notes = netscope_reading_notes(layer, "pooling_param", NETSCOPE_SCALARS) if conv is Convention.PAPER else []
        if conv is Convention.PAPER and given_false(layer, "pooling_param", "global_pooling"):
            notes.append("Netscope reads 'global_pooling: false' as true (a bug): pooled with the kernel, as Caffe "
                         "does")
        if not geo.ceil:
            out = "x".join(map(str, outs[0][2:]))
            fork = not bool_field(layer, layer.param("pooling_param"), "ceil_mode", True)
            field = "ceil_mode: false" if fork else "round_mode: FLOOR"
            if conv is Convention.PAPER:
                floor = "x".join(str(pooled_size(n, k, s, p, Convention.CAFFE, False))
                                 for n, k, s, p in zip(ins[0][2:], geo.kernel, geo.stride, geo.pad, strict=True))
                notes.append(f"{field} ignored, as Netscope ignores it: pooled with ceil to {out} (Caffe, OpenCV and "
                             f"the networks the harness runs pool with floor, to {floor})")
            elif fork:
                notes.append(f"ceil_mode: false, a field of Caffe forks (BVLC Caffe has round_mode instead), "
                             f"honoured: pooled with floor to {out}, as the fork's Caffe and OpenCV do")
        return notes


def netscope_lrn_macs(layer: Layer, ins: list[Shape]) -> int:
    """Netscope's LRN (and Normalize) MACs: the input's elements times ``local_size``, 1 when not given
    (Netscope's default, not Caffe's 5)."""
    return count(ins[0]) * int_field(layer, layer.param("lrn_param"), "local_size", 1, minimum=1)


@register
class LRN(LayerHandler):
    type = "LRN"
    v1_names = ("LRN",)
    param_block = "lrn_param"
    fields = frozenset({"local_size", "alpha", "beta", "norm_region", "k", "engine"})
    input_rank = (4, 4)  # lrn_layer.cpp: "Input must have 4 axes"

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 2  # Netscope counts alpha and beta

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        size = int_field(layer, layer.param("lrn_param"), "local_size", 5, minimum=1)
        return count(ins[0]) * size

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return netscope_lrn_macs(layer, ins)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        p = layer.param("lrn_param")
        require(int_field(layer, p, "local_size", 5, minimum=1) % 2 == 1, layer, "local_size must be odd")
        enum_field(layer, p, "norm_region", "ACROSS_CHANNELS", ("ACROSS_CHANNELS", "WITHIN_CHANNEL"))
        return [ins[0]]
