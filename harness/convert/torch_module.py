"""A graph IR network as one ``torch.nn.Module`` that runs Caffe's layers in Caffe's order.

Blobs are kept by their Caffe names while the network runs, so any intermediate blob can be
returned for comparison with another engine (:meth:`CaffeNet.run`); a blob is released after its
last reader, as a hand-written PyTorch model would, unless it was asked for.

For profiling (``harness profile``), :attr:`CaffeNet.layer_ranges` wraps each layer's call in a
``layer:<name>`` range (:func:`harness.kernels.ranges.layer_range`) so that the kernels it launches
are attributed to it; off, the forward pass is what it always is.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import Tensor, nn

from harness.analysis.analyzer import engine_analysis
from harness.convert import torch_bvlc_layers  # noqa: F401  (registers the BVLC types beyond the common ones)
from harness.convert.blobs import output_blob
from harness.convert.torch_layers import NOT_CONVERTIBLE, TORCH_LAYERS
from harness.convert.weights import Weights
from harness.errors import GraphError, UnsupportedLayer
from harness.ir.graph import Graph
from harness.kernels.ranges import layer_range


class CaffeNet(nn.Module):
    """``forward(*inputs)`` returns the ``outputs`` blobs (one tensor when there is one output)."""

    def __init__(self, graph: Graph, weights: Weights, batch: int | None = None,
                 outputs: Sequence[str] | None = None) -> None:
        super().__init__()
        analysis = engine_analysis(graph, batch)
        self.graph_name = graph.name
        self.input_names = [s.name for s in graph.inputs]
        self.input_shapes = [analysis.input_shapes[n] for n in self.input_names]
        self.layer_names: list[str] = []
        self.layer_types: list[str] = []  # Caffe type per layer module (precision reports group by it)
        self.layer_modules = nn.ModuleList()
        self.steps: list[tuple[list[str], list[str]]] = []
        for layer, stats in zip(graph.layers, analysis.layers, strict=True):
            builder = TORCH_LAYERS.get(layer.type)
            if builder is None:
                raise UnsupportedLayer(layer.name, layer.type, "pytorch",
                                       NOT_CONVERTIBLE.get(layer.type, "no PyTorch conversion"))
            self.layer_modules.append(
                builder(layer, stats.input_shapes, stats.output_shapes, weights.get(layer.name, [])))
            self.layer_names.append(layer.name)
            self.layer_types.append(layer.type)
            self.steps.append((list(layer.bottoms), list(layer.tops)))
        self.outputs = list(outputs) if outputs else [output_blob(graph)]
        unknown = [o for o in self.outputs if o not in analysis.blob_shapes]
        if unknown:
            raise GraphError(f"network '{graph.name}' has no blob named {', '.join(unknown)}")
        self.release = self._release_plan()
        self.layer_ranges = False  # profiling only: a `layer:<name>` range around each layer's call
        self.nvtx_ranges = False  # ... also as an NVTX range (Nsight Systems), on CUDA

    def _release_plan(self) -> list[list[str]]:
        """Per step, the bottoms no later step reads and this step does not rewrite in place."""
        plan: list[list[str]] = []
        read_later: set[str] = set(self.outputs)
        for bottoms, tops in reversed(self.steps):
            plan.append([b for b in dict.fromkeys(bottoms) if b not in read_later and b not in tops])
            read_later.update(bottoms)
        return plan[::-1]

    def run(self, *inputs: Tensor, keep: Collection[str] = ()) -> dict[str, Tensor]:
        """Run the network; the ``outputs`` blobs and the ``keep`` blobs, by name, as they are at the end."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.graph_name} takes {len(self.input_names)} inputs, got {len(inputs)}")
        keep = set(keep)
        blobs: dict[str, Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for name, module, (bottoms, tops), release in zip(self.layer_names, self.layer_modules, self.steps,
                                                          self.release, strict=True):
            if self.layer_ranges:
                with layer_range(name, nvtx=self.nvtx_ranges):
                    result = module(*[blobs[b] for b in bottoms])
            else:
                result = module(*[blobs[b] for b in bottoms])
            if isinstance(result, Tensor):
                result = (result,)
            for top, value in zip(tops, result, strict=True):
                blobs[top] = value
            for name in release:
                if name not in keep:
                    del blobs[name]
        return {name: blobs[name] for name in [*self.outputs, *keep]}

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        blobs = self.run(*inputs)
        values = tuple(blobs[name] for name in self.outputs)
        return values[0] if len(values) == 1 else values

    def extra_repr(self) -> str:
        return f"{self.graph_name}: {len(self.steps)} layers, outputs {self.outputs}"


def build_module(graph: Graph, weights: Weights, batch: int | None = None,
                 outputs: Sequence[str] | None = None) -> CaffeNet:
    """The converted network in eval mode, parameters frozen."""
    with torch.no_grad():
        module = CaffeNet(graph, weights, batch, outputs)
    return module.eval().requires_grad_(False)
