"""Build the graph IR from a parsed prototxt: V2 ``layer {}`` and V1 ``layers {}``, TEST phase.

Inputs may be declared by ``input:`` with ``input_dim``/``input_shape``, by an ``Input`` layer, or by
a data layer (Data, ImageData, MemoryData, DummyData), which becomes an input of the size it would
produce. Fields unknown to BVLC Caffe's ``caffe.proto`` are kept and reported as warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import GraphError, PrototxtError
from harness.ir.graph import INT_MAX, Graph, InputSpec, Layer, Shape, check_blob_size
from harness.ir.textformat import (
    NAME_CHARS,
    Enum,
    Field,
    Message,
    describe,
    excerpt,
    gc_paused,
    parse_file,
    parse_text,
)
from harness.layers import canonical_type
from harness.layers.base import bool_field, handlers, int_field

NET_FIELDS = frozenset({"name", "input", "input_shape", "input_dim", "force_backward", "state", "debug_info",
                        "layer", "layers"})
LAYER_FIELDS = frozenset({
    "name", "type", "bottom", "top", "phase", "loss_weight", "param", "blobs", "propagate_down", "include",
    "exclude", "transform_param", "loss_param", "blob_share_mode", "blobs_lr", "weight_decay",
    "accuracy_param", "argmax_param", "batch_norm_param", "bias_param", "concat_param",
    "contrastive_loss_param", "convolution_param", "crop_param", "data_param", "dropout_param",
    "dummy_data_param", "eltwise_param", "elu_param", "embed_param", "exp_param", "flatten_param",
    "hdf5_data_param", "hdf5_output_param", "hinge_loss_param", "image_data_param", "infogain_loss_param",
    "inner_product_param", "input_param", "log_param", "lrn_param", "memory_data_param", "mvn_param",
    "parameter_param", "pooling_param", "power_param", "prelu_param", "python_param", "recurrent_param",
    "reduction_param", "relu_param", "reshape_param", "scale_param", "sigmoid_param", "softmax_param",
    "spp_param", "slice_param", "tanh_param", "threshold_param", "tile_param", "window_data_param"})
# Not in BVLC's caffe.proto, but in the SSD fork whose Normalize layer the analyzer supports.
FORK_LAYER_FIELDS = frozenset({"norm_param"})

DATA_LAYERS = {"Data": "data_param", "ImageData": "image_data_param", "MemoryData": "memory_data_param",
               "DummyData": "dummy_data_param", "WindowData": "window_data_param",
               "DATA": "data_param", "IMAGE_DATA": "image_data_param", "MEMORY_DATA": "memory_data_param",
               "DUMMY_DATA": "dummy_data_param", "WINDOW_DATA": "window_data_param"}
DEFAULT_DATA_SIZE = 224


# V1LayerParameter.LayerType by number (caffe.proto): a V1 file may give an enum by its number.
V1_LAYER_TYPES = {
    0: "NONE", 1: "ACCURACY", 2: "BNLL", 3: "CONCAT", 4: "CONVOLUTION", 5: "DATA", 6: "DROPOUT",
    7: "EUCLIDEAN_LOSS", 8: "FLATTEN", 9: "HDF5_DATA", 10: "HDF5_OUTPUT", 11: "IM2COL", 12: "IMAGE_DATA",
    13: "INFOGAIN_LOSS", 14: "INNER_PRODUCT", 15: "LRN", 16: "MULTINOMIAL_LOGISTIC_LOSS", 17: "POOLING",
    18: "RELU", 19: "SIGMOID", 20: "SOFTMAX", 21: "SOFTMAX_LOSS", 22: "SPLIT", 23: "TANH", 24: "WINDOW_DATA",
    25: "ELTWISE", 26: "POWER", 27: "SIGMOID_CROSS_ENTROPY_LOSS", 28: "HINGE_LOSS", 29: "MEMORY_DATA",
    30: "ARGMAX", 31: "THRESHOLD", 32: "DUMMY_DATA", 33: "SLICE", 34: "MVN", 35: "ABSVAL", 36: "SILENCE",
    37: "CONTRASTIVE_LOSS", 38: "EXP", 39: "DECONVOLUTION"}
PHASES = ("TRAIN", "TEST")  # caffe.proto: enum Phase { TRAIN = 0; TEST = 1; }
RULE_FIELDS = frozenset({"phase", "min_level", "max_level", "stage", "not_stage"})  # NetStateRule


def load_graph(source: str | Path, text: str | None = None, phase: str = "TEST") -> Graph:
    """Parse a prototxt file (or ``text``, reported as ``source``) into a :class:`Graph`."""
    msg = parse_text(text, str(source)) if text is not None else parse_file(source)
    return build_graph(msg, str(source), phase)


# ---- typed values: what protobuf's parser accepts for a field of each type (text_format.cc) ----------

def _caffe_rejects(f: Field, where: str, expected: str) -> PrototxtError:
    return PrototxtError(f"{where}{f.name} must be {expected}, got {describe(f.value)} "
                         "(BVLC Caffe's parser rejects it too)", f.loc)


def _string(f: Field, where: str = "") -> str:
    """A string field: only a quoted literal (``ConsumeString``); ``name: conv1`` or ``name { }`` is an error."""
    if isinstance(f.value, str) and not isinstance(f.value, Enum):
        return f.value
    raise _caffe_rejects(f, where, "a quoted string")


def _strings(msg: Message, name: str, where: str = "") -> list[str]:
    return [_string(f, where) for f in msg.fields if f.name == name]


def _int32(f: Field, where: str = "", minimum: int = -INT_MAX - 1) -> int:
    """An int32 field (``ConsumeSignedInteger`` with kint32max); booleans and floats are not integers."""
    if isinstance(f.value, bool) or not isinstance(f.value, int):
        raise _caffe_rejects(f, where, "an integer")
    if f.value < minimum:
        raise PrototxtError(f"{where}{f.name} must be {'positive' if minimum == 1 else f'>= {minimum}'}, got "
                            f"{f.value}", f.loc)
    if f.value > INT_MAX:
        raise PrototxtError(f"{where}{f.name} is {describe(f.value)}, beyond INT_MAX (BVLC Caffe rejects it too)",
                            f.loc)
    return f.value


def _phase(f: Field, where: str = "") -> str:
    """A Phase enum: TRAIN/TEST unquoted or its number 0/1 (``ConsumeFieldValue``, CPPTYPE_ENUM)."""
    value = f.value
    if isinstance(value, Enum) and value in PHASES:
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(PHASES):
        return PHASES[value]
    raise _caffe_rejects(f, where, "TRAIN or TEST (unquoted) or 0 or 1")


# ---- inputs -------------------------------------------------------------------------------------

def _shape_of(msg: Message, where: str) -> Shape:
    """A BlobShape's dims: int64 in caffe.proto, but Caffe's Blob keeps them in an int."""
    return tuple(_int32(f, f"{where}: ", minimum=1) for f in msg.fields if f.name == "dim")


def _net_inputs(net: Message) -> list[InputSpec]:
    names = [f for f in net.fields if f.name == "input"]
    if not names:
        return []
    shapes = [_shape_of(s, "input_shape") for s in net.all("input_shape") if isinstance(s, Message)]
    dims = [f for f in net.fields if f.name == "input_dim"]
    if dims:
        values = [_int32(f, minimum=1) for f in dims]
        if len(values) != 4 * len(names):
            raise PrototxtError(f"{len(values)} input_dim values for {len(names)} inputs (4 each)", dims[0].loc)
        shapes = [tuple(values[4 * i:4 * i + 4]) for i in range(len(names))]
    if len(shapes) != len(names):
        raise PrototxtError(f"{len(names)} inputs but {len(shapes)} input shapes", names[0].loc)
    return [InputSpec(_string(f), s, f.loc) for f, s in zip(names, shapes, strict=True)]


# ---- which layers the TEST net has: Caffe's NetStateRule ---------------------------------------------

@dataclass(frozen=True)
class NetState:
    """The state BVLC Caffe filters layers with when pycaffe (or ``caffe time``) builds a net from a file:
    the requested phase, level 0 and the stages of the file's own ``state`` block. ``Net(param_file,
    phase, level = 0, stages = NULL)`` sets phase and level over the file's (src/caffe/net.cpp)."""

    phase: str
    level: int = 0
    stages: frozenset[str] = frozenset()

    @classmethod
    def of(cls, net: Message, phase: str) -> NetState:
        state = net.message("state")
        for f in state.fields:
            if f.name == "phase":
                _phase(f, "state.")
            elif f.name == "level":
                _int32(f, "state.")
        return cls(phase, 0, frozenset(_strings(state, "stage", "state.")))

    def meets(self, rule: Message, where: str) -> bool:
        """Net::StateMeetsRule: the phase if given, min_level <= level <= max_level where given, every
        ``stage`` of the rule among the state's stages and no ``not_stage``."""
        ok = True
        for f in rule.fields:
            if f.name == "phase":
                ok &= _phase(f, where) == self.phase
            elif f.name == "min_level":
                ok &= self.level >= _int32(f, where)
            elif f.name == "max_level":
                ok &= self.level <= _int32(f, where)
            elif f.name == "stage":
                ok &= _string(f, where) in self.stages
            elif f.name == "not_stage":
                ok &= _string(f, where) not in self.stages
            else:
                raise PrototxtError(f"{where}unknown field {f.name!r} in a NetStateRule (it has "
                                    f"{', '.join(sorted(RULE_FIELDS))}; BVLC Caffe rejects others)", f.loc)
        return ok

    def includes(self, layer: Message, where: str) -> bool:
        """Net::FilterNet: with include rules a layer is in when it meets one of them; otherwise it is in
        unless it meets one of its exclude rules. Both kinds on one layer is an error."""
        includes = [f for f in layer.fields if f.name == "include"]
        excludes = [f for f in layer.fields if f.name == "exclude"]
        if includes and excludes:
            raise PrototxtError(f"{where}has both include and exclude rules (BVLC Caffe: \"Specify either include "
                                "rules or exclude rules; not both.\")", includes[0].loc)
        rules = [(f, layer.message(f.name)) for f in includes or excludes]
        met = any(self.meets(rule, f"{where}{f.name}.") for f, rule in rules)
        return met if includes else not met


