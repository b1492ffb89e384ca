"""The data a layer moves: MACs and the elements of its weights, input and output activations.

The bottom of the design-time metrics: :mod:`harness.analysis.metrics` (reuse factors) and
:mod:`harness.analysis.roofline` (latency bounds) both read it, and neither imports the other's
consumer, so imports run one way (volume <- roofline <- metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.layers.base import count

if TYPE_CHECKING:
    from harness.analysis.analyzer import LayerStats

BYTES_PER_ELEMENT: dict[str, int] = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class DataVolume:
    """MACs and the elements of each data type one layer (or the sum of layers) touches."""

    macs: int
    weights: int
    inputs: int
    outputs: int

    @classmethod
    def of_layer(cls, s: LayerStats) -> DataVolume:
        return cls(s.macs, s.params, sum(count(x) for x in s.input_shapes), sum(count(x) for x in s.output_shapes))

    def __add__(self, other: DataVolume) -> DataVolume:
        return DataVolume(self.macs + other.macs, self.weights + other.weights, self.inputs + other.inputs,
                          self.outputs + other.outputs)

    @property
    def elements(self) -> int:
        return self.weights + self.inputs + self.outputs

    def bytes(self, dtype: str) -> int:
        return self.elements * BYTES_PER_ELEMENT[dtype]
