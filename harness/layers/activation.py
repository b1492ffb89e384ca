"""Element-wise activation layers: same shape in and out, no MACs (Netscope's rule), but Power's."""

from __future__ import annotations

from harness.ir.graph import Layer, Shape
from harness.layers import caffe_rules
from harness.layers.base import Convention, LayerHandler, bool_field, count, float_field, register


@register
class ReLU(LayerHandler):
    type = "ReLU"
    v1_names = ("RELU",)
    param_block = "relu_param"
    fields = frozenset({"negative_slope", "engine"})


@register
class PReLU(LayerHandler):
    type = "PReLU"
    param_block = "prelu_param"
    fields = frozenset({"filler", "channel_shared"})
    input_rank = (2, None)  # prelu_layer.cpp: "Number of axes of bottom blob must be >=2."

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            caffe_rules.prelu_channels(layer, ins)  # Caffe reads channels() (at most 4 axes)
        return [ins[0]]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        # prelu_layer.cpp: one slope per channel, or a single one in a 0-axis blob (shape (), one value)
        shared = bool_field(layer, layer.param("prelu_param"), "channel_shared", False)
        return [()] if shared else [(ins[0][1],)]

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope counts PReLU as a ReLU: no parameters


@register
class ELU(LayerHandler):
    type = "ELU"
    param_block = "elu_param"
    fields = frozenset({"alpha"})


@register
class Sigmoid(LayerHandler):
    type = "Sigmoid"
    v1_names = ("SIGMOID",)
    param_block = "sigmoid_param"
    fields = frozenset({"engine"})


@register
class TanH(LayerHandler):
    type = "TanH"
    v1_names = ("TANH",)
    param_block = "tanh_param"
    fields = frozenset({"engine"})


@register
class Power(LayerHandler):
    """(shift + scale * x) ^ power. Netscope counts one MAC per element of one image when scale != 1, and
    the elements of one image as its activations: no batch factor in either."""

    type = "Power"
    v1_names = ("POWER",)
    param_block = "power_param"
    fields = frozenset({"power", "scale", "shift"})

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        scaled = float_field(layer, layer.param("power_param"), "scale", 1.0) != 1
        return count(outs[0][1:]) if scaled else 0

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return count(outs[0][1:])

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is Convention.PAPER and not layer.spec.has("power_param"):
            return ["Netscope fails on a Power layer without power_param (it reads power_param.power): counted "
                    "with Caffe's defaults (power 1, scale 1, shift 0) by its rule"]
        return []
