"""BVLC Caffe's own set-up rules (``LayerSetUp``/``Reshape`` of Caffe 9b891540), for the handlers'
``caffe`` convention: the shapes Caffe computes, with its integer arithmetic, and the CHECKs it fails on.

Helpers every handler may use (axis indices, the legacy 4-D accessors, ``Blob::Reshape``'s limits, the
parameter fillers), then the geometry of the layers whose Caffe rules differ from Netscope's
(convolution, pooling). A refusal is a :class:`GraphError` naming the layer with Caffe's reason.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from harness.errors import GraphError
from harness.ir.graph import INT_MAX, Layer, Shape
from harness.ir.textformat import Message, describe
from harness.layers.base import bool_field, enum_field, float_field, int_field

MAX_BLOB_AXES = 32  # kMaxBlobAxes (blob.hpp)


def refuse(layer: Layer, message: str) -> GraphError:
    return GraphError(f"{layer.where()}: {message} (BVLC Caffe refuses it)")


def check(cond: bool, layer: Layer, message: str) -> None:
    if not cond:
        raise refuse(layer, message)


def axis_index(layer: Layer, axis: int, shape: Shape, what: str = "axis") -> int:
    """Blob::CanonicalAxisIndex: -ndim <= axis < ndim."""
    ndim = len(shape)
    check(-ndim <= axis < ndim, layer, f"{what} {axis} out of range for a {ndim}-D blob {shape}")
    return axis % ndim if ndim else 0


def legacy(layer: Layer, shape: Shape, index: int) -> int:
    """Blob::num()/channels()/height()/width() (LegacyShape): at most 4 axes; a missing axis is 1."""
    check(len(shape) <= 4, layer, f"the legacy num/channels/height/width accessors need at most 4 axes, the "
                                  f"bottom has {len(shape)}")
    return shape[index] if index < len(shape) else 1


def blob(layer: Layer, shape: Shape, what: str) -> Shape:
    """Blob::Reshape's checks: at most 32 axes, no negative size, at most INT_MAX elements."""
    if len(shape) > MAX_BLOB_AXES:
        raise refuse(layer, f"{what} would have {len(shape)} axes (at most {MAX_BLOB_AXES})")
    count = 1
    for d in shape:
        if d < 0:
            raise refuse(layer, f"{what} would have a negative size {tuple(shape)}")
        if count and d > INT_MAX // count:
            raise refuse(layer, f"{what} {tuple(shape)} exceeds INT_MAX elements")
        count *= d
    return tuple(shape)


def touched(layer: Layer, count: int, what: str) -> None:
    """A buffer the layer's set-up writes to (Blob::mutable_cpu_data CHECKs the blob has memory, and an empty
    blob has none): it must not be empty."""
    check(count > 0, layer, f"{what} would be empty, and Caffe's set-up writes to it (Blob::mutable_cpu_data: "
                            "\"Check failed: data_\")")


