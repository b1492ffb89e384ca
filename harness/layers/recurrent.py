"""BVLC Caffe's recurrent layers: RNN, LSTM (an unrolled net inside the layer) and LSTMUnit (one step).

Bottoms of RNN/LSTM: the input x (T, N, ...), the continuation flags (T, N), an optional static input
(N, ...), and with ``expose_hidden`` the initial states (1, N, H) each (LSTM: h_0, c_0; RNN: h_0). Tops:
h (T, N, H), and with ``expose_hidden`` the final states. Parameter blobs, in Caffe's order (checked
against BVLC Caffe): LSTM W_xc (4H, D), b_c (4H), [W_xc_static (4H, S)], W_hc (4H, H); RNN W_xh (H, D),
b_h (H), [W_xh_static (H, S)], W_hh (H, H), W_ho (H, H), b_o (H); D and S the input's and the static
input's sizes per item. MACs: the matrix products, every step (the static one once per sequence).
"""

from __future__ import annotations

import math

from harness.ir.graph import Layer, Shape
from harness.layers.base import Convention, LayerHandler, bool_field, count, register
from harness.layers.caffe_rules import check, proto_fields, touched, uint_field


class Recurrent(LayerHandler):
    param_block = "recurrent_param"
    fields = proto_fields("RecurrentParameter")
    states = 1  # recurrent state blobs (LSTM: h and c)
    gates = 1  # hidden units per output unit in the input transform (LSTM: 4)
    bottoms = (2, 3 + 2)
    tops = (1, 1 + 2)

    def blob_counts(self, layer: Layer) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        exposed = self.states if bool_field(layer, layer.param("recurrent_param"), "expose_hidden", False) else 0
        return (2 + exposed, 3 + exposed), (1 + exposed, 1 + exposed)

    def geometry(self, layer: Layer, ins: list[Shape]) -> tuple[int, int, int, int, int | None]:
        """(T, N, H, D, S): steps, streams, outputs, input size, static input size (None without one)."""
        hidden = uint_field(layer, layer.param("recurrent_param"), "num_output", 0)
        check(hidden > 0, layer, f"num_output must be positive, got {hidden}")
        x, cont = ins[0], ins[1]
        check(len(x) >= 3, layer, f"bottom[0] must have at least 3 axes (#timesteps, #streams, input...): {x}")
        steps, streams = x[0], x[1]
        check(steps > 0, layer, f"bottom[0] has {steps} timesteps")
        check(len(cont) == 2, layer, f"bottom[1] must have exactly 2 axes (#timesteps, #streams): {cont}")
        check(cont == (steps, streams), layer, f"bottom[1] {cont} does not match bottom[0]'s (T, N) = "
                                               f"{(steps, streams)}")
        exposed = self.states if bool_field(layer, layer.param("recurrent_param"), "expose_hidden", False) else 0
        static = len(ins) > 2 + exposed
        for i, state in enumerate(ins[2 + static:]):
            check(state == (1, streams, hidden), layer, f"initial state bottom {2 + static + i} has shape {state}, "
                                                        f"needs {(1, streams, hidden)}")
        size = None
        if static:
            check(len(ins[2]) >= 2 and ins[2][0] == streams, layer,
                  f"the static input must be (N, ...) with N = {streams} and at least 2 axes, got {ins[2]}")
            size = math.prod(ins[2][1:])
        return steps, streams, hidden, math.prod(x[2:]), size

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        steps, streams, hidden, _, _ = self.geometry(layer, ins)
        if conv is Convention.CAFFE:
            touched(layer, streams * hidden, "the recurrent state")
        return [(steps, streams, hidden)] + [(1, streams, hidden)] * (len(layer.tops) - 1)

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        steps, streams, hidden, size, static = self.geometry(layer, ins)
        per_step = sum(count(s) for s in self.compute_params(layer, ins) if len(s) == 2) - self.gates * hidden * (
            size + (static or 0))
        return steps * streams * (self.gates * hidden * size + per_step) + streams * self.gates * hidden * (static or 0)


@register
class LSTM(Recurrent):
    type = "LSTM"
    states = 2
    gates = 4

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        _, _, hidden, size, static = self.geometry(layer, ins)
        gates = 4 * hidden
        return [(gates, size), (gates,), *([(gates, static)] if static is not None else []), (gates, hidden)]


@register
class RNN(Recurrent):
    type = "RNN"

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        _, _, hidden, size, static = self.geometry(layer, ins)
        return [(hidden, size), (hidden,), *([(hidden, static)] if static is not None else []), (hidden, hidden),
                (hidden, hidden), (hidden,)]


@register
class LSTMUnit(LayerHandler):
    """One LSTM step: previous cell (1, N, H), gate inputs (1, N, 4H), flags (1, N) -> cell and hidden."""

    type = "LSTMUnit"
    bottoms = (3, 3)
    tops = (2, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        check(len(ins[0]) >= 2, layer, f"bottom[0] needs an axis 1: {ins[0]}")
        streams = ins[0][1]
        for i, shape in enumerate(ins):
            axes = 2 if i == 2 else 3
            check(len(shape) == axes, layer, f"bottom[{i}] must have {axes} axes: {shape}")
            check(shape[0] == 1 and shape[1] == streams, layer, f"bottom[{i}] must be (1, {streams}, ...): {shape}")
        check(ins[1][2] == 4 * ins[0][2], layer, f"bottom[1] needs 4 x {ins[0][2]} gate inputs, got {ins[1][2]}")
        return [ins[0], ins[0]]
