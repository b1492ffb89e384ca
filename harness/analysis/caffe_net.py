"""BVLC Caffe's net set-up, checked for ``--convention caffe``: what ``caffe.Net(prototxt, caffe.TEST)``
refuses beyond the layers' own shape rules (those are in the handlers).

In the order Caffe meets them (``ReadProtoFromTextFile``, ``UpgradeNetAsNeeded``, ``Net::Init``):

- the text against caffe.proto (:mod:`harness.ir.schema_check`);
- the upgrades: ``layer`` and ``layers`` in one file; a V1 layer's type NONE;
- ``Net::FilterNet`` (include/exclude rules: :class:`harness.ir.build.NetState`);
- ``InsertSplits`` and ``Net::AppendBottom``/``AppendTop``: every bottom produced by an earlier layer
  (an ``Input`` layer counts where it stands, not before everything); a top that is not in place (top
  ``i`` named as bottom ``i``) may not reuse an existing blob name, and a layer is in place only when it
  is its blob's only reader: a blob read by several layers (or also a loss) goes through a Split, so an
  in-place layer on it writes a second producer of the name ("produced by multiple sources");
- ``propagate_down`` given 0 or once per bottom; ``loss_weight`` 0 times or once per top (a loss layer
  counts as given once);
- ``Layer::CheckBlobCounts`` (Caffe's numbers of bottoms and tops per type; a loss layer gets an
  automatic top when it has none);
- parameters, after every layer's set-up: no more ``param`` specs than the layer has blobs; BatchNorm's
  statistics not learnable (``lr_mult`` 0 unless three specs, which Caffe's upgrade zeroes); a shared
  parameter (a ``param`` name seen before) has the owner's shape (its count with ``share_mode:
  PERMISSIVE``) and the same ``lr_mult``/``decay_mult`` where both give one.

Each refusal is one line naming the layer and giving Caffe's reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.errors import GraphError, PrototxtError, UnknownLayerError
from harness.ir.build import V1_LAYER_TYPES, NetState
from harness.ir.graph import Graph, Layer, Shape
from harness.ir.schema_check import check_message
from harness.ir.textformat import NAME_CHARS, Enum, Field, Message, excerpt, gc_paused
from harness.layers.base import canonical_type, handlers
from harness.layers.caffe_rules import fill, to_float32

# The layer types BVLC Caffe 9b891540 registers (REGISTER_LAYER_CLASS/CREATOR in src/caffe/layers and
# layer_factory.cpp), without Python, which exists only in builds WITH_PYTHON_LAYER and runs user code.
BVLC_TYPES = frozenset({
    "AbsVal", "Accuracy", "ArgMax", "BNLL", "BatchNorm", "BatchReindex", "Bias", "Clip", "Concat", "ContrastiveLoss",
    "Convolution", "Crop", "Data", "Deconvolution", "Dropout", "DummyData", "ELU", "Eltwise", "Embed",
    "EuclideanLoss", "Exp", "Filter", "Flatten", "HDF5Data", "HDF5Output", "HingeLoss", "Im2col", "ImageData",
    "InfogainLoss", "InnerProduct", "Input", "LRN", "LSTM", "LSTMUnit", "Log", "MVN", "MemoryData",
    "MultinomialLogisticLoss", "PReLU", "Parameter", "Pooling", "Power", "RNN", "ReLU", "Reduction", "Reshape", "SPP",
    "Scale", "Sigmoid", "SigmoidCrossEntropyLoss", "Silence", "Slice", "Softmax", "SoftmaxWithLoss", "Split", "Swish",
    "TanH", "Threshold", "Tile", "WindowData"})
# Which filler fills each parameter blob a type creates: (param block, filler field) per blob, in order.
_FILLERS = {
    "Convolution": [("convolution_param", "weight_filler"), ("convolution_param", "bias_filler")],
    "Deconvolution": [("convolution_param", "weight_filler"), ("convolution_param", "bias_filler")],
    "InnerProduct": [("inner_product_param", "weight_filler"), ("inner_product_param", "bias_filler")],
    "Embed": [("embed_param", "weight_filler"), ("embed_param", "bias_filler")],
    "PReLU": [("prelu_param", "filler")],
    "Bias": [("bias_param", "filler")],
}


@dataclass
class ParamSpec:
    """One ``param {}`` of a layer (a V1 layer's ``param``/``blob_share_mode``/``blobs_lr``/
    ``weight_decay`` upgraded as Caffe upgrades them); ``None`` where the field is not given."""

    name: str = ""
    permissive: bool = False
    lr_mult: float | None = None
    decay_mult: float | None = None


@dataclass
class NetLayer:
    """A layer of the net Caffe builds, in Caffe's order (the implicit ``input`` layer of net-level
    ``input`` fields first)."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    spec: Message | None
    at: Field | None  # the layer's field in the text (None: the net's input fields)
    params: list[ParamSpec] = field(default_factory=list)
    loss_weights: list[float] = field(default_factory=list)
    propagate_down: int = 0

    @property
    def where(self) -> str:
        """How messages name the layer, as :meth:`harness.ir.graph.Layer.where` does."""
        if self.at is None:
            return "the net's input fields"
        return f"layer {excerpt(self.name, NAME_CHARS)} ({excerpt(self.type, NAME_CHARS)[1:-1]}) at {self.at.loc}"

    def as_layer(self) -> Layer:
        """The graph's form of this layer, for the handlers' checks (whose messages then say where it is)."""
        return Layer(self.name, self.type, self.bottoms, self.tops, self.spec or Message(),
                     self.at.loc if self.at is not None else None)


