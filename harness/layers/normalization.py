"""Normalisation and affine layers: BatchNorm, Scale, Bias, Normalize."""

from __future__ import annotations

from harness.ir.graph import Layer, Shape
from harness.layers import caffe_rules
from harness.layers.base import (
    Convention,
    LayerHandler,
    bool_field,
    canonical_axis,
    count,
    int_field,
    register,
    require,
)
from harness.layers.vision import netscope_lrn_macs


def channels(ins: list[Shape]) -> int:
    """BatchNorm's (and Normalize's) channel count: axis 1, or 1 for a 1-D input (batch_norm_layer.cpp)."""
    return ins[0][1] if len(ins[0]) > 1 else 1


@register
class BatchNorm(LayerHandler):
    type = "BatchNorm"
    param_block = "batch_norm_param"
    fields = frozenset({"use_global_stats", "moving_average_fraction", "eps"})
    input_rank = (1, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        return caffe_rules.batch_norm(layer, ins) if conv is Convention.CAFFE else [ins[0]]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        c = channels(ins)
        return [(c,), (c,), (1,)]  # mean, variance, moving-average scale factor

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 2 * channels(ins)


def affine_param_shape(layer: Layer, block: str, ins: list[Shape]) -> Shape:
    """Shape of Scale's/Bias's learned blob: bottom axes [axis, axis+num_axes)."""
    p = layer.param(block)
    nd = len(ins[0])
    axis = canonical_axis(layer, int_field(layer, p, "axis", 1, minimum=None), nd)
    num_axes = int_field(layer, p, "num_axes", 1, minimum=-1)
    end = nd if num_axes == -1 else axis + num_axes
    require(end <= nd, layer, f"axis {axis} + num_axes {num_axes} exceeds the input's {nd} axes")
    return ins[0][axis:end]


def _check_second_bottom(layer: Layer, block: str, ins: list[Shape]) -> None:
    if len(ins) == 2:
        p = layer.param(block)
        nd = len(ins[0])
        axis = canonical_axis(layer, int_field(layer, p, "axis", 1, minimum=None), nd)
        require(ins[0][axis:axis + len(ins[1])] == ins[1], layer,
                f"second bottom {ins[1]} does not match input {ins[0]} from axis {axis}")


@register
class Scale(LayerHandler):
    type = "Scale"
    param_block = "scale_param"
    fields = frozenset({"axis", "num_axes", "filler", "bias_term", "bias_filler"})
    bottoms = (1, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.affine(layer, "scale_param", ins)
        _check_second_bottom(layer, "scale_param", ins)
        return [ins[0]]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        shape = affine_param_shape(layer, "scale_param", ins) if len(ins) == 1 else ins[1]
        gamma = [shape] if len(ins) == 1 else []
        bias = bool_field(layer, layer.param("scale_param"), "bias_term", False)
        return gamma + ([shape] if bias else [])

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope does not count Scale's gamma/beta

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return count(outs[0])


@register
class Bias(LayerHandler):
    type = "Bias"
    param_block = "bias_param"
    fields = frozenset({"axis", "num_axes", "filler"})
    bottoms = (1, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.affine(layer, "bias_param", ins)
        _check_second_bottom(layer, "bias_param", ins)
        return [ins[0]]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return [affine_param_shape(layer, "bias_param", ins)] if len(ins) == 1 else []


@register
class Normalize(LayerHandler):
    """SSD's L2 normalisation (weiliu89/caffe); not in BVLC Caffe 1.0. Netscope counts it as an LRN."""

    type = "Normalize"
    param_block = "norm_param"
    fields = frozenset({"across_spatial", "scale_filler", "channel_shared", "eps"})
    input_rank = (2, None)  # normalize_layer.cpp: "Number of axes of bottom blob must be >=2."
    fork = "the SSD fork of Caffe (weiliu89/caffe)"

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        shared = bool_field(layer, layer.param("norm_param"), "channel_shared", True)
        return [(1,)] if shared else [(channels(ins),)]

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 2  # Netscope's LRN branch: alpha and beta

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return netscope_lrn_macs(layer, ins)
