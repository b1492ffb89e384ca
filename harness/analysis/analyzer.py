"""Per-layer and whole-network params, MACs, activations and memory, from the graph IR."""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field, replace

from harness.analysis import netscope
from harness.analysis.caffe_net import check_net, check_params
from harness.errors import GraphError, UnknownLayerError
from harness.ir.graph import Graph, Layer, Shape
from harness.ir.textformat import NAME_CHARS, excerpt
from harness.layers import Convention, handler_for
from harness.layers.base import LayerHandler, PassThrough, count, handlers

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
    macs: int | float  # a float only where Netscope's Deconvolution rule gives a fraction (paper convention)
    activations: int
    workspace: int = 0
    # Paper convention: tops of this layer that are nodes of their own in Netscope's graph (a top named
    # differently from its layer), each counting this layer's output once more in ``activations``.
    pass_through: list[str] = field(default_factory=list)


@dataclass
class Totals:
    macs: int | float
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
    phase: str = "TEST"
    # Caffe convention counting the forks' way: the fork layer types and fields it honoured, one line each
    # ("pool1: pooling_param.ceil_mode: false"), for the records of the engines that run it.
    fork_features: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> Shape:
        return next(iter(self.input_shapes.values()))

    def to_json(self, per_layer: bool = True) -> dict:
        return {
            "network": self.network,
            "source": self.source,
            "convention": self.convention.value,
            "phase": self.phase,
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
            network: str | None = None, channels: int | None = None, forks: bool | None = None) -> NetAnalysis:
    """Walk the graph in Caffe's order, inferring every blob shape and counting costs.

    ``allow_unknown``: unknown types become zero-cost pass-throughs. ``forks`` (by default as
    ``allow_unknown``): the caffe convention counts the layer types of Caffe forks as those forks build them,
    where it would otherwise refuse them as BVLC Caffe does. Otherwise the caffe convention refuses whatever
    BVLC Caffe refuses: the text against caffe.proto and Caffe's net set-up (:mod:`harness.analysis.caffe_net`),
    and each layer's own checks (the handlers)."""
    convention = Convention(convention)
    graph = graph.with_inputs(batch, input_size, channels)
    paper = convention is Convention.PAPER
    if not paper and graph.bvlc_refusals:
        raise GraphError(graph.bvlc_refusals[0])
    strict = not paper and not (allow_unknown if forks is None else forks)
    if strict:  # a fork's type or field the harness knows is named as such first, before the text's checks
        table = handlers()
        for lay in graph.layers:
            if lay.type in table:
                _check_fork(lay, table[lay.type], False)
    caffe_layers = check_net(graph, allow_unknown) if strict else None
    blobs: dict[str, Shape] = {spec.name: spec.shape for spec in graph.inputs}
    warnings = [*graph.warnings, *(graph.netscope_warnings if paper else []), *graph.assumptions()]
    nodes = netscope.NetscopeNodes.of(graph) if paper else None
    activations_total = _paper_input_activations(graph, nodes, warnings) if nodes \
        else sum(count(s) for s in blobs.values())
    unknown_to_netscope: dict[str, list[str]] = {}
    fork_features: list[str] = []
    stats: list[LayerStats] = []
    read = {b for lay in graph.layers for b in lay.bottoms if b not in lay.tops}
    for lay in graph.layers:
        try:
            handler = handler_for(lay, allow_unknown)
        except UnknownLayerError as exc:
            # Netscope counts such a layer 0; where no layer reads its output, its shape is not needed either.
            if not paper or any(top in read for top in lay.tops):
                raise
            warnings.append(f"{lay.where()}: a layer neither the harness nor Netscope can count ({exc.reason}), "
                            "whose output no layer reads: counted as 0, as Netscope counts it")
            stats.append(LayerStats(lay.name, lay.type, list(lay.bottoms), list(lay.tops),
                                    [blobs[b] for b in lay.bottoms], [], [], 0, 0, 0))
            continue
        if isinstance(handler, PassThrough):
            warnings.append(f"{lay.where()}: unknown type treated as a zero-cost pass-through (--allow-unknown)")
        elif not paper:  # strict: every fork type and field was refused above; else they are counted, and named
            fork_features += [f"{lay.name}: type {lay.type} ({handler.fork})"] if handler.fork else []
            fork_features += [f"{lay.name}: {f}" for f in handler.fork_fields(lay)]
        if handler.cost_note:
            warnings.append(f"{lay.where()}: {handler.cost_note}")
        _check_arity(lay, handler, paper)
        ins = [blobs[b] for b in lay.bottoms]
        if isinstance(handler, PassThrough) and not ins:
            raise GraphError(f"{lay.where()}: unknown type with no bottom: its output shape cannot be inferred")
        # Netscope counts a node's output whether or not the layer names a top: a top-less layer is given
        # one to count it by (its own name), and no blob.
        node = replace(lay, tops=[lay.name]) if paper and not lay.tops and handler.tops[0] > 0 else lay
        outs = handler.output_shapes(node, ins, convention)
        for top, shape in zip(node.tops, outs, strict=True):
            # Caffe's Blob::Reshape takes a 0 (an empty blob), not a negative size
            if any(d < 0 for d in shape) or (paper and 0 in shape):
                raise GraphError(f"{lay.where()}: top '{top}' would have non-positive shape {shape}")
        warnings += [f"{lay.where()}: {note}" for note in handler.notes(lay, ins, outs, convention)]
        param_shapes = handler.param_shapes(lay, ins)
        if nodes is None:
            layer_stats = _caffe_counts(lay, handler, ins, outs, param_shapes)
        elif netscope.knows(lay.type) and not isinstance(handler, PassThrough):
            layer_stats = _paper_counts(lay, handler, ins, outs, param_shapes, nodes.pass_through.get(lay.name, []))
        else:
            layer_stats = LayerStats(lay.name, lay.type, list(lay.bottoms), list(lay.tops), ins, outs, param_shapes,
                                     0, 0, 0)
            unknown_to_netscope.setdefault(lay.type, []).append(lay.where())
        for top, shape in zip(lay.tops, outs, strict=False):
            blobs[top] = shape
        activations_total += layer_stats.activations
        stats.append(layer_stats)
    for type_, where in unknown_to_netscope.items():
        warnings.append(f"{where[0]}{f' and {len(where) - 1} more' if len(where) > 1 else ''}: type "
                        f"{excerpt(type_, NAME_CHARS)} is unknown to Netscope: counted as 0 MACs, parameters and "
                        "activations, as Netscope counts it (Netscope would also give the layers after it a 0-sized "
                        "input; the harness gives them its real output)")
    if caffe_layers is not None:  # Net::Init's parameter checks, once every layer is set up
        blobs_of = {id(lay.spec): s.param_shapes for lay, s in zip(graph.layers, stats, strict=True)}
        check_params(caffe_layers, {i: blobs_of[id(net_layer.spec)] for i, net_layer in enumerate(caffe_layers)
                                    if id(net_layer.spec) in blobs_of})
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
                       blob_shapes=blobs, warnings=warnings, phase=graph.phase, fork_features=fork_features)


