"""Fully connected, structural and output layers."""

from __future__ import annotations

import itertools
import math

from harness.ir.graph import Layer, Shape
from harness.ir.textformat import NAME_CHARS, excerpt
from harness.layers import caffe_rules
from harness.layers.base import (
    Convention,
    LayerHandler,
    bool_field,
    canonical_axis,
    count,
    enum_field,
    int_field,
    int_list,
    netscope_reading_notes,
    register,
    require,
)


def ip_axis_and_k(layer: Layer, ins: list[Shape]) -> tuple[int, int]:
    p = layer.param("inner_product_param")
    axis = canonical_axis(layer, int_field(layer, p, "axis", 1, minimum=None), len(ins[0]))
    return axis, math.prod(ins[0][axis:])


@register
class InnerProduct(LayerHandler):
    type = "InnerProduct"
    v1_names = ("INNER_PRODUCT",)
    param_block = "inner_product_param"
    fields = frozenset({"num_output", "bias_term", "weight_filler", "bias_filler", "axis", "transpose"})

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            caffe_rules.inner_product(layer, ins)
        n = int_field(layer, layer.param("inner_product_param"), "num_output", minimum=1)
        axis, _ = ip_axis_and_k(layer, ins)
        if conv is Convention.PAPER:
            return [(ins[0][0], n, 1, 1)]  # Netscope shows FC outputs as 1x1xC
        return [(*ins[0][:axis], n)]

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        p = layer.param("inner_product_param")
        n = int_field(layer, p, "num_output", minimum=1)
        _, k = ip_axis_and_k(layer, ins)
        weight = (k, n) if bool_field(layer, p, "transpose", False) else (n, k)
        return [weight, (n,)] if bool_field(layer, p, "bias_term", True) else [weight]

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        n = int_field(layer, layer.param("inner_product_param"), "num_output", minimum=1)
        axis, k = ip_axis_and_k(layer, ins)
        return math.prod(ins[0][:axis]) * k * n

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        return netscope_reading_notes(layer, "inner_product_param", bias=True) if conv is Convention.PAPER else []


@register
class Flatten(LayerHandler):
    type = "Flatten"
    shares_bottom_memory = True
    v1_names = ("FLATTEN",)
    param_block = "flatten_param"
    fields = frozenset({"axis", "end_axis"})

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.flatten(layer, ins)
        p = layer.param("flatten_param")
        nd = len(ins[0])
        start = canonical_axis(layer, int_field(layer, p, "axis", 1, minimum=None), nd)
        end = canonical_axis(layer, int_field(layer, p, "end_axis", -1, minimum=None), nd)
        require(start <= end, layer, "axis must not be after end_axis")
        return [(*ins[0][:start], math.prod(ins[0][start:end + 1]), *ins[0][end + 1:])]


@register
class Reshape(LayerHandler):
    type = "Reshape"
    shares_bottom_memory = True
    param_block = "reshape_param"
    fields = frozenset({"shape", "axis", "num_axes"})

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.reshape(layer, ins)
        p = layer.param("reshape_param")
        dims = int_list(layer, p.message("shape"), "dim", minimum=-1)
        nd = len(ins[0])
        axis = int_field(layer, p, "axis", 0, minimum=None)
        start = axis % (nd + 1) if axis < 0 else axis
        num_axes = int_field(layer, p, "num_axes", -1, minimum=-1)
        end = nd if num_axes == -1 else start + num_axes
        require(0 <= start <= end <= nd, layer, "axis/num_axes out of range")
        replaced = ins[0][start:end]
        new = []
        for i, d in enumerate(dims):
            if d == 0:
                require(i < len(replaced), layer, f"dim {i} copies an input axis that does not exist")
                new.append(replaced[i])
            else:
                new.append(d)
        require(new.count(-1) <= 1, layer, "at most one dim may be -1")
        known = math.prod(d for d in new if d != -1)
        total = math.prod(replaced)
        if -1 in new:
            require(known > 0 and total % known == 0, layer, f"cannot infer -1 for {total} elements")
            new[new.index(-1)] = total // known
        require(math.prod(new) == total, layer, f"reshape to {new} changes the element count {total}")
        require(all(d > 0 for d in new), layer, f"reshape dims must be positive, got {dims}")
        return [(*ins[0][:start], *new, *ins[0][end:])]

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope: "just permute dimensions, assume on-the-fly operation"


