"""Design-time data-reuse metrics: arithmetic intensity, per-data-type reuse factors and a weighted DI.

Everything here is computed from a :class:`~harness.analysis.analyzer.NetAnalysis`, without running the
network. For one layer, with W its weights (parameters, counted by the analysis' convention), IA the
elements of its bottoms and OA the elements of its tops:

    AI        = MACs / (W + IA + OA)                    MACs per element moved
    AI[dtype] = MACs / ((W + IA + OA) * bytes(dtype))   MACs per byte, fp32 / fp16 / int8
    R_F  = MACs / W,   R_IA = MACs / IA,   R_OA = MACs / OA
    DI   = MACs / (a_F * W + a_IA * IA + a_OA * OA)     harness weighting, NOT the weighting of Jha & Mittal

For the whole network each of W, IA, OA and MACs is summed over the layers, i.e. the data a layer-by-layer
execution without fusion reads and writes (an intermediate blob counts once as a top and once per reader).
A ratio whose denominator is zero (R_F of a ReLU) is ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analysis import roofline, weight_storage
from harness.analysis.roofline import DeviceSpec
from harness.analysis.volume import BYTES_PER_ELEMENT, DataVolume
from harness.errors import HarnessError
from harness.layers.base import count

if TYPE_CHECKING:
    from harness.analysis.analyzer import NetAnalysis

Row = dict[str, Any]


@dataclass(frozen=True)
class DIWeights:
    """Per-data-type weights of the harness' DI. The default counts an output activation twice: when a
    layer's outputs do not stay on chip, each is accumulated in memory (read and written) while weights
    and inputs are only read. Jha & Mittal's own weighting is not available to us; this is not it."""

    weights: float = 1.0
    inputs: float = 1.0
    outputs: float = 2.0

    @classmethod
    def parse(cls, text: str) -> DIWeights:
        """``"F,IA,OA"``, e.g. ``"1,1,2"``."""
        parts = text.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or not any(values):
            raise HarnessError(f"DI weights must be three finite non-negative numbers F,IA,OA (not all 0), "
                               f"got {text!r}")
        return cls(*values)

    def label(self) -> str:
        return f"{self.weights:g},{self.inputs:g},{self.outputs:g}"


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def reuse_columns(v: DataVolume, di: DIWeights) -> Row:
    """AI (elements and bytes), R_F, R_IA, R_OA and the harness DI of one data volume."""
    row: Row = {"weights": v.weights, "input_acts": v.inputs, "output_acts": v.outputs,
                "ai": ratio(v.macs, v.elements)}
    for dtype in BYTES_PER_ELEMENT:
        row[f"ai_{dtype}"] = ratio(v.macs, v.bytes(dtype))
    row["r_f"] = ratio(v.macs, v.weights)
    row["r_ia"] = ratio(v.macs, v.inputs)
    row["r_oa"] = ratio(v.macs, v.outputs)
    row["di_harness"] = ratio(v.macs, di.weights * v.weights + di.inputs * v.inputs + di.outputs * v.outputs)
    return row


# Human labels of every column the metric functions produce (table headers, docs/metrics.md).
COLUMN_LABELS: dict[str, str] = {
    "weights": "weights",
    "input_acts": "input acts",
    "output_acts": "output acts",
    "ai": "AI (MAC/elem)",
    "ai_fp32": "AI fp32 (MAC/B)",
    "ai_fp16": "AI fp16 (MAC/B)",
    "ai_int8": "AI int8 (MAC/B)",
    "r_f": "R_F",
    "r_ia": "R_IA",
    "r_oa": "R_OA",
    "di_harness": "DI (harness weighting, not the paper's)",
    "di_weights": "DI weights F,IA,OA (harness)",
    "weights_unmatched_layers": "weight blobs of other layers",
}


def metric_columns(analysis: NetAnalysis, device: DeviceSpec | None = None,
                   weights: dict[str, list] | None = None, di: DIWeights | None = None,
                   quantize_bits: int | None = None, value_bits: int = 32,
                   index_bits: int = 32) -> tuple[list[Row], Row]:
    """Extra columns for every layer of ``analysis`` (same order) and for the whole network.

    Always: AI, R_F, R_IA, R_OA, DI. With ``device``: roofline bounds (see :mod:`roofline`). With
    ``weights`` (``{layer name: [blobs]}`` as read from a .caffemodel): weight-storage statistics of the
    Convolution and InnerProduct layers (see :mod:`weight_storage`); other layers get no such columns, and
    ``totals["weights_unmatched_layers"]`` names the blobs' layers that ``analysis`` does not have.
    """
    di = di or DIWeights()
    volumes = [DataVolume.of_layer(s) for s in analysis.layers]
    total = sum(volumes, DataVolume(0, 0, 0, 0))
    per_layer = [reuse_columns(v, di) for v in volumes]
    totals = reuse_columns(total, di)
    totals["di_weights"] = di.label()
    if device is not None:
        bounds = [roofline.layer_bound(v, device) for v in volumes]
        for row, b in zip(per_layer, bounds, strict=True):
            row.update(b)
        totals.update(roofline.network_bound(bounds, total, device, analysis.totals.memory_bytes))
    if weights is not None:
        layer_names = {s.name for s in analysis.layers}
        dot_layers = {s.name: s for s in analysis.layers if s.type in weight_storage.DOT_PRODUCT_TYPES}
        matrices = {name: blobs for name, blobs in weights.items() if name in dot_layers and blobs}
        # Each output position (per image) is one product of the weight matrix with an input vector.
        applications = {name: count(dot_layers[name].output_shapes[0]) // np.asarray(blobs[0]).shape[0]
                        for name, blobs in matrices.items()}
        stats = weight_storage.analyze_weights(matrices, quantize_bits, value_bits, index_bits, applications)
        for s, row in zip(analysis.layers, per_layer, strict=True):
            if s.name in stats:
                row.update(stats[s.name].columns())
        totals.update(weight_storage.total_columns(list(stats.values())))
        # A .caffemodel of another network (or of a train_val with extra layers): say what was not used.
        totals["weights_unmatched_layers"] = sorted(set(weights) - layer_names)
    return per_layer, totals
