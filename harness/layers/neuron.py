"""BVLC Caffe's element-wise (NeuronLayer) types beyond the common activations: AbsVal, BNLL, Clip, Exp,
Log, Swish, Threshold. One bottom, one top of its shape, no parameters; like every activation they cost
no MACs under Netscope's rule (the paper convention), and the caffe convention counts the same.
"""

from __future__ import annotations

import math

from harness.ir.graph import Layer, Shape
from harness.layers.base import Convention, LayerHandler, register
from harness.layers.caffe_rules import check, float_value, proto_fields


@register
class AbsVal(LayerHandler):
    type = "AbsVal"
    v1_names = ("ABSVAL",)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            check(not layer.in_place, layer, "AbsVal Layer does not allow in-place computation")
        return [ins[0]]


@register
class BNLL(LayerHandler):
    type = "BNLL"
    v1_names = ("BNLL",)


@register
class Clip(LayerHandler):
    type = "Clip"
    param_block = "clip_param"
    fields = proto_fields("ClipParameter")


@register
class Swish(LayerHandler):
    type = "Swish"
    param_block = "swish_param"
    fields = proto_fields("SwishParameter")


@register
class Threshold(LayerHandler):
    type = "Threshold"
    v1_names = ("THRESHOLD",)
    param_block = "threshold_param"
    fields = proto_fields("ThresholdParameter")


def _log_base(layer: Layer, block: str) -> float:
    """ExpLayer/LogLayer::LayerSetUp: base -1 means e; any other base must be positive with a finite log."""
    base = float_value(layer, layer.param(block), "base", -1.0)
    if base == -1.0:
        return 1.0
    check(base > 0, layer, f"base must be strictly positive, got {base:g}")
    log_base = math.log(base) if math.isfinite(base) else math.inf
    check(math.isfinite(log_base), layer, f"log(base) = log({base:g}) is not finite")
    return log_base


@register
class Exp(LayerHandler):
    type = "Exp"
    v1_names = ("EXP",)
    param_block = "exp_param"
    fields = proto_fields("ExpParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            _log_base(layer, "exp_param")
        return [ins[0]]


@register
class Log(LayerHandler):
    type = "Log"
    param_block = "log_param"
    fields = proto_fields("LogParameter")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            check(_log_base(layer, "log_param") != 0, layer, "1/log(base) is not finite (base 1)")
        return [ins[0]]