@register
class Concat(LayerHandler):
    type = "Concat"
    v1_names = ("CONCAT",)
    param_block = "concat_param"
    fields = frozenset({"axis", "concat_dim"})
    bottoms = (1, None)

    def _axis(self, layer: Layer, ins: list[Shape]) -> int:
        p = layer.param("concat_param")
        axis = int_field(layer, p, "concat_dim", minimum=0) if p.has("concat_dim") \
            else int_field(layer, p, "axis", 1, minimum=None)
        return canonical_axis(layer, axis, len(ins[0]))

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.concat(layer, ins)
        axis = self._axis(layer, ins)
        if conv is Convention.PAPER and not self._caffe_like(ins, axis):
            return [self._netscope_output(ins)]
        for name, shape in zip(layer.bottoms[1:], ins[1:], strict=True):
            same = len(shape) == len(ins[0]) and all(
                a == b for i, (a, b) in enumerate(zip(shape, ins[0], strict=True)) if i != axis)
            require(same, layer, f"bottom {excerpt(name, NAME_CHARS)} has shape {shape}, which does not match "
                                 f"{excerpt(layer.bottoms[0], NAME_CHARS)} {ins[0]} outside axis {axis}")
        out = list(ins[0])
        out[axis] = sum(s[axis] for s in ins)
        return [tuple(out)]

    @staticmethod
    def _caffe_like(ins: list[Shape], axis: int) -> bool:
        """Netscope's concatenation (channels summed, the rest of the first input) is Caffe's here: axis 1,
        and every input like the first outside it."""
        return axis == 1 and all(len(s) == len(ins[0]) and s[:1] + s[2:] == ins[0][:1] + ins[0][2:] for s in ins)

    @staticmethod
    def _netscope_output(ins: list[Shape]) -> Shape:
        out = list(ins[0]) + [1] * (2 - len(ins[0]))
        out[1] = sum(s[1] if len(s) > 1 else 1 for s in ins)
        return tuple(out)

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is not Convention.PAPER:
            return []
        axis = self._axis(layer, ins)
        notes = [] if self._caffe_like(ins, axis) else [
            f"Netscope concatenates channels whatever the axis ({axis} here) and keeps the first input's other "
            f"dimensions (inputs {', '.join(map(str, ins))}): counted its way, output {outs[0]}"]
        twice = sorted({b for b in layer.bottoms if layer.bottoms.count(b) > 1})
        if twice:
            notes.append(f"bottom {excerpt(twice[0], NAME_CHARS)} is given twice: Netscope's graph links it once and "
                         "counts its channels once; counted as Caffe concatenates, each time")
        return notes