def c_div(a: int, b: int) -> int:
    """C++'s integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def as_int(value: int) -> int:
    """A uint32 as Caffe stores it in an int (two's complement); also the result of Caffe's int arithmetic,
    which wraps (``2 * pad`` of a pad of 2^31 is 0)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value > INT_MAX else value


def int_div(a: int, b: int) -> int:
    """Caffe's int division of int values (truncating; INT_MIN / -1 wraps)."""
    return as_int(c_div(a, b))


def _wrapped(layer: Layer, block: Message, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**64:
        raise GraphError(f"{layer.where()}: field {name!r} must be an integer, got {describe(value)}"
                         + (f" at {block.field(name).loc}" if block.field(name) else ""))
    return as_int(value)


def uint_field(layer: Layer, block: Message, name: str, default: int) -> int:
    """A uint32 (or int64) field read into Caffe's int: a value over INT_MAX wraps negative, as in Caffe."""
    return _wrapped(layer, block, name, block.get(name, default))


def uint_list(layer: Layer, block: Message, name: str) -> list[int]:
    return [_wrapped(layer, block, name, v) for v in block.all(name)]


def to_float32(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        return value
    if abs(value) > 3.4028234663852886e38:
        return math.copysign(math.inf, value)
    return struct.unpack("<f", struct.pack("<f", value))[0]


FILLERS = ("constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear")


def fill(layer: Layer, filler: Message, shape: Shape, what: str, default: str = "constant") -> None:
    """GetFiller and Filler::Fill's checks for a parameter blob of ``shape`` (filler.hpp)."""
    kind = str(filler.get("type", default))
    check(kind in FILLERS, layer, f"unknown filler type {kind!r} for {what} (Caffe has {', '.join(FILLERS)})")
    count = math.prod(shape)
    sparse = int(filler.get("sparse", -1))  # type: ignore[arg-type]
    if kind == "bilinear":
        check(len(shape) == 4, layer, f"the bilinear filler of {what} needs a 4-D blob, not {shape}")
        check(shape[3] == shape[2], layer, f"the bilinear filler of {what} needs a square filter, not {shape}")
    elif kind == "positive_unitball":
        check(len(shape) >= 1 and shape[0] > 0, layer, f"the positive_unitball filler cannot fill {what} {shape}")
        check(count // shape[0] > 0, layer, f"the positive_unitball filler cannot fill {what} {shape}")
    else:
        check(count > 0, layer, f"{what} {shape} is empty, and the {kind} filler refuses an empty blob")
        if kind in ("xavier", "msra"):
            check(len(shape) >= 1, layer, f"the {kind} filler needs an axis 0, {what} has shape {shape}")
    if kind == "gaussian":
        check(sparse >= -1, layer, f"the gaussian filler's sparse must be >= -1, got {sparse}")
        check(sparse < 0 or len(shape) >= 1, layer, f"a sparse gaussian filler needs an axis 0 in {what}")
    else:
        check(sparse == -1, layer, f"the {kind} filler does not support sparse (give sparse only to gaussian)")


# ---- convolution (base_conv_layer.cpp) --------------------------------------------------------------

@dataclass(frozen=True)
class CaffeConv:
    axis: int
    num_output: int
    group: int
    bias: bool
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]


def _per_axis(layer: Layer, p: Message, name: str, nsp: int, default: int | None, positive: bool,
              what: str) -> tuple[int, ...]:
    """kernel_size/stride/pad/dilation: given once or once per spatial axis (or not at all, where a
    default exists), or as name_h/name_w for 2-D."""
    if name != "dilation" and (p.has(f"{name}_h") or p.has(f"{name}_w")):
        check(nsp == 2, layer, f"{name}_h & {name}_w can only be used for 2D convolution")
        field = "kernel_size" if name == "kernel" else name
        check(not p.has(field), layer, f"either {field} or {name}_h/w should be specified; not both")
        values = (uint_field(layer, p, f"{name}_h", 0), uint_field(layer, p, f"{name}_w", 0))
        if name == "kernel":
            check(all(v > 0 for v in values), layer, "filter dimensions must be nonzero")
        if name == "stride":  # not checked by Caffe, which then divides by zero
            check(all(v != 0 for v in values), layer, "stride_h and stride_w must both be given and nonzero (Caffe "
                                                      "divides by a missing one, 0, and crashes)")
        return values
    field = "kernel_size" if name == "kernel" else name
    given = uint_list(layer, p, field)
    allowed = (1, nsp) if default is None else (0, 1, nsp)
    check(len(given) in allowed, layer, f"{field} must be specified once, or once per spatial dimension ({field} "
                                        f"specified {len(given)} times; {nsp} spatial dims)")
    values = tuple(given[0] if len(given) == 1 else given[i] if given else default for i in range(nsp))
    if positive:
        check(all(v > 0 for v in values), layer, f"{what} dimensions must be nonzero")  # type: ignore[operator]
    return values  # type: ignore[return-value]


def window(layer: Layer, bottom: Shape, least_spatial: int = 0) -> tuple[int, tuple[int, ...], ...]:
    """The channel axis and the kernel, stride, pad and dilation per spatial axis of a convolution_param
    (BaseConvolutionLayer and Im2colLayer::LayerSetUp)."""
    p = layer.param("convolution_param")
    axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), bottom)
    nsp = len(bottom) - axis - 1
    check(nsp >= least_spatial, layer, f"needs at least {least_spatial} spatial axis after the channel axis {axis}, "
                                       f"the bottom is {bottom}")
    kernel = _per_axis(layer, p, "kernel", nsp, None, True, "filter")
    stride = _per_axis(layer, p, "stride", nsp, 1, True, "stride")
    pad = _per_axis(layer, p, "pad", nsp, 0, False, "pad")
    dilation = _per_axis(layer, p, "dilation", nsp, 1, False, "dilation")
    return axis, kernel, stride, pad, dilation


def conv(layer: Layer, bottom: Shape, reverse: bool) -> CaffeConv:
    """BaseConvolutionLayer::LayerSetUp (``reverse``: Deconvolution)."""
    p = layer.param("convolution_param")
    axis, kernel, stride, pad, dilation = window(layer, bottom)
    num_output = uint_field(layer, p, "num_output", 0)
    check(num_output > 0, layer, f"num_output must be positive, got {num_output}")
    group = uint_field(layer, p, "group", 1)
    check(group != 0, layer, "group 0 divides by zero (Caffe crashes)")
    channels = bottom[axis]
    check(channels % group == 0 if group > 0 else False, layer,
          f"group {group} does not divide the {channels} input channels")
    check(num_output % group == 0, layer, f"number of output {num_output} should be multiples of group {group}")
    return CaffeConv(axis, num_output, group, bool_field(layer, p, "bias_term", True), kernel, stride, pad, dilation)


def conv_weight(geo: CaffeConv, bottom: Shape, reverse: bool) -> Shape:
    out_ch, in_ch = (bottom[geo.axis], geo.num_output) if reverse else (geo.num_output, bottom[geo.axis])
    return (out_ch, in_ch // geo.group, *geo.kernel)


def conv_spatial(layer: Layer, geo: CaffeConv, bottom: Shape, reverse: bool) -> tuple[int, ...]:
    out = []
    for i, size in enumerate(bottom[geo.axis + 1:]):
        extent = as_int(geo.dilation[i] * (geo.kernel[i] - 1) + 1)
        if reverse:
            out.append(as_int(geo.stride[i] * (size - 1) + extent - 2 * geo.pad[i]))
        else:
            out.append(as_int(int_div(as_int(size + 2 * geo.pad[i] - extent), geo.stride[i]) + 1))
    return tuple(out)


def conv_outputs(layer: Layer, ins: list[Shape], reverse: bool) -> list[Shape]:
    """BaseConvolutionLayer::Reshape: every bottom the shape of the first; col_buffer_ within INT_MAX."""
    geo = conv(layer, ins[0], reverse)
    for i, shape in enumerate(ins[1:], 1):
        check(shape == ins[0], layer, f"shape mismatch - bottom[0]: {ins[0]} vs. bottom[{i}]: {shape}")
    weight = blob(layer, conv_weight(geo, ins[0], reverse), "the weight blob")
    spatial = conv_spatial(layer, geo, ins[0], reverse)
    top = blob(layer, (*ins[0][:geo.axis], geo.num_output, *spatial), "the top")
    kernel_dim = math.prod(weight[1:])
    col = (kernel_dim * geo.group, *(ins[0][geo.axis + 1:] if reverse else spatial))
    blob(layer, col, "the im2col buffer (col_buffer_)")
    if geo.bias:
        touched(layer, math.prod(spatial), "the bias multiplier (one per output position)")
    return [top] * len(ins)


def conv_params(layer: Layer, ins: list[Shape], reverse: bool) -> list[Shape]:
    geo = conv(layer, ins[0], reverse)
    weight = conv_weight(geo, ins[0], reverse)
    return [weight, (geo.num_output,)] if geo.bias else [weight]


# ---- pooling (pooling_layer.cpp) ---------------------------------------------------------------------

POOL_METHODS = ("MAX", "AVE", "STOCHASTIC")


def pool_outputs(layer: Layer, ins: list[Shape]) -> list[Shape]:
    p = layer.param("pooling_param")
    method = enum_field(layer, p, "pool", "MAX", POOL_METHODS)
    global_pooling = bool_field(layer, p, "global_pooling", False)
    has = p.has
    if global_pooling:
        check(not (has("kernel_size") or has("kernel_h") or has("kernel_w")), layer,
              "with global_pooling: true the filter size cannot be specified")
    else:
        check(has("kernel_size") != (has("kernel_h") and has("kernel_w")), layer,
              "filter size is kernel_size OR kernel_h and kernel_w; not both")
    check((not has("pad") and has("pad_h") and has("pad_w")) or (not has("pad_h") and not has("pad_w")), layer,
          "pad is pad OR pad_h and pad_w are required")
    check((not has("stride") and has("stride_h") and has("stride_w")) or (not has("stride_h") and not has("stride_w")),
          layer, "stride is stride OR stride_h and stride_w are required")
    check(len(ins[0]) == 4, layer, f"input must have 4 axes (num, channels, height, width), got {ins[0]}")
    n, c, h, w = ins[0]
    if global_pooling:
        kh, kw = h, w
    elif has("kernel_size"):
        kh = kw = uint_field(layer, p, "kernel_size", 0)
    else:
        kh, kw = uint_field(layer, p, "kernel_h", 0), uint_field(layer, p, "kernel_w", 0)
    check(kh > 0 and kw > 0, layer, "filter dimensions cannot be zero")
    if has("pad_h"):
        ph, pw = uint_field(layer, p, "pad_h", 0), uint_field(layer, p, "pad_w", 0)
    else:
        ph = pw = uint_field(layer, p, "pad", 0)
    if has("stride_h"):
        sh, sw = uint_field(layer, p, "stride_h", 1), uint_field(layer, p, "stride_w", 1)
    else:
        sh = sw = uint_field(layer, p, "stride", 1)
    if global_pooling:
        check(ph == 0 and pw == 0 and sh == 1 and sw == 1, layer,
              "with global_pooling: true only pad = 0 and stride = 1")
    if ph or pw:
        check(method in ("AVE", "MAX"), layer, "padding implemented only for average and max pooling")
        check(ph < kh and pw < kw, layer, f"pad ({ph}, {pw}) must be smaller than the filter ({kh}, {kw})")
    check(sh > 0 and sw > 0, layer, "stride 0 divides by zero (Caffe crashes)")
    # round_mode: FLOOR, or a fork's ceil_mode: false, which only the engines' reading (forks) gets here
    floor_mode = (enum_field(layer, p, "round_mode", "CEIL", ("CEIL", "FLOOR")) == "FLOOR"
                  or not bool_field(layer, p, "ceil_mode", True))
    pooled = []
    for size, k, s, pad in ((h, kh, sh, ph), (w, kw, sw, pw)):
        ratio = to_float32(to_float32(float(as_int(size + 2 * pad - k))) / to_float32(float(s)))
        check(math.isfinite(ratio) and abs(ratio) < 2**31, layer, "the pooled size overflows Caffe's int")
        out = as_int((math.floor(ratio) if floor_mode else math.ceil(ratio)) + 1)
        if pad:
            if as_int((out - 1) * s) >= as_int(size + pad):
                out = as_int(out - 1)
            check(as_int((out - 1) * s) < as_int(size + pad), layer,
                  "the last pooling window would start in the padding")
        pooled.append(out)
    top = blob(layer, (n, c, *pooled), "the top")
    return [top] * len(layer.tops)


def float_value(layer: Layer, block: Message, name: str, default: float) -> float:
    """A float field as Caffe holds it (float32)."""
    return to_float32(float_field(layer, block, name, default))


def proto_fields(message: str) -> frozenset[str]:
    """The field names caffe.proto gives a ``*Parameter`` message (what a handler's block may hold)."""
    from harness.ir.caffe_schema import MESSAGES

    return frozenset(MESSAGES[message])


def enum_name(layer: Layer, block: Message, name: str, enum: str, default: str) -> str:
    """An enum field's value name (given by name or number; the schema check has validated it)."""
    from harness.ir.caffe_schema import ENUMS

    value = block.get(name)
    if value is None:
        return default
    values = ENUMS[enum]
    if isinstance(value, str):
        check(value in values, layer, f"{name} must be one of {', '.join(values)}, got {value!r}")
        return value
    names = [k for k, v in values.items() if v == value]
    check(bool(names) and not isinstance(value, bool), layer, f"{name} must be one of {', '.join(values)}, got {value}")
    return names[0]


# ---- the other types whose Caffe rules the harness's own (Netscope-compatible) reading relaxes ----------

def no_in_place(layer: Layer) -> None:
    """Flatten, Reshape, Split and AbsVal CHECK that the top is not the bottom."""
    check(not (layer.tops and layer.bottoms and layer.tops[0] == layer.bottoms[0]), layer,
          f"{layer.type} Layer does not allow in-place computation")


def count_range(layer: Layer, shape: Shape, start: int, end: int) -> int:
    """Blob::count(start, end): 0 <= start <= end <= ndim."""
    check(0 <= start <= end <= len(shape), layer, f"axes [{start}, {end}) out of range for {shape}")
    return math.prod(shape[start:end])


def flatten(layer: Layer, ins: list[Shape]) -> list[Shape]:
    no_in_place(layer)
    p = layer.param("flatten_param")
    start = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
    end = axis_index(layer, int_field(layer, p, "end_axis", -1, minimum=None), ins[0], "end_axis")
    return [(*ins[0][:start], count_range(layer, ins[0], start, end + 1), *ins[0][end + 1:])]


def reshape(layer: Layer, ins: list[Shape]) -> list[Shape]:
    no_in_place(layer)
    p = layer.param("reshape_param")
    dims = uint_list(layer, p.message("shape"), "dim")
    check(dims.count(-1) <= 1, layer, "new shape contains multiple -1 dims; at most a single (1) value of -1 may be "
                                      "specified")
    bottom = ins[0]
    nd = len(bottom)
    axis = int_field(layer, p, "axis", 0, minimum=None)
    start = axis if axis >= 0 else nd + axis + 1
    check(0 <= start <= nd, layer, f"axis {axis} out of range for {nd}-D input blob")
    num_axes = int_field(layer, p, "num_axes", -1, minimum=None)
    check(num_axes >= -1, layer, "num_axes must be >= 0, or -1 for all")
    end = nd if num_axes == -1 else start + num_axes
    check(end <= nd, layer, "end_axis = axis + num_axes is out of range")
    top = [*bottom[:start], *dims, *bottom[end:]]
    for i, d in enumerate(dims):
        if d == 0:
            check(nd > start + i, layer, "new shape contains a 0, but there was no corresponding bottom axis to copy")
            top[start + i] = bottom[start + i]
    if -1 in dims:
        explicit = math.prod(d for d in dims if d not in (0, -1)) * math.prod(bottom[:start]) * math.prod(bottom[end:])
        explicit *= math.prod(top[start + i] for i, d in enumerate(dims) if d == 0)
        check(explicit != 0, layer, "the given dimensions multiply to 0, by which -1 cannot be inferred (Caffe "
                                    "divides by zero)")
        total = math.prod(bottom)
        check(total % explicit == 0, layer, f"bottom count ({total}) must be divisible by the product of the specified "
                                            f"dimensions ({explicit})")
        top[start + dims.index(-1)] = total // explicit
    shape = blob(layer, tuple(top), "the top")
    check(math.prod(shape) == math.prod(bottom), layer, f"output count must match input count: {shape} vs {bottom}")
    return [shape]


def _axis_or_dim(layer: Layer, block: str, legacy_name: str, shape: Shape) -> int:
    p = layer.param(block)
    check(not (p.has("axis") and p.has(legacy_name)), layer, f"either axis or {legacy_name} should be specified; "
                                                             "not both")
    if p.has(legacy_name):
        dim = uint_field(layer, p, legacy_name, 1)
        check(0 <= dim < len(shape), layer, f"{legacy_name} {dim} out of range for {shape}")
        return dim
    return axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), shape)