def _number(value: object) -> float:
    return float(value)  # type: ignore[arg-type]  # the schema check has made it a number


def _param_specs(spec: Message, v1: bool, type_: str) -> list[ParamSpec]:
    if not v1:
        out = []
        for p in spec.all("param"):
            assert isinstance(p, Message)
            mode = p.get("share_mode")
            out.append(ParamSpec(str(p.get("name", "")), mode in ("PERMISSIVE", 1),
                                 _number(p.get("lr_mult")) if p.has("lr_mult") else None,
                                 _number(p.get("decay_mult")) if p.has("decay_mult") else None))
    else:  # UpgradeV1LayerParameter
        names, modes = spec.all("param"), spec.all("blob_share_mode")
        lrs, decays = spec.all("blobs_lr"), spec.all("weight_decay")
        out = [ParamSpec() for _ in range(max(len(names), len(modes), len(lrs), len(decays)))]
        for i, name in enumerate(names):
            out[i].name = str(name)
        for i, mode in enumerate(modes):
            out[i].permissive = mode in ("PERMISSIVE", 1)
        for i, lr in enumerate(lrs):
            out[i].lr_mult = _number(lr)
        for i, decay in enumerate(decays):
            out[i].decay_mult = _number(decay)
    if type_ == "BatchNorm" and len(out) == 3:  # UpgradeNetBatchNorm: the old definition's three specs
        for p in out:
            p.lr_mult = p.decay_mult = 0.0
    return out


def net_layers(graph: Graph) -> list[NetLayer]:
    """The layers ``caffe.Net(file, TEST)`` builds from ``graph``'s text (after the text check), in order."""
    net = graph.spec
    state = NetState.of(net, getattr(graph, "phase", "TEST"))
    v2 = [f for f in net.fields if f.name == "layer"]
    v1 = [f for f in net.fields if f.name == "layers"]
    if v2 and v1:
        raise PrototxtError("the file has both 'layer' and 'layers' fields (BVLC Caffe: \"Refusing to upgrade "
                            "inconsistent NetParameter input\")", v1[0].loc)
    layers: list[NetLayer] = []
    inputs = [f for f in net.fields if f.name == "input"]
    if inputs and (net.has("input_shape") or net.has("input_dim")):  # UpgradeNetInput: one Input layer, first
        layers.append(NetLayer("input", "Input", [], [str(f.value) for f in inputs], None, None))
    for f in v1 or v2:
        spec = f.value
        assert isinstance(spec, Message)
        name = str(spec.get("name", ""))
        type_field = spec.field("type")
        if f.name == "layers":
            raw = type_field.value if type_field is not None else "NONE"
            type_ = _v1_type_name(V1_LAYER_TYPES[raw] if isinstance(raw, int) and not isinstance(raw, Enum)
                                  else str(raw))
        else:
            type_ = str(type_field.value) if type_field is not None else ""
        if not state.includes(spec, f"layer {excerpt(name, NAME_CHARS)}: "):
            continue
        layer = NetLayer(name, type_, [str(v) for v in spec.all("bottom")], [str(v) for v in spec.all("top")],
                         spec, f, _param_specs(spec, f.name == "layers", type_),
                         [_number(v) for v in spec.all("loss_weight")], len(spec.all("propagate_down")))
        layers.append(layer)
    return layers


def _v1_type_name(v1: str) -> str:
    """UpgradeV1LayerType: the V2 name of a V1 enum value (NONE is the empty type)."""
    return "" if v1 == "NONE" else canonical_type(v1)