@register
class Slice(LayerHandler):
    type = "Slice"
    v1_names = ("SLICE",)
    param_block = "slice_param"
    fields = frozenset({"axis", "slice_point", "slice_dim"})
    tops = (1, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.slice_(layer, ins)
        p = layer.param("slice_param")
        axis = int_field(layer, p, "slice_dim", minimum=0) if p.has("slice_dim") \
            else int_field(layer, p, "axis", 1, minimum=None)
        axis = canonical_axis(layer, axis, len(ins[0]))
        size = ins[0][axis]
        points = int_list(layer, p, "slice_point", minimum=1)
        if points:
            require(len(points) == len(layer.tops) - 1, layer,
                    f"{len(points)} slice_points for {len(layer.tops)} tops")
            bounds = [0, *points, size]
            require(all(a < b for a, b in itertools.pairwise(bounds)), layer,
                    f"slice_points {points} must increase inside (0, {size})")
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
        else:
            require(size % len(layer.tops) == 0, layer, f"axis size {size} does not split into "
                                                        f"{len(layer.tops)} equal parts")
            sizes = [size // len(layer.tops)] * len(layer.tops)
        outs = []
        for s in sizes:
            out = list(ins[0])
            out[axis] = s
            outs.append(tuple(out))
        return outs


@register
class Split(LayerHandler):
    type = "Split"
    shares_bottom_memory = True
    v1_names = ("SPLIT",)
    tops = (1, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.split(layer, ins)
        return [ins[0]] * len(layer.tops)


ELTWISE_OPS = ("PROD", "SUM", "MAX")


@register
class Eltwise(LayerHandler):
    type = "Eltwise"
    v1_names = ("ELTWISE",)
    param_block = "eltwise_param"
    fields = frozenset({"operation", "coeff", "stable_prod_grad"})
    bottoms = (2, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.eltwise(layer, ins)
        p = layer.param("eltwise_param")
        op = enum_field(layer, p, "operation", "SUM", ELTWISE_OPS)
        coeffs = p.all("coeff")
        require(not coeffs or (op == "SUM" and len(coeffs) == len(ins)), layer,
                "coeff needs operation SUM and one value per bottom")
        for name, shape in zip(layer.bottoms[1:], ins[1:], strict=True):
            require(shape == ins[0], layer, f"bottom {excerpt(name, NAME_CHARS)} has shape {shape}, "
                                            f"{excerpt(layer.bottoms[0], NAME_CHARS)} has {ins[0]}")
        return [ins[0]]

    def _product(self, layer: Layer) -> bool:
        return enum_field(layer, layer.param("eltwise_param"), "operation", "SUM", ELTWISE_OPS) == "PROD"

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return count(outs[0]) if self._product(layer) else 0  # Netscope's rule for PROD: one MAC per element

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is Convention.PAPER and self._product(layer):
            return [f"Netscope reads every Eltwise as SUM (a bug: it looks for eltwise_param in the wrong place), "
                    f"so it counts 0 MACs here; its own rule for PROD, one MAC per element, gives {count(outs[0])}"]
        return []


@register
class Crop(LayerHandler):
    type = "Crop"
    param_block = "crop_param"
    fields = frozenset({"axis", "offset"})
    bottoms = (2, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.crop(layer, ins)
        p = layer.param("crop_param")
        axis = canonical_axis(layer, int_field(layer, p, "axis", 2, minimum=None), len(ins[0]))
        offsets = int_list(layer, p, "offset")
        n_cropped = len(ins[0]) - axis
        require(len(offsets) in (0, 1, n_cropped), layer, f"{len(offsets)} offsets for {n_cropped} axes")
        out = list(ins[0])
        for i in range(axis, len(ins[0])):
            off = offsets[0] if len(offsets) == 1 else (offsets[i - axis] if offsets else 0)
            require(len(ins[1]) == len(ins[0]), layer, "both bottoms must have the same number of axes")
            # Netscope takes the reference's size whatever the input's: a "crop" that grows is counted so.
            require(conv is Convention.PAPER or ins[1][i] + off <= ins[0][i], layer,
                    f"crop of {ins[1][i]}+{off} exceeds the input size {ins[0][i]} on axis {i}")
            out[i] = ins[1][i]
        return [tuple(out)]

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is Convention.PAPER and any(o > i for o, i in zip(outs[0], ins[0], strict=True)):
            return [f"the crop to {outs[0]} is larger than its input {ins[0]} (Caffe refuses it): counted as Netscope "
                    "counts it"]
        return []


@register
class Dropout(LayerHandler):
    type = "Dropout"
    v1_names = ("DROPOUT",)
    param_block = "dropout_param"
    fields = frozenset({"dropout_ratio"})


@register
class Softmax(LayerHandler):
    type = "Softmax"
    v1_names = ("SOFTMAX",)
    param_block = "softmax_param"
    fields = frozenset({"axis", "engine"})

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            caffe_rules.softmax_axis(layer, ins)
        canonical_axis(layer, int_field(layer, layer.param("softmax_param"), "axis", 1, minimum=None),
                       len(ins[0]))
        return [ins[0]]


@register
class ArgMax(LayerHandler):
    type = "ArgMax"
    v1_names = ("ARGMAX",)
    param_block = "argmax_param"
    fields = frozenset({"out_max_val", "top_k", "axis"})
    input_rank = (1, None)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        # argmax_layer.cpp: without an axis the top has max(3, bottom axes) axes: (N, 1 or 2, top_k, 1, ...)
        p = layer.param("argmax_param")
        top_k = caffe_rules.uint_field(layer, p, "top_k", 1)
        require(top_k >= 1, layer, f"top k must not be less than 1, got {top_k}")
        out_max = bool_field(layer, p, "out_max_val", False)
        if p.has("axis"):
            axis = canonical_axis(layer, int_field(layer, p, "axis", minimum=None), len(ins[0]))
            require(top_k <= ins[0][axis], layer, f"top_k {top_k} exceeds axis size {ins[0][axis]}")
            out = list(ins[0])
            out[axis] = top_k
            return [tuple(out)]
        require(top_k <= math.prod(ins[0][1:]), layer, "top_k exceeds the number of classes")
        return [(ins[0][0], 2 if out_max else 1, top_k, *(1,) * (len(ins[0]) - 3))]


@register
class SoftmaxWithLoss(LayerHandler):
    """Training-only; understood so that train_val files can be analysed as Caffe's TEST net."""

    type = "SoftmaxWithLoss"
    v1_names = ("SOFTMAX_LOSS",)
    param_block = "loss_param"
    fields = frozenset({"ignore_label", "normalization", "normalize"})
    bottoms = (2, 2)  # LossLayer: ExactNumBottomBlobs 2
    paper_bottoms = (1, 3)  # Netscope does not need the label
    tops = (1, 2)
    auto_tops = True  # no top: Caffe adds an anonymous one
    input_rank = (2, None)  # the softmax axis (1) must exist
    cost_note = "training-only loss layer (needs labels): no deploy cost"

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            return caffe_rules.softmax_with_loss(layer, ins)
        return [(), ins[0]][:len(layer.tops)]  # the loss, and the probabilities as a second top

    def paper_output(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> Shape:
        return ins[0]  # Netscope: a softmax, its input's shape


@register
class Accuracy(LayerHandler):
    type = "Accuracy"
    v1_names = ("ACCURACY",)
    param_block = "accuracy_param"
    fields = frozenset({"top_k", "axis", "ignore_label"})
    bottoms = (2, 2)
    paper_bottoms = (1, 2)  # Netscope does not need the label
    tops = (1, 2)

    def paper_output(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> Shape:
        return ins[0]  # Netscope passes the input through

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope: no memory

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        # accuracy_layer.cpp: the class axis is CanonicalAxisIndex(axis); the second top, per-class
        # accuracy, has one value per class.
        if conv is Convention.CAFFE:
            return caffe_rules.accuracy(layer, ins)
        axis = canonical_axis(layer, int_field(layer, layer.param("accuracy_param"), "axis", 1, minimum=None),
                              len(ins[0]))
        return [()] + ([(ins[0][axis],)] if len(layer.tops) > 1 else [])