def _caffe_counts(lay: Layer, handler: LayerHandler, ins: list[Shape], outs: list[Shape],
                  param_shapes: list[Shape]) -> LayerStats:
    """What BVLC Caffe allocates: its parameter blobs, the tops that do not share a bottom's memory, im2col."""
    acts = 0 if handler.shares_bottom_memory else sum(
        count(s) for i, s in enumerate(outs) if not (i < len(lay.bottoms) and lay.bottoms[i] == lay.tops[i]))
    return LayerStats(lay.name, lay.type, list(lay.bottoms), list(lay.tops), ins, outs, param_shapes,
                      sum(count(s) for s in param_shapes), handler.macs(lay, ins, outs), acts,
                      handler.workspace(lay, ins, outs))


def _paper_counts(lay: Layer, handler: LayerHandler, ins: list[Shape], outs: list[Shape], param_shapes: list[Shape],
                  pass_through: list[str]) -> LayerStats:
    """Netscope's counts of one layer, the output of its pass-through nodes included."""
    acts = handler.paper_activations(lay, ins, outs) + len(pass_through) * count(handler.paper_output(lay, ins, outs))
    return LayerStats(lay.name, lay.type, list(lay.bottoms), list(lay.tops), ins, outs, param_shapes,
                      handler.paper_params(lay, ins, outs), handler.paper_macs(lay, ins, outs), acts, 0,
                      list(pass_through))


def _check_fork(lay: Layer, handler: LayerHandler, forks: bool) -> None:
    """The caffe convention refuses a fork's layer type or field as BVLC Caffe does, unless told to count the
    forks' way."""
    if forks:
        return
    how = "(use --allow-unknown to count it as that fork builds it, or --convention paper to count it as " \
          "Netscope does)"
    if handler.fork:
        raise UnknownLayerError(f"{lay.where()}: type {excerpt(lay.type, NAME_CHARS)} is {handler.fork}, which "
                                f"BVLC Caffe refuses {how}")
    fields = handler.fork_fields(lay)
    if fields:
        raise UnknownLayerError(f"{lay.where()}: {fields[0]} is a field of Caffe forks, which BVLC "
                                f"Caffe refuses {how}")


