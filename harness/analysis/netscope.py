"""What the Netscope CNN Analyzer counts beyond each layer's own formulas: the paper convention's graph rules.

Netscope (github dgschwend/netscope, gh-pages: src/caffe/caffe.coffee, src/analyzer.coffee) builds its graph
of *nodes*, one per layer, named by the layer, and reads the network's blobs through them:

- a top named differently from its layer (``fc8`` writing ``prob``, a data layer ``data`` writing ``label``)
  is a node of its own, a pass-through "implicit" node, which counts the producing node's output once more as
  activations (its output: a node has one, whatever its tops);
- a layer type its analyzer has no case for counts nothing (0 MACs, parameters, activations);
- of the net-level inputs it sees only those its reader finds in the file's header: the ``input:`` fields
  before the first block, with ``input_dim`` there or one ``input_shape`` block right after, one shape per
  input. An input declared after that (Faster R-CNN's ``im_info`` after the image's ``input_shape``) gets no
  shape and counts no activations (where such an input is a layer's first bottom, Netscope's totals are NaN
  instead: the harness counts it).

The layer formulas themselves are the handlers' ``paper_*`` methods (:mod:`harness.layers`). Where
Netscope's graph would give a following layer no shape (after a type it does not know, it passes on a
0-sized output; an input it does not see is NaN), the harness gives it the real one and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.ir.graph import Graph, InputSpec, Layer
from harness.ir.textformat import Field, Message

# The layer types src/analyzer.coffee has a case for, lower-cased as it compares them.
NETSCOPE_TYPES = frozenset({
    "data", "input", "convolution", "innerproduct", "inner_product", "pooling", "batchnorm", "bn", "lrn",
    "normalize", "concat", "relu", "relu6", "elu", "prelu", "dropout", "softmax", "softmaxwithloss",
    "softmax_loss", "flatten", "eltwise", "deconvolution", "crop", "scale", "implicit", "accuracy", "power",
    "permute", "priorbox", "reshape", "python", "roipooling"})


def knows(layer_type: str) -> bool:
    return layer_type.lower() in NETSCOPE_TYPES


def _values(net: Message) -> Iterator[list[Field]]:
    """The net's top-level fields grouped as Netscope's pegjs grammar groups them: a run of ``key: value``
    pairs is one value, each ``key { }`` block another."""
    run: list[Field] = []
    for f in net.fields:
        if isinstance(f.value, Message):
            if run:
                yield run
                run = []
            yield [f]
        else:
            run.append(f)
    if run:
        yield run


def header_inputs(net: Message) -> set[str]:
    """The net-level inputs Netscope's reader gives a shape (CaffeParser.parse and generateNetwork)."""
    values = list(_values(net))
    if not values or values[0][0].name == "layer":
        return set()
    header = _by_name(values[0])
    # The value after the header joins it when it holds input_dim or input_shape (an input_shape block).
    if len(values) > 1 and any(f.name in ("input_dim", "input_shape") for f in values[1]):
        header.update(_by_name(values[1]))
    inputs = [f.value for f in header.get("input", []) if isinstance(f.value, str)]
    if "input_dim" in header:
        dims = header["input_dim"]
    elif "input_shape" in header and isinstance(header["input_shape"][0].value, Message):
        dims = [f for f in header["input_shape"][0].value.fields if f.name == "dim"]
    else:
        return set()
    # A lone value is a number, not a list, in Netscope's reader: "inconsistent" for any input count.
    return set(inputs) if len(dims) > 1 and len(dims) == 4 * len(inputs) else set()


def _by_name(group: list[Field]) -> dict[str, list[Field]]:
    named: dict[str, list[Field]] = {}
    for f in group:
        named.setdefault(f.name, []).append(f)
    return named


@dataclass
class NetscopeNodes:
    """Netscope's pass-through nodes and input nodes for one graph."""

    graph: Graph
    # Layer name -> the tops that are pass-through nodes of that layer (each name once, its first producer).
    pass_through: dict[str, list[str]] = field(default_factory=dict)
    # Data layer name -> the tops of that data layer that are pass-through nodes.
    input_pass_through: dict[str, list[str]] = field(default_factory=dict)
    unseen_inputs: list[InputSpec] = field(default_factory=list)
    nan_inputs: list[InputSpec] = field(default_factory=list)

    @classmethod
    def of(cls, graph: Graph) -> NetscopeNodes:
        nodes = cls(graph)
        names = {lay.name for lay in graph.layers} | {s.layer for s in graph.inputs if s.layer is not None}
        made: set[str] = set()

        def implicit(layer: str, tops: list[str]) -> list[str]:
            new = [t for t in dict.fromkeys(tops) if t != layer and t not in names and t not in made]
            made.update(new)
            return new

        data_layers: dict[str, list[str]] = {}
        for spec in graph.inputs:
            if spec.layer is not None:
                data_layers.setdefault(spec.layer, []).append(spec.name)
        for layer, tops in data_layers.items():
            nodes.input_pass_through[layer] = implicit(layer, tops)
        for lay in graph.layers:
            if not _in_place(lay):
                nodes.pass_through[lay.name] = implicit(lay.name, lay.tops)
        # An input Netscope's reader does not see is a node without a shape: it counts nothing, but where it
        # is some layer's first bottom, everything after it is NaN in Netscope. Only the first case is
        # reproduced; in the second there is no Netscope number, and the harness counts every input.
        seen = header_inputs(graph.spec)
        firsts = {lay.bottoms[0] for lay in graph.layers if lay.bottoms}
        unseen = [s for s in graph.inputs if s.layer is None and s.name not in seen]
        if any(s.name in firsts for s in unseen):
            nodes.nan_inputs = unseen
        else:
            nodes.unseen_inputs = unseen
        return nodes


def _in_place(lay: Layer) -> bool:
    """Netscope's test (``layer.top == layer.bottom``): one top, one bottom, the same name."""
    return len(lay.tops) == 1 and len(lay.bottoms) == 1 and lay.tops[0] == lay.bottoms[0]