def _arity(what: str, count: int, low: int, high: int | None, type_: str, noun: str) -> str | None:
    """Layer::CheckBlobCounts' words for a wrong number of bottoms or tops, or None."""
    verb = "takes" if noun == "bottom" else "produces"
    suffix = "as input" if noun == "bottom" else "as output"
    if high is not None and low == high and count != low:
        return f"{type_} Layer {verb} {low} {noun} blob(s) {suffix}, got {count}"
    if count < low:
        return f"{type_} Layer {verb} at least {low} {noun} blob(s) {suffix}, got {count}"
    if high is not None and count > high:
        return f"{type_} Layer {verb} at most {high} {noun} blob(s) {suffix}, got {count}"
    return None


def check_net(graph: Graph, allow_unknown: bool = False) -> list[NetLayer]:
    """Raise at what BVLC Caffe refuses in ``graph``'s net before any shape is known; returns the layers."""
    check_message(graph.spec)
    with gc_paused():
        return _check_net(graph, allow_unknown)


def _check_net(graph: Graph, allow_unknown: bool) -> list[NetLayer]:
    layers = net_layers(graph)
    table = handlers()
    # InsertSplits: which producer each bottom reads, and how many readers (or losses) each producer has.
    last_top: dict[str, tuple[int, int]] = {}
    source: dict[tuple[int, int], tuple[int, int]] = {}
    readers: dict[tuple[int, int], int] = {}
    for i, lay in enumerate(layers):
        for j, bottom in enumerate(lay.bottoms):
            if bottom not in last_top:
                raise GraphError(f"{lay.where}: unknown bottom blob {excerpt(bottom, NAME_CHARS)} (bottom index {j}): "
                                 "no earlier layer or input produces it (BVLC Caffe: \"Unknown bottom blob\")")
            source[(i, j)] = last_top[bottom]
            readers[last_top[bottom]] = readers.get(last_top[bottom], 0) + 1
        for j, top in enumerate(lay.tops):
            last_top[top] = (i, j)
        for j, weight in enumerate(lay.loss_weights[:len(lay.tops)]):
            if weight:
                key = last_top[lay.tops[j]]
                readers[key] = readers.get(key, 0) + 1
    # Net::Init: in-place tops, duplicate producers, counts.
    produced: set[str] = set()
    for i, lay in enumerate(layers):
        if lay.propagate_down and lay.propagate_down != len(lay.bottoms):
            raise GraphError(f"{lay.where}: {lay.propagate_down} propagate_down values for {len(lay.bottoms)} bottoms "
                             "(BVLC Caffe: \"propagate_down param must be specified either 0 or bottom_size times\")")
        handler = table.get(lay.type)
        if handler is not None and lay.type not in BVLC_TYPES:
            raise GraphError(f"{lay.where}: {excerpt(lay.type, NAME_CHARS)} is a layer type of a Caffe fork, not of "
                             "BVLC Caffe (BVLC Caffe: \"Unknown layer type\"); the paper convention reads it")
        if handler is None and not allow_unknown:
            raise UnknownLayerError(f"{lay.where}: unknown layer type {excerpt(lay.type, NAME_CHARS)} (BVLC Caffe: "
                                    "\"Unknown layer type\"; use --allow-unknown to treat it as a zero-cost "
                                    "pass-through)")
        split = [readers.get(source[(i, j)], 0) > 1 for j in range(len(lay.bottoms))]
        for j, top in enumerate(lay.tops):
            in_place = j < len(lay.bottoms) and lay.bottoms[j] == top
            if in_place and split[j]:
                raise GraphError(f"{lay.where}: computes {excerpt(top, NAME_CHARS)} in place, but another layer also "
                                 "reads that blob, so Caffe feeds this layer a copy (a Split) and the top becomes a "
                                 "second producer (BVLC Caffe: \"Top blob produced by multiple sources\")")
            if not in_place and top in produced:
                raise GraphError(f"{lay.where}: top {excerpt(top, NAME_CHARS)} is already produced by an earlier layer "
                                 "or input, and only top i named as bottom i is in place (BVLC Caffe: \"Top blob "
                                 "produced by multiple sources\")")
            produced.add(top)
        if handler is None:
            continue
        bottoms, tops_allowed = handler.blob_counts(lay.as_layer())
        tops = len(lay.tops)
        if handler.auto_tops:
            tops = max(tops, tops_allowed[0])
        problem = (_arity("bottom", len(lay.bottoms), *bottoms, lay.type, "bottom")
                   or _arity("top", tops, *tops_allowed, lay.type, "top"))
        if problem is None and handler.equal_bottoms_tops and tops != len(lay.bottoms):
            problem = f"{lay.type} Layer produces one top blob as output for each bottom blob input"
        if problem is not None:
            raise GraphError(f"{lay.where}: {problem} (BVLC Caffe's CheckBlobCounts)")
        # InsertSplits moves a loss on a blob others read too onto the Split it inserts: this layer's loss
        # weights are cleared (a loss layer then gets its default 1 again)
        moved = any(weight and readers.get((i, _last_index(lay.tops, j)), 0) > 1
                    for j, weight in enumerate(lay.loss_weights[:len(lay.tops)]))
        weights = (0 if moved else len(lay.loss_weights)) or (1 if handler.auto_tops else 0)
        if weights and weights != tops:
            raise GraphError(f"{lay.where}: {weights} loss_weight value(s) for {tops} top(s)"
                             + (" (a loss layer has loss_weight 1 when none is given)" if not lay.loss_weights else "")
                             + " (BVLC Caffe: \"loss_weight must be unspecified or specified once per top blob\")")
    return layers