def _data_inputs(lay: Layer, warnings: list[str]) -> list[InputSpec]:
    """The blobs a data layer would produce: ``data`` (N, C, H, W) and an optional label (N,)."""
    if lay.type == "Input":
        shapes = [_shape_of(m, lay.where()) for m in lay.param("input_param").all("shape")
                  if isinstance(m, Message)]
        if len(shapes) not in (1, len(lay.tops)):
            raise GraphError(f"{lay.where()}: {len(shapes)} input shapes for {len(lay.tops)} tops")
        return [InputSpec(top, shapes[min(i, len(shapes) - 1)], lay.loc) for i, top in enumerate(lay.tops)]
    block = lay.param(DATA_LAYERS[lay.type])
    if not lay.tops:
        raise GraphError(f"{lay.where()}: a data layer without a top")
    if lay.type in ("DummyData", "DUMMY_DATA"):
        shapes = [_shape_of(m, lay.where()) for m in block.all("shape") if isinstance(m, Message)]
        if not shapes:
            raise GraphError(f"{lay.where()}: DummyData without a shape")
        return [InputSpec(top, shapes[min(i, len(shapes) - 1)], lay.loc) for i, top in enumerate(lay.tops)]
    batch = int_field(lay, block, "batch_size", 1, minimum=1)
    if lay.type in ("MemoryData", "MEMORY_DATA"):
        data: Shape = (batch, *(int_field(lay, block, f, d, minimum=1)
                                for f, d in (("channels", 3), ("height", 1), ("width", 1))))
    else:
        crop = int_field(lay, lay.param("transform_param"), "crop_size", 0)
        height = crop or int_field(lay, block, "new_height", 0) or int_field(lay, block, "crop_size", 0)
        width = crop or int_field(lay, block, "new_width", 0) or int_field(lay, block, "crop_size", 0)
        if not height or not width:
            warnings.append(f"{lay.where()}: image size unknown (no crop_size or new_height/new_width); "
                            f"assumed {DEFAULT_DATA_SIZE}x{DEFAULT_DATA_SIZE}")
            height = width = DEFAULT_DATA_SIZE
        channels = 3 if bool_field(lay, block, "is_color", True) else 1
        data = (batch, channels, int(height), int(width))
    specs = [InputSpec(lay.tops[0], data, lay.loc)]
    specs += [InputSpec(top, (batch,), lay.loc) for top in lay.tops[1:]]
    return specs


