"""Caffe layer types as ``torch.nn.Module``s, with Caffe's forward (TEST phase) semantics.

This is the PyTorch column of the per-layer-type handler table: one builder per handler type name
in :mod:`harness.layers`, registered with :func:`torch_layer`. It is a separate module (not a method
on the handler classes) because every builder defines ``nn.Module`` subclasses, which need torch at
import time, and ``harness.layers`` must stay importable without torch (``harness analyze``). The
hyperparameters are read through the same helpers the handlers use (``conv_geometry``,
``pool_geometry``, ...), so the two cannot disagree on what a prototxt means; the output shapes come
from the analyzer's ``caffe`` convention.

A builder gets (layer, input shapes, output shapes, parameter blobs) and returns a module whose
``forward(*bottoms)`` returns one tensor or a tuple (one per top). Shapes are fixed at build time:
a converted network is built for one batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.errors import UnsupportedLayer
from harness.ir.graph import Layer, Shape
from harness.layers.base import (
    bool_field,
    canonical_axis,
    enum_field,
    float_field,
    int_field,
)
from harness.layers.common import ELTWISE_OPS, ip_axis_and_k
from harness.layers.vision import conv_geometry, pool_geometry

Builder = Callable[[Layer, list[Shape], list[Shape], list[np.ndarray]], nn.Module]
TORCH_LAYERS: dict[str, Builder] = {}
# Handler types with no TEST-phase forward to convert: they need labels (training-only layers).
NOT_CONVERTIBLE: dict[str, str] = {
    "SoftmaxWithLoss": "training-only loss layer (needs labels)",
    "Accuracy": "training-only metric layer (needs labels)",
    # Fork layers the analyzer counts but the PyTorch conversion does not run (OpenCV runs SSD's itself).
    "BN": "a Caffe fork's batch normalisation, whose statistics mode is the fork's own",
    "CROP": "the FCN fork's crop, whose offsets come from the net's geometry",
    "PriorBox": "SSD's prior boxes",
    "DetectionOutput": "SSD's non-maximum suppression",
    "Python": "a Python layer's code",
    "ROIPooling": "Faster R-CNN's region pooling",
    "implicit": "Netscope's marker, a type no Caffe has",
}


def torch_layer(*types: str) -> Callable[[Builder], Builder]:
    def deco(builder: Builder) -> Builder:
        for t in types:
            TORCH_LAYERS[t] = builder
        return builder
    return deco


def _param(array: np.ndarray) -> nn.Parameter:
    # A copy: the weight set is shared (read-only) with the other backends.
    return nn.Parameter(torch.tensor(np.asarray(array, dtype=np.float32)), requires_grad=False)


def _broadcast_shape(shape: Shape, axis: int, ndim: int) -> tuple[int, ...]:
    """``shape`` placed at ``axis`` of an ``ndim``-D tensor, 1 elsewhere (Caffe's Scale/Bias broadcast)."""
    return (1,) * axis + tuple(shape) + (1,) * (ndim - axis - len(shape))


class Fn(nn.Module):
    """A parameter-free layer given by a function of its bottoms."""

    def __init__(self, fn: Callable[..., Tensor | tuple[Tensor, ...]], name: str) -> None:
        super().__init__()
        self.fn, self.name = fn, name

    def forward(self, *xs: Tensor) -> Tensor | tuple[Tensor, ...]:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.name


# ---- convolution ---------------------------------------------------------------------------------

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class Conv(nn.Module):
    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray], transposed: bool) -> None:
        super().__init__()
        geo = conv_geometry(layer, ins)
        nsp = len(ins[0]) - 2
        table = _DECONV if transposed else _CONV
        if nsp not in table:
            raise UnsupportedLayer(layer.name, layer.type, "pytorch", f"{nsp} spatial axes")
        self.fn = table[nsp]
        self.weight = _param(blobs[0])  # Caffe's layouts are torch's: (out, in/g, k..) / (in, out/g, k..)
        self.bias = _param(blobs[1]) if geo.bias else None
        self.stride, self.pad, self.dilation, self.groups = geo.stride, geo.pad, geo.dilation, geo.group

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, self.weight, self.bias, stride=self.stride, padding=self.pad,
                       dilation=self.dilation, groups=self.groups)