def concat(layer: Layer, ins: list[Shape]) -> list[Shape]:
    axis = _axis_or_dim(layer, "concat_param", "concat_dim", ins[0])
    out = list(ins[0])
    for i, shape in enumerate(ins[1:], 1):
        check(len(shape) == len(ins[0]), layer, f"all inputs must have the same #axes: bottom {i} is {shape}, bottom 0 "
                                                f"{ins[0]}")
        check(all(a == b for j, (a, b) in enumerate(zip(shape, ins[0], strict=True)) if j != axis), layer,
              f"all inputs must have the same shape, except at concat_axis {axis}: {shape} vs {ins[0]}")
        out[axis] += shape[axis]
    return [blob(layer, tuple(out), "the top")]


def slice_(layer: Layer, ins: list[Shape]) -> list[Shape]:
    axis = _axis_or_dim(layer, "slice_param", "slice_dim", ins[0])
    size = ins[0][axis]
    tops = len(layer.tops)
    points = uint_list(layer, layer.param("slice_param"), "slice_point")
    if points:
        check(len(points) == tops - 1, layer, f"{len(points)} slice_points for {tops} tops")
        check(tops <= size, layer, f"{tops} tops from an axis of {size}")
        sizes, previous = [], 0
        for point in points:
            check(point > previous, layer, f"slice_point {point} must be greater than {previous}")
            sizes.append(point - previous)
            previous = point
        sizes.append(size - previous)
    else:
        check(size % tops == 0, layer, f"number of top blobs ({tops}) should evenly divide input slice axis ({size})")
        sizes = [size // tops] * tops
    outs = [blob(layer, (*ins[0][:axis], s, *ins[0][axis + 1:]), f"top {i}") for i, s in enumerate(sizes)]
    if layer.tops[0] == layer.bottoms[0]:  # in place: the first top has replaced the bottom Caffe counts last
        check(sum(math.prod(o) for o in outs) == math.prod(outs[0]), layer,
              "in place, the first slice replaces the bottom, whose count then differs from the slices' total")
    return outs


def eltwise(layer: Layer, ins: list[Shape]) -> list[Shape]:
    p = layer.param("eltwise_param")
    coeffs = len(p.all("coeff"))
    check(coeffs in (0, len(ins)), layer, "Eltwise Layer takes one coefficient per bottom blob")
    operation = enum_name(layer, p, "operation", "EltwiseParameter.EltwiseOp", "SUM")
    check(not (operation == "PROD" and coeffs), layer, "Eltwise layer only takes coefficients for summation")
    for i, shape in enumerate(ins[1:], 1):
        check(shape == ins[0], layer, f"bottom[0]: {ins[0]}, bottom[{i}]: {shape}")
    return [ins[0]]


def crop(layer: Layer, ins: list[Shape]) -> list[Shape]:
    p = layer.param("crop_param")
    nd = len(ins[0])
    start = axis_index(layer, int_field(layer, p, "axis", 2, minimum=None), ins[0])
    offsets = uint_list(layer, p, "offset")
    if len(offsets) > 1:
        check(start + len(offsets) == nd, layer, "number of offset values specified must be equal to the number of "
                                                 "dimensions following axis")
    out = list(ins[0])
    for i in range(start, nd):
        check(i < len(ins[1]), layer, f"axis {i} out of range for the reference bottom {ins[1]}")
        offset = offsets[0] if len(offsets) == 1 else offsets[i - start] if offsets else 0
        check(ins[0][i] - offset >= ins[1][i], layer, f"the crop for dimension {i} is out-of-bounds with size "
                                                      f"{ins[1][i]} and offset {offset}")
        out[i] = ins[1][i]
    return [blob(layer, tuple(out), "the top")]


def split(layer: Layer, ins: list[Shape]) -> list[Shape]:
    no_in_place(layer)
    return [ins[0]] * len(layer.tops)


def softmax_axis(layer: Layer, ins: list[Shape]) -> int:
    """The softmax axis; Caffe's SoftmaxLayer::Reshape fills a multiplier of its size."""
    axis = axis_index(layer, int_field(layer, layer.param("softmax_param"), "axis", 1, minimum=None), ins[0])
    touched(layer, ins[0][axis], f"the softmax's sum multiplier (axis {axis} of {ins[0]})")
    return axis


def inner_product(layer: Layer, ins: list[Shape]) -> None:
    """InnerProductLayer::Reshape fills a bias multiplier, one per item (the axes before ``axis``)."""
    p = layer.param("inner_product_param")
    axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
    if bool_field(layer, p, "bias_term", True):
        touched(layer, math.prod(ins[0][:axis]), "the bias multiplier (one per item)")


def labels_match(layer: Layer, data: Shape, axis: int, labels: Shape) -> None:
    check(math.prod(data[:axis]) * math.prod(data[axis + 1:]) == math.prod(labels), layer,
          f"number of labels {math.prod(labels)} ({labels}) must match number of predictions of {data} outside axis "
          f"{axis}")


def softmax_with_loss(layer: Layer, ins: list[Shape]) -> list[Shape]:
    for i in (0, 1):
        check(len(ins[i]) >= 1, layer, f"bottom {i} needs an axis 0")
    check(ins[0][0] == ins[1][0], layer,
          f"the data and label should have the same first dimension: {ins[0]} vs {ins[1]}")
    check(not layer.tops or layer.tops[0] != layer.bottoms[0], layer,
          "in place on its data, the scalar loss replaces the blob its softmax then reads")
    labels_match(layer, ins[0], softmax_axis(layer, ins), ins[1])
    return [()] * min(len(layer.tops), 1) + [ins[0]] * (len(layer.tops) - 1)


def accuracy(layer: Layer, ins: list[Shape]) -> list[Shape]:
    p = layer.param("accuracy_param")
    top_k = uint_field(layer, p, "top_k", 1)
    labels = math.prod(ins[1])
    check(labels > 0, layer, "no labels (Caffe divides by the label count)")
    check(top_k <= math.prod(ins[0]) // labels, layer, "top_k must be less than or equal to the number of classes")
    axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
    labels_match(layer, ins[0], axis, ins[1])
    check(len(layer.tops) < 2 or layer.tops[0] != layer.bottoms[0], layer,
          "in place on its data, the scalar accuracy replaces the blob the per-class top's size is read from")
    return [()] + [(ins[0][axis],)] * (len(layer.tops) - 1)


def prelu_channels(layer: Layer, ins: list[Shape]) -> int:
    check(len(ins[0]) >= 2, layer, "number of axes of bottom blob must be >=2")
    touched(layer, math.prod(ins[0][1:]), "the multiplier (one per item's element)")
    return legacy(layer, ins[0], 1)


def batch_norm(layer: Layer, ins: list[Shape]) -> list[Shape]:
    check(len(ins[0]) >= 2, layer, f"BatchNorm reads axis 1 of its bottom, which {ins[0]} does not have")
    check(ins[0][0] > 0 and ins[0][1] > 0, layer, f"an empty batch or no channels {ins[0]}: Caffe divides by zero")
    touched(layer, math.prod(ins[0][2:]), "the spatial sum multiplier")
    return [ins[0]]


def _affine(layer: Layer, block: str, ins: list[Shape]) -> Shape:
    """Scale's/Bias's blob (or second bottom): shape and place checked as their Reshape does."""
    p = layer.param(block)
    if len(ins) > 1:
        shape = ins[1]
        axis = 0 if not shape else axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
    else:
        axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
        num_axes = int_field(layer, p, "num_axes", 1, minimum=None)
        check(num_axes >= -1, layer, "num_axes must be non-negative, or -1 to extend to the end of bottom[0]")
        check(num_axes == -1 or len(ins[0]) >= axis + num_axes, layer,
              f"the {block[:-6]} blob's shape extends past bottom[0]'s shape when applied starting with bottom[0] axis "
              f"= {axis}")
        shape = ins[0][axis:] if num_axes == -1 else ins[0][axis:axis + num_axes]
        axis = 0 if not shape else axis
    check(len(ins[0]) >= axis + len(shape) and ins[0][axis:axis + len(shape)] == shape, layer,
          f"dimension mismatch between bottom[0] {ins[0]} from axis {axis} and the {block[:-6]} {shape}")
    return shape


def affine(layer: Layer, block: str, ins: list[Shape]) -> list[Shape]:
    """Scale/Bias Reshape: the bottom around the blob, whose multipliers its set-up fills."""
    shape = _affine(layer, block, ins)
    axis = 0 if not shape else axis_index(layer, int_field(layer, layer.param(block), "axis", 1, minimum=None),
                                          ins[0])
    outer, inner = math.prod(ins[0][:axis]), math.prod(ins[0][axis + len(shape):])
    if block == "scale_param":
        touched(layer, max(outer, inner), "the sum multiplier")
    if block == "scale_param" and bool_field(layer, layer.param(block), "bias_term", False):
        # the Bias layer Scale sets up takes scale_param.axis on the bottom, whatever the scale blob's axes
        bias_axis = axis_index(layer, int_field(layer, layer.param(block), "axis", 1, minimum=None), ins[0])
        check(len(ins[0]) >= bias_axis + len(shape), layer, "the bias blob's shape extends past bottom[0]'s shape")
        inner = math.prod(ins[0][bias_axis + len(shape):])
    if block == "bias_param" or bool_field(layer, layer.param(block), "bias_term", False):
        touched(layer, inner, "the bias multiplier")
    return [ins[0]]
