"""Per-layer and whole-network params, MACs, activations and memory, from the graph IR."""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field

from harness.errors import GraphError
from harness.ir.graph import Graph, Shape
from harness.layers import Convention, handler_for
from harness.layers.base import PassThrough, count

BYTES_PER_ELEMENT = 4  # fp32, as Caffe stores blobs


@dataclass
class LayerStats:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    param_shapes: list[Shape]
    params: int
    macs: int
    activations: int
    workspace: int = 0


@dataclass
class Totals:
    macs: int
    params: int
    activations: int
    param_bytes: int
    activation_bytes: int
    workspace_bytes: int

    @property
    def acts_per_param(self) -> float:
        return self.activations / self.params if self.params else float("nan")

    @property
    def macs_per_param(self) -> float:
        return self.macs / self.params if self.params else float("nan")

    @property
    def macs_per_act(self) -> float:
        return self.macs / self.activations if self.activations else float("nan")

    @property
    def memory_bytes(self) -> int:
        return self.param_bytes + self.activation_bytes + self.workspace_bytes

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "acts_per_param": self.acts_per_param, "macs_per_param": self.macs_per_param,
                "macs_per_act": self.macs_per_act, "memory_bytes": self.memory_bytes}


@dataclass
class NetAnalysis:
    network: str
    source: str
    convention: Convention
    batch: int
    input_shapes: dict[str, Shape]
    layers: list[LayerStats]
    totals: Totals
    blob_shapes: dict[str, Shape]
    warnings: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> Shape:
        return next(iter(self.input_shapes.values()))

    def to_json(self, per_layer: bool = True) -> dict:
        return {
            "network": self.network,
            "source": self.source,
            "convention": self.convention.value,
            "batch": self.batch,
            "input_shape": list(self.input_shape),
            "totals": {k: v for k, v in self.totals.as_dict().items()},
            "layers": [
                {**asdict(s), "input_shapes": [list(x) for x in s.input_shapes],
                 "output_shapes": [list(x) for x in s.output_shapes],
                 "param_shapes": [list(x) for x in s.param_shapes]}
                for s in self.layers] if per_layer else [],
            "warnings": self.warnings,
        }


def analyze(graph: Graph, convention: Convention | str = Convention.PAPER, batch: int | None = None,
            input_size: int | tuple[int, int] | None = None, allow_unknown: bool = False,
            network: str | None = None) -> NetAnalysis:
    """Walk the graph in Caffe's order, inferring every blob shape and counting costs."""
    convention = Convention(convention)
    graph = graph.with_inputs(batch, input_size)
    blobs: dict[str, Shape] = {spec.name: spec.shape for spec in graph.inputs}
    warnings = list(graph.warnings)
    activations_total = sum(count(s) for s in blobs.values())
    stats: list[LayerStats] = []
    for lay in graph.layers:
        handler = handler_for(lay, allow_unknown)
        if isinstance(handler, PassThrough):
            warnings.append(f"{lay.where()}: unknown type treated as a zero-cost pass-through (--allow-unknown)")
        lo_b, hi_b = handler.bottoms
        lo_t, hi_t = handler.tops
        if len(lay.bottoms) < lo_b or (hi_b is not None and len(lay.bottoms) > hi_b):
            raise GraphError(f"{lay.where()}: takes {_arity(lo_b, hi_b)} bottom(s), got {len(lay.bottoms)}")
        if len(lay.tops) < lo_t or (hi_t is not None and len(lay.tops) > hi_t):
            raise GraphError(f"{lay.where()}: produces {_arity(lo_t, hi_t)} top(s), got {len(lay.tops)}")
        ins = [blobs[b] for b in lay.bottoms]
        if isinstance(handler, PassThrough) and not ins:
            raise GraphError(f"{lay.where()}: unknown type with no bottom: its output shape cannot be inferred")
        outs = handler.output_shapes(lay, ins, convention)
        for top, shape in zip(lay.tops, outs, strict=True):
            if any(d <= 0 for d in shape):
                raise GraphError(f"{lay.where()}: top '{top}' would have non-positive shape {shape}")
        param_shapes = handler.param_shapes(lay, ins)
        if convention is Convention.PAPER:
            params = handler.paper_params(lay, ins, outs)
            acts = sum(count(s) for s in outs)
            workspace = 0
        else:
            params = sum(count(s) for s in param_shapes)
            acts = 0 if handler.shares_bottom_memory else sum(
                count(s) for i, s in enumerate(outs) if not (i < len(lay.bottoms) and lay.bottoms[i] == lay.tops[i]))
            workspace = handler.workspace(lay, ins, outs)
        macs = handler.macs(lay, ins, outs)
        for top, shape in zip(lay.tops, outs, strict=True):
            blobs[top] = shape
        activations_total += acts
        stats.append(LayerStats(lay.name, lay.type, list(lay.bottoms), list(lay.tops), ins, outs, param_shapes,
                                params, macs, acts, workspace))
    params_total = sum(s.params for s in stats)
    totals = Totals(
        macs=sum(s.macs for s in stats),
        params=params_total,
        activations=activations_total,
        param_bytes=BYTES_PER_ELEMENT * params_total,
        activation_bytes=BYTES_PER_ELEMENT * activations_total,
        # Caffe keeps one im2col buffer per convolution layer (not shared across layers in 1.0).
        workspace_bytes=BYTES_PER_ELEMENT * sum(s.workspace for s in stats),
    )
    return NetAnalysis(network=network or graph.name, source=graph.source, convention=convention,
                       batch=graph.inputs[0].shape[0] if graph.inputs[0].shape else 1,
                       input_shapes={s.name: s.shape for s in graph.inputs}, layers=stats, totals=totals,
                       blob_shapes=blobs, warnings=warnings)


_ANALYSES: dict[int, dict[tuple[object, ...], NetAnalysis]] = {}


def analysis_of(graph: Graph, convention: Convention | str = Convention.PAPER, batch: int | None = None,
                input_size: int | tuple[int, int] | None = None, network: str | None = None) -> NetAnalysis:
    """:func:`analyze`, computed once per graph object and arguments and then shared by every consumer
    (the report's tables, claims and roofline, ``analyze``'s metrics, a sweep's MACs per record).

    Keyed by the graph's identity, not its content: a graph is not hashable, and parsing the same file
    twice gives two graphs, so callers share the graph they loaded. The cache entry goes away with the
    graph. The result is shared: treat it as read-only."""
    convention = Convention(convention)
    size = tuple(input_size) if isinstance(input_size, (tuple, list)) else input_size
    key = (convention, batch, size, network)
    per_graph = _ANALYSES.get(id(graph))
    if per_graph is None:
        per_graph = _ANALYSES[id(graph)] = {}
        weakref.finalize(graph, _ANALYSES.pop, id(graph), None)
    if key not in per_graph:
        per_graph[key] = analyze(graph, convention, batch=batch, input_size=input_size, network=network)
    return per_graph[key]


def _arity(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo}"
    return str(lo) if lo == hi else f"{lo} to {hi}"