@torch_layer("Convolution")
def _convolution(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Conv(layer, ins, blobs, transposed=False)


@torch_layer("Deconvolution")
def _deconvolution(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Conv(layer, ins, blobs, transposed=True)


# ---- pooling ----------------------------------------------------------------------------------

class Pool(nn.Module):
    """Caffe pooling: ceil output size with Caffe's clipping (taken from the analyzer), MAX over the
    window clipped to the input, AVE dividing by the window clipped to the *padded* input.

    When the padding is symmetric and every window fits the padded input (pad_end == pad), torch's
    own pooling computes exactly Caffe's values (``count_include_pad=True`` divides by k*k, which is
    then Caffe's divisor everywhere). Otherwise the input is padded explicitly (0 for AVE; for MAX
    the lowest finite value of the input's dtype, which in fp32 is Caffe's -FLT_MAX) to exactly the
    extent the last window reaches, pooled without padding, and AVE is rescaled by a constant
    k*k/divisor map: the same arithmetic Caffe does, and no reliance on any engine's ceil_mode rule
    when exported to ONNX. The MAX pad value follows the dtype because -FLT_MAX does not fit in
    half precision: under fp16/bf16 autocast it would overflow (an error, or -inf).
    """

    def __init__(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> None:
        super().__init__()
        geo = pool_geometry(layer, ins)
        if geo.method == "STOCHASTIC":
            raise UnsupportedLayer(layer.name, layer.type, "pytorch", "STOCHASTIC pooling")
        self.is_max = geo.method == "MAX"
        self.kernel, self.stride = geo.kernel, geo.stride
        sizes, pooled = ins[0][2:], outs[0][2:]
        ends = [(o - 1) * s + k - n - p
                for o, s, k, n, p in zip(pooled, geo.stride, geo.kernel, sizes, geo.pad, strict=True)]
        self.native = ends == geo.pad and all(p <= k // 2 for p, k in zip(geo.pad, geo.kernel, strict=True))
        self.padding = geo.pad
        # F.pad order: last axis first, (begin, end) each; a negative end crops rows no window reads.
        self.explicit_pad = (geo.pad[1], ends[1], geo.pad[0], ends[0])
        self.register_buffer("rescale", None)
        if not self.native and not self.is_max:
            divisor = np.outer(*(_caffe_ave_divisor(n, o, k, s, p) for n, o, k, s, p in
                                 zip(sizes, pooled, geo.kernel, geo.stride, geo.pad, strict=True)))
            factor = math.prod(geo.kernel) / divisor
            if not np.allclose(factor, 1.0, rtol=0, atol=0):
                self.rescale = torch.from_numpy(factor.astype(np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if self.native:
            if self.is_max:
                return F.max_pool2d(x, self.kernel, self.stride, self.padding)
            return F.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=True)
        x = F.pad(x, self.explicit_pad, value=torch.finfo(x.dtype).min if self.is_max else 0.0)
        if self.is_max:
            return F.max_pool2d(x, self.kernel, self.stride)
        y = F.avg_pool2d(x, self.kernel, self.stride)
        return y * self.rescale if self.rescale is not None else y


def _caffe_ave_divisor(size: int, pooled: int, k: int, s: int, p: int) -> np.ndarray:
    """Per output position along one axis: Caffe's AVE pool_size, the window clipped to size + pad."""
    starts = np.arange(pooled) * s - p
    return (np.minimum(starts + k, size + p) - starts).astype(np.float64)


@torch_layer("Pooling")
def _pooling(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    if len(layer.tops) > 1:
        raise UnsupportedLayer(layer.name, layer.type, "pytorch", "MAX pooling's mask top")
    return Pool(layer, ins, outs)


# ---- LRN --------------------------------------------------------------------------------------

class LRN(nn.Module):
    """ACROSS_CHANNELS: x * (k + alpha/n * sum over n channels of x^2)^-beta (zero-padded channels).
    WITHIN_CHANNEL: x * (1 + alpha * mean over an n x n window of x^2)^-beta, the mean over the
    zero-padded window (Caffe builds it from AVE pooling and a Power layer with shift 1: k is unused).
    """

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        p = layer.param("lrn_param")
        self.size = int_field(layer, p, "local_size", 5, minimum=1)
        self.alpha = float_field(layer, p, "alpha", 1.0)
        self.beta = float_field(layer, p, "beta", 0.75)
        self.k = float_field(layer, p, "k", 1.0)
        self.across = enum_field(layer, p, "norm_region", "ACROSS_CHANNELS",
                                 ("ACROSS_CHANNELS", "WITHIN_CHANNEL")) == "ACROSS_CHANNELS"

    def forward(self, x: Tensor) -> Tensor:
        if self.across:
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        mean_sq = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
        return x * torch.pow(1.0 + self.alpha * mean_sq, -self.beta)


@torch_layer("LRN")
def _lrn(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return LRN(layer)


# ---- fully connected --------------------------------------------------------------------------

class InnerProduct(nn.Module):
    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray]) -> None:
        super().__init__()
        p = layer.param("inner_product_param")
        self.axis, _ = ip_axis_and_k(layer, ins)
        transpose = bool_field(layer, p, "transpose", False)
        self.weight = _param(blobs[0].T if transpose else blobs[0])  # F.linear wants (out, in)
        self.bias = _param(blobs[1]) if len(blobs) > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(torch.flatten(x, self.axis), self.weight, self.bias)


@torch_layer("InnerProduct")
def _inner_product(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return InnerProduct(layer, ins, blobs)


# ---- activations ------------------------------------------------------------------------------

@torch_layer("ReLU")
def _relu(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    slope = float_field(layer, layer.param("relu_param"), "negative_slope", 0.0)
    if slope == 0.0:
        return nn.ReLU()
    return nn.LeakyReLU(slope)  # Caffe: max(0, x) + slope * min(0, x), the same for any slope


class PReLU(nn.Module):
    def __init__(self, blobs: list[np.ndarray]) -> None:
        super().__init__()
        # (C,), or () when channel_shared: F.prelu takes one slope as (1,)
        self.weight = _param(np.reshape(blobs[0], -1))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)


@torch_layer("PReLU")
def _prelu(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return PReLU(blobs)


@torch_layer("ReLU6")
def _relu6(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return nn.ReLU6()


@torch_layer("ELU")
def _elu(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return nn.ELU(float_field(layer, layer.param("elu_param"), "alpha", 1.0))


@torch_layer("Sigmoid")
def _sigmoid(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return nn.Sigmoid()


@torch_layer("TanH")
def _tanh(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return nn.Tanh()


@torch_layer("Power")
def _power(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    p = layer.param("power_param")
    power, scale, shift = (float_field(layer, p, "power", 1.0), float_field(layer, p, "scale", 1.0),
                           float_field(layer, p, "shift", 0.0))
    if power == 1.0:
        return Fn(lambda x: x * scale + shift, f"{scale} * x + {shift}")
    return Fn(lambda x: torch.pow(x * scale + shift, power), f"({scale} * x + {shift}) ** {power}")


@torch_layer("Dropout")
def _dropout(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return nn.Identity()  # TEST phase: Caffe passes the input through (scaling happens in training)


# ---- normalisation and affine -------------------------------------------------------------------

class BatchNorm(nn.Module):
    """Caffe BatchNorm: statistics stored multiplied by the scale-factor blob s, used as mean/s and
    var/s (s == 0 gives 0, as in Caffe). With use_global_stats false (allowed in TEST) Caffe
    normalises with the batch's own mean and biased variance over (N, spatial)."""

    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray]) -> None:
        super().__init__()
        p = layer.param("batch_norm_param")
        self.eps = float_field(layer, p, "eps", 1e-5)
        self.global_stats = bool_field(layer, p, "use_global_stats", True)
        factor = float(blobs[2].reshape(-1)[0])
        scale = 0.0 if factor == 0 else 1.0 / factor
        self.shape = _broadcast_shape((ins[0][1],), 1, len(ins[0]))
        mean = blobs[0].astype(np.float64) * scale
        inv_std = 1.0 / np.sqrt(blobs[1].astype(np.float64) * scale + self.eps)
        # Folded in float64 once, so that y = x * a + b costs what torch's own eval BatchNorm costs.
        self.mul = _param((inv_std).reshape(self.shape))
        self.add = _param((-mean * inv_std).reshape(self.shape))

    def forward(self, x: Tensor) -> Tensor:
        if self.global_stats:
            return x * self.mul + self.add
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps)


@torch_layer("BatchNorm")
def _batch_norm(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return BatchNorm(layer, ins, blobs)


class Affine(nn.Module):
    """Caffe Scale and Bias: y = x * gamma + beta, gamma/beta over axes [axis, axis + num_axes).

    gamma is a learned blob, or (two bottoms) the second bottom; beta exists for Bias and for Scale
    with bias_term.
    """

    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray], block: str, scales: bool) -> None:
        super().__init__()
        p = layer.param(block)
        ndim = len(ins[0])
        axis = canonical_axis(layer, int_field(layer, p, "axis", 1, minimum=None), ndim)
        blobs = list(blobs)
        self.gamma_from_bottom = len(ins) == 2
        shape = ins[1] if self.gamma_from_bottom else (blobs[0].shape if blobs else ())
        self.shape = _broadcast_shape(tuple(shape), axis, ndim)
        self.gamma = _param(blobs.pop(0).reshape(self.shape)) if scales and not self.gamma_from_bottom else None
        if not scales and self.gamma_from_bottom:  # Bias with two bottoms: the bias is the bottom
            self.beta = None
        else:
            self.beta = _param(blobs.pop(0).reshape(self.shape)) if blobs else None
        self.scales = scales

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        if other is not None:
            other = other.reshape(self.shape)
            x = x * other if self.scales else x + other
        elif self.gamma is not None:
            x = x * self.gamma
        return x + self.beta if self.beta is not None else x


@torch_layer("Scale")
def _scale(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Affine(layer, ins, blobs, "scale_param", scales=True)


@torch_layer("Bias")
def _bias(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Affine(layer, ins, blobs, "bias_param", scales=False)


class Normalize(nn.Module):
    """SSD's L2 Normalize: x / sqrt(sum x^2 + eps) over (C,H,W) per image (across_spatial) or over C per
    position, times a learned scale (one value, or one per channel)."""

    def __init__(self, layer: Layer, ins: list[Shape], blobs: list[np.ndarray]) -> None:
        super().__init__()
        p = layer.param("norm_param")
        self.across_spatial = bool_field(layer, p, "across_spatial", True)
        self.eps = float_field(layer, p, "eps", 1e-10)
        self.scale = _param(blobs[0].reshape(_broadcast_shape(blobs[0].shape, 1, len(ins[0]))))

    def forward(self, x: Tensor) -> Tensor:
        dims = list(range(1, x.dim())) if self.across_spatial else [1]
        norm = torch.sqrt((x * x).sum(dim=dims, keepdim=True) + self.eps)
        return x / norm * self.scale


@torch_layer("Normalize")
def _normalize(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return Normalize(layer, ins, blobs)


# ---- structure ----------------------------------------------------------------------------------

@torch_layer("Eltwise")
def _eltwise(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    p = layer.param("eltwise_param")
    op = enum_field(layer, p, "operation", "SUM", ELTWISE_OPS)
    if op == "PROD":
        return Fn(lambda *xs: math.prod(xs[1:], start=xs[0]), "PROD")
    if op == "MAX":
        return Fn(lambda *xs: torch.stack(xs).amax(dim=0) if len(xs) > 2 else torch.maximum(*xs), "MAX")
    coeffs = [float(c) for c in p.all("coeff")] or [1.0] * len(ins)
    if all(c == 1.0 for c in coeffs):
        return Fn(lambda *xs: sum(xs[1:], start=xs[0]), "SUM")
    return Fn(lambda *xs: sum((c * x for c, x in zip(coeffs[1:], xs[1:], strict=True)), start=coeffs[0] * xs[0]),
              f"SUM coeff={coeffs}")


def _axis(layer: Layer, block: str, legacy: str, ndim: int) -> int:
    p = layer.param(block)
    axis = int_field(layer, p, legacy, minimum=0) if p.has(legacy) else int_field(layer, p, "axis", 1, minimum=None)
    return canonical_axis(layer, axis, ndim)


@torch_layer("Concat")
def _concat(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    axis = _axis(layer, "concat_param", "concat_dim", len(ins[0]))
    return Fn(lambda *xs: torch.cat(xs, dim=axis), f"axis={axis}")


@torch_layer("Slice")
def _slice(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    axis = _axis(layer, "slice_param", "slice_dim", len(ins[0]))
    sizes = [s[axis] for s in outs]
    return Fn(lambda x: tuple(torch.split(x, sizes, dim=axis)), f"axis={axis} sizes={sizes}")


@torch_layer("Split")
def _split(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    n = len(outs)
    return Fn(lambda x: (x,) * n, f"x{n}")


@torch_layer("Flatten", "Reshape")
def _reshape(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    shape = tuple(outs[0])
    return Fn(lambda x: x.reshape(shape), f"{shape}")


@torch_layer("Permute")
def _permute(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    given = [int(a) for a in layer.param("permute_param").all("order")]
    order = (*given, *(a for a in range(len(ins[0])) if a not in given))
    return Fn(lambda x: x.permute(order), f"{order}")


@torch_layer("Crop")
def _crop(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    p = layer.param("crop_param")
    axis = canonical_axis(layer, int_field(layer, p, "axis", 2, minimum=None), len(ins[0]))
    offsets = [int(v) for v in p.all("offset")]
    index = [slice(None)] * axis
    for i in range(axis, len(ins[0])):
        off = offsets[0] if len(offsets) == 1 else (offsets[i - axis] if offsets else 0)
        index.append(slice(off, off + outs[0][i]))
    region = tuple(index)
    return Fn(lambda x, _ref: x[region], f"{region}")


@torch_layer("Softmax")
def _softmax(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    axis = canonical_axis(layer, int_field(layer, layer.param("softmax_param"), "axis", 1, minimum=None),
                          len(ins[0]))
    return nn.Softmax(dim=axis)


class ArgMax(nn.Module):
    """Caffe ArgMax: indices (as floats) of the top_k values; with no axis, over all of C*H*W per image,
    output (N, 1, top_k), or (N, 2, top_k) with out_max_val (indices, then values), with 1s appended up to
    the bottom's number of axes (Caffe's top has max(3, bottom axes) axes); with an
    axis, the indices along it, or only the values when out_max_val is set."""

    def __init__(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> None:
        super().__init__()
        p = layer.param("argmax_param")
        self.top_k = int_field(layer, p, "top_k", 1, minimum=1)
        self.out_max_val = bool_field(layer, p, "out_max_val", False)
        self.axis = canonical_axis(layer, int_field(layer, p, "axis", minimum=None), len(ins[0])) \
            if p.has("axis") else None
        self.out_shape = tuple(outs[0])

    def forward(self, x: Tensor) -> Tensor:
        if self.axis is not None:
            values, indices = torch.topk(x, self.top_k, dim=self.axis)
            return values if self.out_max_val else indices.to(x.dtype)
        values, indices = torch.topk(torch.flatten(x, 1), self.top_k, dim=1)
        parts = [indices.to(x.dtype), values] if self.out_max_val else [indices.to(x.dtype)]
        return torch.stack(parts, dim=1).reshape(self.out_shape)


@torch_layer("ArgMax")
def _argmax(layer: Layer, ins: list[Shape], outs: list[Shape], blobs: list[np.ndarray]) -> nn.Module:
    return ArgMax(layer, ins, outs)

