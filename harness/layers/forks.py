"""Layer types of Caffe forks that Netscope analyses: SSD's Permute, PriorBox and DetectionOutput, Faster
R-CNN's Python proposal layer and ROIPooling, ReLU6, the V1 name CROP, the BN type, and Netscope's own
``implicit``.

BVLC Caffe refuses every one of them (it has no such type), and so does the caffe convention unless unknown
types are allowed (``--allow-unknown``); then each is counted as its fork builds it. The paper convention
counts what Netscope counts for them (src/analyzer.coffee of github dgschwend/netscope) and gives them the
output shapes Netscope gives them, so that the rest of the network is counted as Netscope counts it; where
Netscope's rule is a plain bug (NaN, a field read the wrong way) the fork's shape is used and a note says so.
"""

from __future__ import annotations

import math

from harness.ir.graph import Layer, Shape
from harness.ir.textformat import describe, excerpt
from harness.layers.base import (
    Convention,
    LayerHandler,
    bool_field,
    count,
    float_field,
    given_false,
    int_field,
    int_list,
    register,
    require,
)
from harness.layers.common import Crop
from harness.layers.normalization import channels

SSD = "the SSD fork of Caffe (weiliu89/caffe)"
FASTER_RCNN = "the Faster R-CNN fork of Caffe (rbgirshick/caffe-fast-rcnn)"


@register
class Permute(LayerHandler):
    """SSD's Permute: the axes in ``order``, the ones it leaves out following in their order."""

    type = "Permute"
    param_block = "permute_param"
    fields = frozenset({"order"})
    fork = SSD

    def _order(self, layer: Layer, ndim: int) -> list[int]:
        given = int_list(layer, layer.param("permute_param"), "order")
        require(all(a < ndim for a in given) and len(set(given)) == len(given), layer,
                f"order {given} is not a permutation of the input's {ndim} axes")
        return given + [a for a in range(ndim) if a not in given]

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        return [tuple(ins[0][a] for a in self._order(layer, len(ins[0])))]

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope: "reorder the channels / dimensions", no memory

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        given = int_list(layer, layer.param("permute_param"), "order")
        if conv is Convention.PAPER and len(ins[0]) == 4 and len(given) < 4:
            return [f"order {given} names fewer than 4 axes: Netscope's output is NaN; the axes left out follow "
                    "in their order, as the SSD fork does"]
        return []


def _positive_numbers(layer: Layer, name: str) -> list[float]:
    """A repeated float field of ``prior_box_param``, every value a positive number, as SSD's set-up checks
    min_size and max_size (and a ratio must be, to have an inverse)."""
    values = []
    for value in layer.param("prior_box_param").all(name):
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
        require(math.isfinite(number) and number > 0, layer, f"{name} must be a positive number, got {describe(value)}")
        values.append(number)
    return values


def _prior_sizes(layer: Layer) -> tuple[list[float], list[float]]:
    """min_size and max_size as SSD's prior_box_layer.cpp checks them: at least one min_size; max_size, where
    given, once per min_size and greater than it."""
    mins, maxs = _positive_numbers(layer, "min_size"), _positive_numbers(layer, "max_size")
    require(bool(mins), layer, "min_size is required")
    require(not maxs or (len(maxs) == len(mins) and all(b > a for a, b in zip(mins, maxs, strict=True))), layer,
            f"max_size {maxs} must be given once per min_size {mins}, each greater than it")
    return mins, maxs


def _prior_aspect_ratios(layer: Layer) -> list[float]:
    """SSD's aspect ratios of one location: 1, then each given ratio once (and its inverse with flip)."""
    p = layer.param("prior_box_param")
    ratios = [1.0]
    for ar in _positive_numbers(layer, "aspect_ratio"):
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if bool_field(layer, p, "flip", True):
                ratios.append(1.0 / ar)
    return ratios


@register
class PriorBox(LayerHandler):
    """SSD's PriorBox: (1, 2, H*W*priors*4), the boxes and their variances of every location of the
    feature map (bottom 0) of the image (bottom 1). Netscope gives it (batch, 2, 4, min_size*aspect_ratio,
    doubled when ``flip`` is given) and no cost."""

    type = "PriorBox"
    param_block = "prior_box_param"
    fields = frozenset({"min_size", "max_size", "aspect_ratio", "flip", "clip", "variance", "img_size", "img_h",
                        "img_w", "step", "step_h", "step_w", "offset"})
    fork = SSD
    bottoms = (2, 2)
    input_rank = (4, 4)

    def _netscope_priors(self, layer: Layer) -> float | None:
        """Netscope's width, min_size * aspect_ratio, doubled when ``flip`` is given, where that is a number
        of priors (one min_size and one aspect_ratio, a whole product); ``flip: false`` does not double it
        (Netscope reads the word as the string "false", which is true in JavaScript)."""
        p = layer.param("prior_box_param")
        if len(p.all("min_size")) != 1 or len(p.all("aspect_ratio")) != 1:
            return None
        priors = float_field(layer, p, "min_size", 0.0) * float_field(layer, p, "aspect_ratio", 0.0)
        priors *= 2 if p.has("flip") and bool_field(layer, p, "flip", True) else 1
        return priors if priors.is_integer() and priors > 0 else None

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        mins, maxs = _prior_sizes(layer)  # checked in either convention: sizes SSD refuses are no network
        ratios = _prior_aspect_ratios(layer)
        netscope = self._netscope_priors(layer)
        if conv is Convention.PAPER and netscope is not None:
            return [(ins[0][0], 2, 4, int(netscope))]
        priors = len(ratios) * len(mins) + len(maxs)
        return [(1, 2, ins[0][2] * ins[0][3] * priors * 4)]

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0  # Netscope: negligible

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is not Convention.PAPER:
            return []
        if self._netscope_priors(layer) is None:
            return [f"Netscope's width min_size * aspect_ratio is no number of priors here (NaN with repeated "
                    f"values): given the SSD fork's output {outs[0]} instead"]
        if given_false(layer, "prior_box_param", "flip"):
            return ["Netscope reads 'flip: false' as true and doubles the width: not doubled here"]
        return []