def _last_index(names: list[str], j: int) -> int:
    """The index of the last top named as top ``j`` (InsertSplits keys a blob by its last producer)."""
    return max(k for k, name in enumerate(names) if name == names[j])


def check_params(layers: Sequence[NetLayer], param_shapes: dict[int, list[Shape]]) -> None:
    """``Net::Init``'s parameter checks (after set-up); ``param_shapes`` maps the index of a layer in
    ``layers`` to the shapes of its parameter blobs (layers absent have none)."""
    owners: dict[str, tuple[NetLayer, Shape, ParamSpec]] = {}
    for i, lay in enumerate(layers):
        shapes = param_shapes.get(i, [])
        _check_fillers(lay, shapes)
        if lay.type == "BatchNorm":  # BatchNormLayer::LayerSetUp
            for j, spec in enumerate(lay.params[:len(shapes)]):
                lr = 1.0 if spec.lr_mult is None else spec.lr_mult
                if to_float32(lr) != 0:
                    raise GraphError(f"{lay.where}: param {j} has lr_mult {lr:g}; BatchNorm's statistics are not "
                                     "learnable: give lr_mult: 0 (BVLC Caffe: \"Cannot configure batch normalization "
                                     "statistics as layer parameters\")")
        if len(lay.params) > len(shapes):
            raise GraphError(f"{lay.where}: {len(lay.params)} param specs for {len(shapes)} parameter blob(s) (BVLC "
                             "Caffe: \"Too many params specified for layer\")")
        for j, shape in enumerate(shapes):
            spec = lay.params[j] if j < len(lay.params) else ParamSpec()
            if not spec.name:
                continue
            owner = owners.get(spec.name)
            if owner is None:
                owners[spec.name] = (lay, shape, ParamSpec(spec.name, spec.permissive, spec.lr_mult, spec.decay_mult))
                continue
            owner_layer, owner_shape, shared = owner
            name = excerpt(spec.name, NAME_CHARS)
            if spec.permissive:
                if math.prod(shape) != math.prod(owner_shape):
                    raise GraphError(f"{lay.where}: cannot share param {name} of {owner_layer.where}: {shape} and "
                                     f"{owner_shape} hold different counts (BVLC Caffe: \"count mismatch\")")
            elif tuple(shape) != tuple(owner_shape):
                raise GraphError(f"{lay.where}: cannot share param {name} of {owner_layer.where}: this layer's blob "
                                 f"{j} has shape {shape}, the owner's {owner_shape} (BVLC Caffe: \"shape mismatch\"; "
                                 "share_mode: PERMISSIVE compares counts only)")
            for attr in ("lr_mult", "decay_mult"):
                mine, theirs = getattr(spec, attr), getattr(shared, attr)
                if mine is None:
                    continue
                if theirs is not None and to_float32(mine) != to_float32(theirs):
                    raise GraphError(f"{lay.where}: shared param {name} has {attr} {mine:g}, another sharer {theirs:g} "
                                     f"(BVLC Caffe: \"Shared param has mismatched {attr}\")")
                setattr(shared, attr, mine)


def _fillers(lay: NetLayer, shapes: Sequence[Shape]) -> list[tuple[str, str]]:
    if lay.type == "Scale":  # the scale blob (one bottom only), then the bias (bias_term)
        return [("scale_param", "filler")] * (len(lay.bottoms) == 1) + [("scale_param", "bias_filler")]
    if lay.type in ("LSTM", "RNN"):  # weights are matrices, biases vectors
        return [("recurrent_param", "weight_filler" if len(s) == 2 else "bias_filler") for s in shapes]
    return _FILLERS.get(lay.type, [])


def _check_fillers(lay: NetLayer, shapes: Sequence[Shape]) -> None:
    """The fillers that initialise the layer's parameter blobs (filler.hpp): their type and blob checks."""
    if lay.spec is None:
        return
    layer = lay.as_layer()
    for (block, name), shape in zip(_fillers(lay, shapes), shapes, strict=False):
        fill(layer, layer.param(block).message(name), shape, f"parameter blob {tuple(shape)} ({block}.{name})")
