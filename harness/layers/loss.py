"""BVLC Caffe's loss layers besides SoftmaxWithLoss: ContrastiveLoss, EuclideanLoss, HingeLoss,
InfogainLoss, MultinomialLogisticLoss, SigmoidCrossEntropyLoss.

Training-only: they need labels, so a TEST-phase analysis of a train_val file meets them, a deploy net does
not. Each outputs a scalar (shape ``()``); given no top, Caffe adds an anonymous one (AutoTopBlobs); the
loss weight defaults to 1 for the first top. Their cost is not a deploy cost: ``cost_note`` says so, and
they count no parameters and no MACs in either convention.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.ir.graph import Layer, Shape
from harness.layers.base import Convention, LayerHandler, int_field, register
from harness.layers.caffe_rules import axis_index, check, legacy, proto_fields, touched

LOSS_NOTE = "training-only loss layer (needs labels): no deploy cost"


class LossLayer(LayerHandler):
    """LossLayer: data and label with the same first dimension, one scalar top."""

    bottoms = (2, 2)
    tops = (1, 1)
    auto_tops = True
    cost_note = LOSS_NOTE

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        if conv is Convention.CAFFE:
            for i in (0, 1):
                check(len(ins[i]) >= 1, layer, f"bottom {i} needs an axis 0")
            check(ins[0][0] == ins[1][0], layer, f"the data and label should have the same first dimension: {ins[0]} "
                                                 f"vs {ins[1]}")
            # in place on the data, the scalar top has replaced it by the time the type's own checks read it
            in_place = bool(layer.tops) and layer.tops[0] == layer.bottoms[0]
            self.caffe_checks(layer, [(), *ins[1:]] if in_place and self.reads_data_after_reshape else ins)
        return [()] * min(len(layer.tops), 1)  # no top: Caffe's is anonymous, no blob of the net's

    # Whether the type's checks come after LossLayer::Reshape (which reshapes the top) rather than in
    # LayerSetUp: those see a data bottom the top replaced when the layer computes in place.
    reads_data_after_reshape = True

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        """The type's own CHECKs in LayerSetUp/Reshape."""


@register
class ContrastiveLoss(LossLayer):
    type = "ContrastiveLoss"
    v1_names = ("CONTRASTIVE_LOSS",)
    param_block = "contrastive_loss_param"
    fields = proto_fields("ContrastiveLossParameter")
    bottoms = (3, 3)
    reads_data_after_reshape = False  # its checks are in LayerSetUp

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        a, b, y = ([legacy(layer, s, i) for i in range(4)] for s in ins)
        check(a[1] == b[1], layer, f"the two inputs need the same channels: {ins[0]} vs {ins[1]}")
        check(a[2] == a[3] == b[2] == b[3] == 1, layer, "the inputs' height and width must be 1")
        check(y[1] == y[2] == y[3] == 1, layer, f"the similarity label must be (N, 1, 1, 1), got {ins[2]}")


@register
class EuclideanLoss(LossLayer):
    type = "EuclideanLoss"
    v1_names = ("EUCLIDEAN_LOSS",)

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        check(len(ins[0]) >= 1, layer, "the data blob has no axis 1 (replaced by the loss computed in place)")
        check(math.prod(ins[0][1:]) == math.prod(ins[1][1:]), layer,
              f"inputs must have the same dimension: {ins[0]} vs {ins[1]}")


@register
class HingeLoss(LossLayer):
    type = "HingeLoss"
    v1_names = ("HINGE_LOSS",)
    param_block = "hinge_loss_param"
    fields = proto_fields("HingeLossParameter")


@register
class InfogainLoss(LossLayer):
    type = "InfogainLoss"
    v1_names = ("INFOGAIN_LOSS",)
    param_block = "infogain_loss_param"
    fields = proto_fields("InfogainLossParameter")
    bottoms = (2, 3)
    tops = (1, 2)

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        outs = super().compute_outputs(layer, ins, conv)
        return outs[:1] + [ins[0]] * (len(layer.tops) - 1)

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        p = layer.param("infogain_loss_param")
        check(not layer.param("loss_param").has("normalize"), layer, 'normalize is deprecated. use "normalization"')
        axis = axis_index(layer, int_field(layer, p, "axis", 1, minimum=None), ins[0])
        touched(layer, ins[0][axis], "the internal softmax's sum multiplier")
        check(math.prod(ins[0][:axis]) * math.prod(ins[0][axis + 1:]) == math.prod(ins[1]), layer,
              "number of labels must match number of predictions")
        labels = ins[0][axis]
        if len(ins) == 3:
            check(math.prod(ins[2]) == labels * labels, layer, f"the infogain matrix needs {labels}x{labels} values")
        else:
            source = str(p.get("source", ""))
            check(bool(source), layer, "infogain matrix source must be specified (or given as a third bottom)")
            check(Path(source).is_file(), layer, f"infogain matrix source {source!r} not found (Caffe reads it at "
                                                 "set-up, from the directory it runs in)")


@register
class MultinomialLogisticLoss(LossLayer):
    type = "MultinomialLogisticLoss"
    v1_names = ("MULTINOMIAL_LOGISTIC_LOSS",)

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        label = [legacy(layer, ins[1], i) for i in range(4)]
        check(label[1] == label[2] == label[3] == 1, layer, f"the label must be (N, 1, 1, 1), got {ins[1]}")


@register
class SigmoidCrossEntropyLoss(LossLayer):
    type = "SigmoidCrossEntropyLoss"
    v1_names = ("SIGMOID_CROSS_ENTROPY_LOSS",)

    def caffe_checks(self, layer: Layer, ins: list[Shape]) -> None:
        check(len(ins[0]) >= 1, layer, "the data blob has no axis 0 (replaced by the loss computed in place)")
        check(math.prod(ins[0]) == math.prod(ins[1]), layer,
              f"SIGMOID_CROSS_ENTROPY_LOSS layer inputs must have the same count: {ins[0]} vs {ins[1]}")
