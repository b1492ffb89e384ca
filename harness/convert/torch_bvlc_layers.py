"""PyTorch builders for the BVLC Caffe types of :mod:`harness.layers.neuron`, ``utility``, ``recurrent``
(the element-wise, structural and recurrent layers a deploy net may hold), registered in the same table as
:mod:`harness.convert.torch_layers`, with Caffe's CPU forward arithmetic (``*_layer.cpp``).

The types a deploy net cannot run, or whose output the harness cannot reproduce, are in ``NOT_CONVERTIBLE``
with the reason that a conversion reports as ``unsupported``: the losses (they need labels), the input
layers (they are the network's inputs), Filter (its batch depends on the data), HDF5Output (it writes a
file), Im2col over other than 2 spatial axes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.convert.torch_layers import NOT_CONVERTIBLE, Fn, Pool, _param, torch_layer
from harness.errors import UnsupportedLayer
from harness.ir.graph import Layer, Shape
from harness.layers.base import bool_field, float_field, int_field
from harness.layers.caffe_rules import axis_index, enum_name, pool_outputs, to_float32, uint_field, window
from harness.layers.data import InputLayer
from harness.layers.loss import LossLayer
from harness.layers.utility import SPP_METHODS, _pooling

NOT_CONVERTIBLE.update({
    "Filter": "its output batch depends on the selector's values",
    "HDF5Output": "writes its bottoms to an HDF5 file (no output to convert)",
})


def _register_not_convertible() -> None:
    from harness.layers.base import handlers

    for name, handler in handlers().items():
        if isinstance(handler, LossLayer):
            NOT_CONVERTIBLE.setdefault(name, "training-only loss layer (needs labels)")
        elif isinstance(handler, InputLayer):
            NOT_CONVERTIBLE.setdefault(name, "an input layer: the converted network takes its tops as inputs")


_register_not_convertible()


def _float(layer: Layer, block: str, name: str, default: float) -> float:
    return to_float32(float_field(layer, layer.param(block), name, default))


# ---- element-wise ---------------------------------------------------------------------------------

@torch_layer("AbsVal")
def _absval(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Fn(torch.abs, "AbsVal")


@torch_layer("BNLL")
def _bnll(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    # log(1 + exp(x)) without overflow; softplus returns x itself above 20, where Caffe's x + log(1 + exp(-x))
    # differs from x by less than float32 resolves
    return Fn(F.softplus, "BNLL")


@torch_layer("Clip")
def _clip(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    low, high = _float(layer, "clip_param", "min", 0.0), _float(layer, "clip_param", "max", 0.0)
    return Fn(lambda x: torch.clamp(torch.clamp(x, max=high), min=low), f"Clip({low:g}, {high:g})")


@torch_layer("Swish")
def _swish(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    beta = _float(layer, "swish_param", "beta", 1.0)
    return Fn(lambda x: x * torch.sigmoid(beta * x), f"Swish({beta:g})")


@torch_layer("Threshold")
def _threshold(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    threshold = _float(layer, "threshold_param", "threshold", 0.0)
    return Fn(lambda x: (x > threshold).to(x.dtype), f"Threshold({threshold:g})")


def _log_base(layer: Layer, block: str) -> float:
    base = _float(layer, block, "base", -1.0)
    return 1.0 if base == -1.0 else math.log(base)


@torch_layer("Exp")
def _exp(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    # exp_layer.cpp: y = outer * exp(inner * x), inner = log(base) * scale, outer = base ^ shift
    scale, shift = _float(layer, "exp_param", "scale", 1.0), _float(layer, "exp_param", "shift", 0.0)
    log_base = _log_base(layer, "exp_param")
    inner, outer = log_base * scale, 1.0 if shift == 0 else math.exp(log_base * shift)
    return Fn(lambda x: outer * torch.exp(inner * x), f"Exp(inner {inner:g}, outer {outer:g})")


@torch_layer("Log")
def _log(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    # log_layer.cpp: y = log(shift + scale * x) / log(base)
    scale, shift = _float(layer, "log_param", "scale", 1.0), _float(layer, "log_param", "shift", 0.0)
    base_scale = 1.0 / _log_base(layer, "log_param")
    return Fn(lambda x: torch.log(shift + scale * x) * base_scale, f"Log(scale {scale:g}, shift {shift:g})")


# ---- structural -----------------------------------------------------------------------------------

@torch_layer("Tile")
def _tile(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    p = layer.param("tile_param")
    axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
    repeats = [int_field(layer, p, "tiles", minimum=1) if i == axis else 1 for i in range(len(ins[0]))]
    return Fn(lambda x: x.repeat(*repeats), f"Tile({repeats})")


class Embed(nn.Module):
    """embed_layer.cpp: each input value, cast to int, selects a row of the (input_dim, num_output) weight."""

    def __init__(self, blobs: list[np.ndarray]) -> None:
        super().__init__()
        self.weight = _param(blobs[0])
        self.bias = _param(blobs[1]) if len(blobs) > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        y = F.embedding(x.to(torch.int64), self.weight)  # int64 casts toward zero, as static_cast<int>
        return y + self.bias if self.bias is not None else y


@torch_layer("Embed")
def _embed(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Embed(blobs)


class SPP(nn.Module):
    """spp_layer.cpp: level i pools to 2^i bins per side; the levels flattened and concatenated."""

    def __init__(self, layer: Layer, ins: list[Shape]) -> None:
        super().__init__()
        p = layer.param("spp_param")
        height = uint_field(layer, p, "pyramid_height", 0)
        method = enum_name(layer, p, "pool", SPP_METHODS, "MAX")
        if method == "STOCHASTIC":
            raise UnsupportedLayer(layer.name, layer.type, "pytorch", "STOCHASTIC pooling")
        h, w = ins[0][2], ins[0][3]
        levels = []
        for level in range(height):
            bins = 2 ** level
            (kh, ph), (kw, pw) = ((k, (k * bins - n + 1) // 2) for n in (h, w) for k in [-(-n // bins)])
            pooling = _pooling(layer, method, kh, kw, ph, pw)
            levels.append(Pool(pooling, ins, pool_outputs(pooling, ins)))
        self.levels = nn.ModuleList(levels)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.levels) == 1:
            return self.levels[0](x)
        return torch.cat([torch.flatten(level(x), 1) for level in self.levels], dim=1)


@torch_layer("SPP")
def _spp(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return SPP(layer, ins)


@torch_layer("Reduction")
def _reduction(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    p = layer.param("reduction_param")
    operation = enum_name(layer, p, "operation", "ReductionParameter.ReductionOp", "SUM")
    axis = axis_index(layer, int_field(layer, p, "axis", 0, minimum=None), ins[0])
    coeff = _float(layer, "reduction_param", "coeff", 1.0)
    size = math.prod(ins[0][axis:])
    if operation == "MEAN":
        coeff /= size
    apply = {"SUM": lambda x: x, "MEAN": lambda x: x, "ASUM": torch.abs, "SUMSQ": torch.square}[operation]
    shape = tuple(outs[0])
    return Fn(lambda x: (apply(x).reshape(*shape, size).sum(-1) * coeff), f"Reduction({operation}, axis {axis})")


@torch_layer("Im2col")
def _im2col(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    axis, kernel, stride, pad, dilation = window(layer, ins[0], least_spatial=1)
    if len(kernel) != 2 or axis != len(ins[0]) - 3:
        raise UnsupportedLayer(layer.name, layer.type, "pytorch", "im2col over other than the last 2 axes")
    shape = tuple(outs[0])
    return Fn(lambda x: F.unfold(x.reshape(-1, *x.shape[axis:]), kernel, dilation, pad, stride).reshape(shape),
              f"Im2col(kernel {kernel}, stride {stride}, pad {pad}, dilation {dilation})")


@torch_layer("BatchReindex")
def _batch_reindex(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Fn(lambda x, index: x[index.to(torch.int64)], "BatchReindex")


@torch_layer("Silence")
def _silence(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Fn(lambda *xs: (), "Silence")


class Parameter(nn.Module):
    def __init__(self, blobs: list[np.ndarray]) -> None:
        super().__init__()
        self.weight = _param(blobs[0])

    def forward(self) -> Tensor:
        return self.weight


@torch_layer("Parameter")
def _parameter(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Parameter(blobs)


class MVN(nn.Module):
    """mvn_layer.cpp on the bottom's 4-D legacy shape: subtract the mean over (H, W), or (C, H, W) across
    channels; with normalize_variance divide by sqrt(E[x^2] - E[x]^2) + eps."""

    def __init__(self, layer: Layer, outs: list[Shape]) -> None:
        super().__init__()
        p = layer.param("mvn_param")
        self.dims = (1, 2, 3) if bool_field(layer, p, "across_channels", False) else (2, 3)
        self.variance = bool_field(layer, p, "normalize_variance", True)
        self.eps = to_float32(float_field(layer, p, "eps", 1e-9))
        self.shape = tuple(outs[0])

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(self.shape)
        mean = x.mean(dim=self.dims, keepdim=True)
        if not self.variance:
            return x - mean
        variance = (x * x).mean(dim=self.dims, keepdim=True) - mean * mean
        return (x - mean) / (torch.sqrt(variance) + self.eps)


@torch_layer("MVN")
def _mvn(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return MVN(layer, outs)


# ---- recurrent ------------------------------------------------------------------------------------

def _lstm_unit(c_prev: Tensor, gates: Tensor, cont: Tensor) -> tuple[Tensor, Tensor]:
    """lstm_unit_layer.cpp: gates (i, f, o, g) along the last axis; cont zeroes the forget gate."""
    i, f, o, g = gates.chunk(4, dim=-1)
    c = cont.unsqueeze(-1) * torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return c, torch.sigmoid(o) * torch.tanh(c)


@torch_layer("LSTMUnit")
def _lstm_unit_layer(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Fn(_lstm_unit, "LSTMUnit")


class Recurrent(nn.Module):
    """Caffe's unrolled RNN/LSTM: per step, the previous hidden state times the step's cont flag, a
    matrix product of it and of the input (and of the static input), then the cell (lstm_layer.cpp,
    rnn_layer.cpp)."""

    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray]) -> None:
        super().__init__()
        self.lstm = layer.type == "LSTM"
        self.static = len(blobs) == (4 if self.lstm else 6)
        self.exposed = bool_field(layer, layer.param("recurrent_param"), "expose_hidden", False)
        self.weights = nn.ParameterList(_param(b) for b in blobs)
        self.hidden = blobs[1].shape[0] // (4 if self.lstm else 1)

    def forward(self, x: Tensor, cont: Tensor, *rest: Tensor) -> Tensor | tuple[Tensor, ...]:
        w = list(self.weights)
        steps, streams = x.shape[0], x.shape[1]
        x_in = x.reshape(steps, streams, -1) @ w[0].T + w[1]
        static = rest[0].reshape(streams, -1) @ w[2].T if self.static else 0
        states = list(rest[1:] if self.static else rest) if self.exposed else []
        zeros = x.new_zeros(1, streams, self.hidden)
        h = states[0] if states else zeros
        c = states[1] if self.lstm and states else zeros
        recurrent = w[3 if self.static else 2]
        outputs = []
        for t in range(steps):
            flag = cont[t].reshape(1, streams, 1)
            gate = x_in[t:t + 1] + static + (h * flag) @ recurrent.T
            if self.lstm:
                c, h = _lstm_unit(c, gate, cont[t].reshape(1, streams))
                outputs.append(h)
            else:
                h = torch.tanh(gate)
                w_ho, b_o = w[-2], w[-1]
                outputs.append(torch.tanh(h @ w_ho.T + b_o))
        y = torch.cat(outputs, dim=0)
        if not self.exposed:
            return y
        return (y, h, c) if self.lstm else (y, h)


@torch_layer("LSTM", "RNN")
def _recurrent(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Recurrent(layer, ins, blobs)