@register
class DetectionOutput(LayerHandler):
    """SSD's DetectionOutput: (1, 1, 1, 7) when the net is set up (the fork's Reshape: the number of kept
    boxes is known only after NMS). Netscope does not know the type (it counts nothing for it)."""

    type = "DetectionOutput"
    param_block = "detection_output_param"
    fields = frozenset({"num_classes", "share_location", "background_label_id", "nms_param", "save_output_param",
                        "code_type", "variance_encoded_in_target", "keep_top_k", "confidence_threshold",
                        "visualize", "visualize_threshold", "save_file"})
    fork = SSD
    bottoms = (3, 4)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        return [(1, 1, 1, 7)]


PROPOSAL_MODULE = "rpn.proposal_layer"
# py-faster-rcnn's cfg.TEST.RPN_POST_NMS_TOP_N: the most proposals the layer emits (Netscope assumes it too).
PROPOSALS = 300


@register
class Python(LayerHandler):
    """A Python layer: only Faster R-CNN's region proposal layer (``rpn.proposal_layer``) can be counted,
    the one module Netscope knows. Its output: 300 proposals of 5 values (batch index and box corners)."""

    type = "Python"
    param_block = "python_param"
    fields = frozenset({"module", "layer", "param_str", "share_in_parallel"})
    fork = ("a Python layer (its module's code makes its outputs; BVLC Caffe runs it only when built with "
            "WITH_PYTHON_LAYER and the module imports), here Faster R-CNN's proposal layer")
    bottoms = (1, None)
    tops = (1, 2)
    input_rank = (1, None)  # Netscope's estimate reads the batch of bottom 0

    def unsupported(self, layer: Layer) -> str | None:
        module = layer.param("python_param").get("module")
        if module == PROPOSAL_MODULE:
            return None
        return (f"Python layer of module {excerpt(str(module))}: its output shape is made by its code (the harness, "
                f"like Netscope, knows only {PROPOSAL_MODULE})")

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.PAPER:
            return [(PROPOSALS, 5, 1, 1)] * len(layer.tops)
        return [(PROPOSALS, 5), (PROPOSALS, 1)][:len(layer.tops)]

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        # Netscope's estimate: per anchor (9 per position of bottom 0) 8 MACs for the box transform, and
        # 2 per pair of proposals for the NMS overlaps.
        pairs = PROPOSALS * (PROPOSALS - 1) // 2
        return ins[0][0] * 8 * 9 * count(ins[0][2:]) + 2 * pairs


@register
class ROIPooling(LayerHandler):
    """Fast/Faster R-CNN's ROIPooling: one (C, pooled_h, pooled_w) map per region of interest (bottom 1)
    of the feature map (bottom 0). Netscope counts one MAC per region."""

    type = "ROIPooling"
    param_block = "roi_pooling_param"
    fields = frozenset({"pooled_h", "pooled_w", "spatial_scale"})
    fork = FASTER_RCNN
    bottoms = (2, 2)
    tops = (1, 2)
    input_rank = (4, 4)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        p = layer.param("roi_pooling_param")
        pooled = (int_field(layer, p, "pooled_h", 0, minimum=1), int_field(layer, p, "pooled_w", 0, minimum=1))
        out = (ins[1][0], ins[0][1], *pooled)
        return [out] * len(layer.tops)

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return outs[0][0]

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        if conv is not Convention.PAPER:
            return []
        return [f"counted with the feature map's {ins[0][1]} channels and bottom 1's {ins[1][0]} regions; Netscope "
                "takes the channels of the feature map's input (the same where an in-place layer, a ReLU, makes "
                "the feature map, as in Faster R-CNN) and the regions from whichever bottom has a batch above 1"]


@register
class ReLU6(LayerHandler):
    """min(max(x, 0), 6), of Caffe forks for MobileNet V2; Netscope counts it as a ReLU."""

    type = "ReLU6"
    fork = "Caffe forks for MobileNet V2"


@register
class V1Crop(Crop):
    """``layers { type: CROP }``: FCN's crop in the V1 format of its fork (longjon/caffe), which BVLC's V1
    LayerType has no value for; counted as Crop."""

    type = "CROP"
    fork = "the FCN fork of Caffe (longjon/caffe), in its V1 format"


@register
class BN(LayerHandler):
    """The BN type of Caffe forks (caffe-segnet's, yjxiong's): batch normalisation with its own scale and
    shift, (1, C, 1, 1) each. Netscope counts it as BatchNorm: 2*C parameters."""

    type = "BN"
    param_block = "bn_param"
    fields = frozenset({"scale_filler", "shift_filler", "bn_mode", "momentum", "eps"})
    fork = "Caffe forks (caffe-segnet, yjxiong/caffe)"
    input_rank = (2, None)

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return [(1, channels(ins), 1, 1)] * 2

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 2 * channels(ins)


@register
class NetscopeImplicit(LayerHandler):
    """``type: "implicit"``: Netscope's own name for a pass-through node, which some of its example files
    use as a layer (an output marker). No Caffe has it; Netscope counts its input once more as activations."""

    type = "implicit"
    fork = "Netscope's name for a pass-through node, a type no Caffe has"
    bottoms = (1, None)
    tops = (0, None)