def _check_fields(lay: Layer, warnings: list[str]) -> None:
    for f in lay.spec.fields:
        if f.name not in LAYER_FIELDS and f.name not in FORK_LAYER_FIELDS:
            warnings.append(f"{f.loc}: {lay.where()}: unknown field {excerpt(f.name)} kept but ignored")
    handler = handlers().get(lay.type)
    if handler is None or handler.param_block is None:
        return
    block = lay.spec.get(handler.param_block)
    if isinstance(block, Message):
        for f in block.fields:
            if f.name not in handler.fields:
                name = excerpt(f"{handler.param_block}.{f.name}", NAME_CHARS)
                warnings.append(f"{f.loc}: {lay.where()}: field {name} is not in BVLC Caffe's caffe.proto; "
                                "kept but ignored (BVLC Caffe would reject the file)")


def build_graph(net: Message, source: str, phase: str = "TEST") -> Graph:
    with gc_paused():  # as the reader: many objects, no cycles
        return _build_graph(net, source, phase)


def _build_graph(net: Message, source: str, phase: str) -> Graph:
    warnings: list[str] = []
    for f in net.fields:
        if f.name not in NET_FIELDS:
            warnings.append(f"{f.loc}: unknown net-level field {excerpt(f.name)} kept but ignored "
                            "(BVLC Caffe would reject the file)")
    inputs = _net_inputs(net)
    state = NetState.of(net, phase)
    layer_fields: list[Field] = [f for f in net.fields if f.name in ("layer", "layers")]
    if any(f.name == "layer" for f in layer_fields) and any(f.name == "layers" for f in layer_fields):
        raise PrototxtError("the file mixes V2 'layer' and V1 'layers' blocks", layer_fields[0].loc)
    layers: list[Layer] = []
    for f in layer_fields:
        if not isinstance(f.value, Message):
            raise PrototxtError(f"'{f.name}' must be a {{ }} block, got {describe(f.value)}", f.loc)
        spec = f.value
        name_field = spec.field("name")
        name = _string(name_field) if name_field is not None else f"<layer {len(layers) + 1}>"
        where = f"layer {excerpt(name, NAME_CHARS)}: "
        type_field = spec.field("type")
        if type_field is None:
            raise PrototxtError(f"{where}no type", f.loc)
        # Checked before the rules: Caffe's parser reads (and rejects) the layers a phase leaves out too.
        type_ = _v1_type(type_field, where) if f.name == "layers" else _string(type_field, where)
        bottoms, tops = _strings(spec, "bottom", where), _strings(spec, "top", where)
        if state.includes(spec, where):
            layers.append(Layer(name=name, type=canonical_type(type_), bottoms=bottoms, tops=tops, spec=spec,
                                loc=f.loc))

    graph_layers: list[Layer] = []
    for lay in layers:
        if lay.type == "Input" or lay.type in DATA_LAYERS:
            inputs.extend(_data_inputs(lay, warnings))
            continue
        _check_fields(lay, warnings)
        graph_layers.append(lay)
    if not inputs:
        raise GraphError(f"{source}: the net has no input (no 'input'/'input_shape', Input layer or data layer)")
    seen = set()
    for spec in inputs:
        what = f"{source}: input {excerpt(spec.name, NAME_CHARS)}"
        if spec.name in seen:
            raise GraphError(f"{what} is declared twice")
        seen.add(spec.name)
        if any(d <= 0 for d in spec.shape):
            raise GraphError(f"{what} has a non-positive dimension {spec.shape}")
        check_blob_size(spec.shape, what)
    _check_topology(source, inputs, graph_layers)
    name_field = net.field("name")
    name = _string(name_field) if name_field is not None else Path(source).stem
    return Graph(name=name, source=source, inputs=inputs, layers=graph_layers, warnings=warnings, spec=net)