def _check_arity(lay: Layer, handler: LayerHandler, paper: bool) -> None:
    bottoms, (lo_t, hi_t) = handler.blob_counts(lay)
    lo_b, hi_b = handler.paper_bottoms if paper and handler.paper_bottoms else bottoms
    # Netscope counts a layer without tops too; Caffe gives a loss layer an anonymous one
    lo_t = 0 if paper or handler.auto_tops else lo_t
    if len(lay.bottoms) < lo_b or (hi_b is not None and len(lay.bottoms) > hi_b):
        raise GraphError(f"{lay.where()}: takes {_arity(lo_b, hi_b)} bottom(s), got {len(lay.bottoms)}")
    if len(lay.tops) < lo_t or (hi_t is not None and len(lay.tops) > hi_t):
        raise GraphError(f"{lay.where()}: produces {_arity(lo_t, hi_t)} top(s), got {len(lay.tops)}")


def _paper_input_activations(graph: Graph, nodes: netscope.NetscopeNodes, warnings: list[str]) -> int:
    """The inputs' activations as Netscope counts them: each data node's output (a data layer's first top,
    again for each of its tops that is a pass-through node, its label included), and no net-level input it
    does not see."""
    total = 0
    firsts: dict[str, Shape] = {}
    for spec in graph.inputs:
        if spec.layer is None:
            total += 0 if spec in nodes.unseen_inputs else count(spec.shape)
        elif spec.layer not in firsts:
            firsts[spec.layer] = spec.shape
            total += count(spec.shape) * (1 + len(nodes.input_pass_through.get(spec.layer, [])))
            where = f"layer {excerpt(spec.layer, NAME_CHARS)} ({spec.layer_type})" + (f" at {spec.loc}" if spec.loc
                                                                                       else "")
            if not netscope.knows(spec.layer_type or ""):
                warnings.append(f"{where}: a data layer of a type unknown to Netscope, which counts nothing for it "
                                f"and gives the layers after it no input (NaN or 0): counted as the {spec.shape} "
                                "data it makes")
            elif not spec.shape_given:
                warnings.append(f"{where}: Netscope gives a Data layer without input_param no batch (its totals are "
                                f"NaN): counted with the layer's batch_size, input {spec.shape}")
    header = "not in the header Netscope reads (the input: fields before the first block, one shape each)"
    for spec in nodes.unseen_inputs:
        warnings.append(f"{graph.source}: input {excerpt(spec.name, NAME_CHARS)} {spec.shape} is {header}: counted "
                        "as 0 activations, as Netscope counts it")
    for spec in nodes.nan_inputs:
        warnings.append(f"{graph.source}: input {excerpt(spec.name, NAME_CHARS)} {spec.shape} is {header}: Netscope "
                        "gives it no shape and NaN totals; counted with its shape")
    return total


_ANALYSES: dict[int, dict[tuple[object, ...], NetAnalysis]] = {}


def analysis_of(graph: Graph, convention: Convention | str = Convention.PAPER, batch: int | None = None,
                input_size: int | tuple[int, int] | None = None, network: str | None = None,
                allow_unknown: bool = False, channels: int | None = None, forks: bool | None = None) -> NetAnalysis:
    """:func:`analyze`, computed once per graph object and arguments and then shared by every consumer
    (the report's tables, claims and roofline, ``analyze``'s metrics, a sweep's MACs per record).

    Keyed by the graph's identity, not its content: a graph is not hashable, and parsing the same file
    twice gives two graphs, so callers share the graph they loaded. The cache entry goes away with the
    graph. The result is shared: treat it as read-only."""
    convention = Convention(convention)
    size = tuple(input_size) if isinstance(input_size, (tuple, list)) else input_size
    key = (convention, batch, size, network, allow_unknown, channels, forks)
    per_graph = _ANALYSES.get(id(graph))
    if per_graph is None:
        per_graph = _ANALYSES[id(graph)] = {}
        weakref.finalize(graph, _ANALYSES.pop, id(graph), None)
    if key not in per_graph:
        per_graph[key] = analyze(graph, convention, batch=batch, input_size=input_size, network=network,
                                 allow_unknown=allow_unknown, channels=channels, forks=forks)
    return per_graph[key]


def engine_analysis(graph: Graph, batch: int | None = None) -> NetAnalysis:
    """The caffe convention as the engines the harness runs read a file: the layer types and fields of Caffe
    forks as those forks build them (a fork's ``ceil_mode: false`` pools with floor, as OpenCV does), so that
    the PyTorch conversion, its ONNX export and OpenCV run one network; unknown types are still refused."""
    return analysis_of(graph, Convention.CAFFE, batch=batch, forks=True)


def fork_info(graph: Graph) -> dict[str, list[str]]:
    """For the record of an engine that runs ``graph``: the fork types and fields it runs as their forks do
    (``{"fork_features": [...]}``), or nothing when the network has none."""
    features = engine_analysis(graph).fork_features
    return {"fork_features": features} if features else {}


def _arity(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo}"
    return str(lo) if lo == hi else f"{lo} to {hi}"
