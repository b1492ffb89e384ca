"""Element-wise activation layers: same shape in and out, no MACs (Netscope's rule)."""

from __future__ import annotations

from harness.ir.graph import Layer, Shape
from harness.layers.base import LayerHandler, bool_field, register, require


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

    def param_shapes(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        require(len(ins[0]) >= 2, layer, "needs an input with a channel axis")
        shared = bool_field(layer, layer.param("prelu_param"), "channel_shared", False)
        return [(1,)] if shared else [(ins[0][1],)]


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
    type = "Power"
    v1_names = ("POWER",)
    param_block = "power_param"
    fields = frozenset({"power", "scale", "shift"})