def _v1_type(f: Field, where: str) -> str:
    """A V1 ``layers`` type is a LayerType enum: unquoted (CONVOLUTION) or its number; caffe.proto's
    parser rejects a quoted one."""
    if isinstance(f.value, Enum):
        return str(f.value)
    if isinstance(f.value, int) and not isinstance(f.value, bool) and f.value in V1_LAYER_TYPES:
        return V1_LAYER_TYPES[f.value]
    raise _caffe_rejects(f, where, "a V1 LayerType enum, unquoted (e.g. CONVOLUTION), or its number")


def _check_topology(source: str, inputs: list[InputSpec], layers: list[Layer]) -> None:
    """Caffe runs layers in file order: every bottom must exist before its consumer."""
    producer: dict[str, Layer | None] = {spec.name: None for spec in inputs}  # None: a network input
    all_tops = {top: lay for lay in layers for top in lay.tops}
    for lay in layers:
        for bottom in lay.bottoms:
            if bottom in producer:
                continue
            later = all_tops.get(bottom)
            if later is not None:
                raise GraphError(f"{lay.where()}: bottom {excerpt(bottom, NAME_CHARS)} is only produced later by "
                                 f"{later.where()} (a cycle, or layers out of order)")
            raise GraphError(f"{lay.where()}: bottom {excerpt(bottom, NAME_CHARS)} is not produced by any layer "
                             "or input")
        for i, top in enumerate(lay.tops):
            in_place = i < len(lay.bottoms) and lay.bottoms[i] == top
            if top in producer and not in_place:
                earlier = producer[top]
                raise GraphError(f"{lay.where()}: top {excerpt(top, NAME_CHARS)} is already produced by "
                                 f"{earlier.where() if earlier else '<input>'} (only in-place layers may reuse a "
                                 "blob name)")
            producer[top] = lay
