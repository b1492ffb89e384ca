"""Build the graph IR from a parsed prototxt: V2 ``layer {}`` and V1 ``layers {}``, in one phase.

The phase (TRAIN or TEST) selects layers by Caffe's include/exclude rules; the caffe convention reads files
in TEST (what pycaffe and ``caffe time`` build for inference), the paper convention in TRAIN (what Netscope's
website parses). Inputs may be declared by ``input:`` with ``input_dim``/``input_shape``, by an ``Input``
layer, or by a data layer (Data, ImageData, WindowData, MemoryData, DummyData, HDF5Data), which becomes an
input of the size it would produce. Fields unknown to BVLC Caffe's ``caffe.proto`` are kept and reported as
warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import GraphError, HarnessError, PrototxtError
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
from harness.layers.base import bool_field, handlers, int_field, int_list

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

DATA_LAYERS = {"Data": "data_param", "ImageData": "image_data_param", "MemoryData": "memory_data_param",
               "DummyData": "dummy_data_param", "WindowData": "window_data_param", "HDF5Data": "hdf5_data_param",
               "DATA": "data_param", "IMAGE_DATA": "image_data_param", "MEMORY_DATA": "memory_data_param",
               "DUMMY_DATA": "dummy_data_param", "WINDOW_DATA": "window_data_param", "HDF5_DATA": "hdf5_data_param"}
_V2_DATA_TYPES = {"DATA": "Data", "IMAGE_DATA": "ImageData", "MEMORY_DATA": "MemoryData", "DUMMY_DATA": "DummyData",
                  "WINDOW_DATA": "WindowData", "HDF5_DATA": "HDF5Data"}
DEFAULT_DATA_SIZE = 224
DEFAULT_DATA_CHANNELS = 3  # colour images: what Netscope assumes too


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
    """Parse a prototxt file (or ``text``, reported as ``source``) into a :class:`Graph` of ``phase``'s layers
    ("TRAIN" or "TEST")."""
    if phase not in PHASES:
        raise HarnessError(f"phase must be TRAIN or TEST, got {phase!r}")
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
    # UpgradeNetInput: input_shape when given (else input_dim, 4 per input); Caffe reads as many as there
    # are inputs and ignores the rest
    shapes = [_shape_of(s, "input_shape") for s in net.all("input_shape") if isinstance(s, Message)]
    dims = [f for f in net.fields if f.name == "input_dim"]
    if dims and not shapes:
        values = [_int32(f, minimum=1) for f in dims]
        if len(values) < 4 * len(names):
            raise PrototxtError(f"{len(values)} input_dim values for {len(names)} inputs (4 each)", dims[0].loc)
        shapes = [tuple(values[4 * i:4 * i + 4]) for i in range(len(names))]
    if len(shapes) > len(names):
        shapes = shapes[:len(names)]
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
        for f in includes or excludes:
            if not isinstance(f.value, Message):
                raise PrototxtError(f"{where}{f.name} must be a {{ }} block, got {describe(f.value)}", f.loc)
        met = any(self.meets(f.value, f"{where}{f.name}.") for f in includes or excludes)  # type: ignore[arg-type]
        return met if includes else not met


def _data_inputs(lay: Layer, source: str) -> list[InputSpec]:
    """The blobs a data layer would produce, in the shapes Caffe gives them (and Netscope where it reads them).

    ``input_param { shape }`` is read on any data layer (Netscope reads it on Data too); otherwise the shape
    comes from the layer's own fields: DummyData's and MemoryData's are exact, HDF5Data's are in the HDF5
    files its ``source`` lists, and Data/ImageData/WindowData give the batch and (with ``crop_size`` or
    ``new_height``/``new_width``) the image size, while the channel count of Data and WindowData lives in the
    database or the images: 3 is assumed, and said (``--channels`` and ``--input-size`` replace assumptions).
    """
    shapes = [_shape_of(m, lay.where()) for m in lay.param("input_param").all("shape") if isinstance(m, Message)]
    if lay.type == "Input":
        if len(shapes) not in (1, len(lay.tops)):
            raise GraphError(f"{lay.where()}: {len(shapes)} input shapes for {len(lay.tops)} tops")
        return [InputSpec(top, shapes[min(i, len(shapes) - 1)], lay.loc, lay.name, lay.type)
                for i, top in enumerate(lay.tops)]
    if shapes and lay.tops:  # the data, and a label per image for the other tops (as the layer makes them)
        return [InputSpec(lay.tops[0], shapes[0], lay.loc, lay.name, lay.type),
                *(InputSpec(top, shapes[0][:1], lay.loc, lay.name, lay.type) for top in lay.tops[1:])]
    if not lay.tops:
        raise GraphError(f"{lay.where()}: a data layer without a top")
    kind = _V2_DATA_TYPES.get(lay.type, lay.type)
    block = lay.param(DATA_LAYERS[lay.type])
    if kind == "DummyData":
        return [InputSpec(top, shape, lay.loc, lay.name, lay.type)
                for top, shape in zip(lay.tops, _dummy_shapes(lay, block), strict=True)]
    if kind == "HDF5Data":
        return _hdf5_inputs(lay, block, source)
    batch = int_field(lay, block, "batch_size", 1, minimum=1)
    assumed: list[str] = []
    if kind == "MemoryData":
        data: Shape = (batch, *(int_field(lay, block, f, d, minimum=1)
                                for f, d in (("channels", 3), ("height", 1), ("width", 1))))
    else:
        crop = int_field(lay, lay.param("transform_param"), "crop_size", 0) or int_field(lay, block, "crop_size", 0)
        height = crop or int_field(lay, block, "new_height", 0)
        width = crop or int_field(lay, block, "new_width", 0)
        if not height or not width:
            assumed.append("size")
            height = width = DEFAULT_DATA_SIZE
        if kind == "ImageData":
            channels = 3 if bool_field(lay, block, "is_color", True) else 1
        else:
            assumed.append("channels")
            channels = DEFAULT_DATA_CHANNELS
        data = (batch, channels, int(height), int(width))
    return [InputSpec(lay.tops[0], data, lay.loc, lay.name, lay.type, tuple(assumed), kind == "MemoryData"),
            *(InputSpec(top, (batch,), lay.loc, lay.name, lay.type) for top in lay.tops[1:])]


def _dummy_shapes(lay: Layer, block: Message) -> list[Shape]:
    """DummyData's tops: one ``shape`` for all or one per top, or the legacy num/channels/height/width
    fields (each one value for all tops or one per top), as dummy_data_layer.cpp reads them."""
    n = len(lay.tops)
    shapes = [_shape_of(m, lay.where()) for m in block.all("shape") if isinstance(m, Message)]
    if shapes:
        if len(shapes) not in (1, n):
            raise GraphError(f"{lay.where()}: {len(shapes)} shapes for {n} tops (give 1 or one per top)")
        return [shapes[min(i, len(shapes) - 1)] for i in range(n)]
    legacy = [int_list(lay, block, f, minimum=1) for f in ("num", "channels", "height", "width")]
    if not any(legacy):
        raise GraphError(f"{lay.where()}: DummyData without a shape (shape, or num/channels/height/width)")
    for name, values in zip(("num", "channels", "height", "width"), legacy, strict=True):
        if len(values) not in (1, n):
            raise GraphError(f"{lay.where()}: {len(values)} values of {name} for {n} tops (give 1 or one per top)")
    return [tuple(values[min(i, len(values) - 1)] for values in legacy) for i in range(n)]


def _hdf5_inputs(lay: Layer, block: Message, source: str) -> list[InputSpec]:
    """HDF5Data's tops are datasets of the HDF5 files its ``source`` text file lists: (batch_size, *the
    dataset's shape without its first axis), read from the first file, as hdf5_data_layer.cpp does. The list
    is looked for where Caffe looks (the working directory), then beside the prototxt."""
    listed = block.get("source")
    if not isinstance(listed, str) or not listed:
        raise GraphError(f"{lay.where()}: HDF5Data without a source (the text file listing its HDF5 files)")
    batch = int_field(lay, block, "batch_size", 1, minimum=1)
    where = f"{lay.where()}: the shapes of an HDF5Data layer are in the HDF5 files {excerpt(listed)} lists"
    candidates = [Path(listed), Path(source).parent / listed]
    lst = next((c for c in candidates if c.is_file()), None)
    if lst is None:
        raise GraphError(f"{where}, which is not there (give the net an Input layer to analyse it without them)")
    try:
        files = [line.strip() for line in lst.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"{where}; {lst} cannot be read ({exc})") from None
    if not files:
        raise GraphError(f"{where}; {lst} lists none")
    first = next((p for p in (Path(files[0]), lst.parent / files[0]) if p.is_file()), Path(files[0]))
    try:
        import h5py
    except ImportError:
        raise GraphError(f"{where}; reading them needs h5py (pip install 'harness[hdf5]')") from None
    try:
        with h5py.File(first, "r") as h5:
            # A name may lead to a group (".", "/") rather than a dataset: only a dataset has a shape.
            shapes = {top: tuple(h5[top].shape) for top in lay.tops
                      if top in h5 and isinstance(h5[top], h5py.Dataset)}
    except OSError as exc:
        raise GraphError(f"{where}; {first} cannot be read ({exc})") from None
    # hdf5_data_layer.cpp loads each top with at least one axis, the samples.
    missing = [top for top in lay.tops if top not in shapes or not shapes[top]]
    if missing:
        raise GraphError(f"{where}; {first} has no dataset {excerpt(missing[0], NAME_CHARS)} with a first axis of "
                         "samples")
    return [InputSpec(top, (batch, *shapes[top][1:]), lay.loc, lay.name, lay.type) for top in lay.tops]


def _netscope_includes(layer: Message, phase: str) -> bool:
    """Netscope's rule (caffe.coffee, generateLayers): a layer is out only when its one ``include`` block names
    another phase (a number never matches its lower-cased phase name)."""
    includes = layer.all("include")
    if len(includes) != 1 or not isinstance(includes[0], Message) or not includes[0].has("phase"):
        return True
    value = includes[0].get("phase")
    return isinstance(value, str) and value.lower() == phase.lower()


def _check_fields(lay: Layer, warnings: list[str]) -> None:
    handler = handlers().get(lay.type)
    own_block = handler.param_block if handler is not None else None
    for f in lay.spec.fields:
        if f.name not in LAYER_FIELDS and f.name != own_block:
            warnings.append(f"{f.loc}: {lay.where()}: unknown field {excerpt(f.name)} kept but ignored")
    if handler is None or handler.param_block is None:
        return
    block = lay.spec.get(handler.param_block)
    if isinstance(block, Message):
        for f in block.fields:
            name = excerpt(f"{handler.param_block}.{f.name}", NAME_CHARS)
            if f.name in handler.fork_params:
                warnings.append(f"{f.loc}: {lay.where()}: field {name} is a Caffe fork's, not in BVLC Caffe's "
                                "caffe.proto (BVLC Caffe would reject the file)")
            elif f.name not in handler.fields:
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
    refusals: list[str] = []
    netscope_warnings: list[str] = []
    if any(f.name == "layer" for f in layer_fields) and any(f.name == "layers" for f in layer_fields):
        # upgrade_proto.cpp: "Refusing to upgrade inconsistent NetParameter input; the definition includes
        # both 'layer' and 'layers' fields." Netscope reads such a file (its VGG-16 preset is one).
        where = f"{layer_fields[0].loc}: the file mixes V2 'layer' and V1 'layers' blocks"
        refusals.append(f"{where}, which BVLC Caffe refuses")
        warnings.append(f"{where}: read as Netscope reads it (BVLC Caffe refuses such a file)")
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
        included = state.includes(spec, where)
        if included != _netscope_includes(spec, phase):
            netscope_warnings.append(f"{f.loc}: {where}{'kept' if included else 'left out'} in the {phase} phase by "
                                     f"Caffe's include/exclude rules; Netscope, which reads one include {{ phase }} "
                                     f"only (no exclude, stage or level), would "
                                     f"{'leave it out' if included else 'keep it'}")
        if included:
            layers.append(Layer(name=name, type=_type_name(type_, where, type_field, warnings, refusals),
                                bottoms=bottoms, tops=tops, spec=spec, loc=f.loc))

    graph_layers: list[Layer] = []
    for lay in layers:
        if lay.type == "Input" or lay.type in DATA_LAYERS:
            inputs.extend(_data_inputs(lay, source))
            continue
        _check_fields(lay, warnings)
        graph_layers.append(lay)
    if not inputs:
        raise GraphError(f"{source}: the net has no input in the {phase} phase (no 'input'/'input_shape', Input "
                         "layer or data layer)")
    seen = set()
    for spec in inputs:
        what = f"{source}: input {excerpt(spec.name, NAME_CHARS)}"
        if spec.name in seen:
            raise GraphError(f"{what} is declared twice")
        seen.add(spec.name)
        if any(d <= 0 for d in spec.shape):
            raise GraphError(f"{what} has a non-positive dimension {spec.shape}")
        check_blob_size(spec.shape, what)
    _check_topology(source, inputs, graph_layers, warnings, refusals)
    name_field = net.field("name")
    name = _string(name_field) if name_field is not None else Path(source).stem
    return Graph(name=name, source=source, inputs=inputs, layers=graph_layers, warnings=warnings, spec=net,
                 phase=phase, netscope_warnings=netscope_warnings, bvlc_refusals=refusals)


def _type_name(type_: str, where: str, f: Field, warnings: list[str], refusals: list[str]) -> str:
    """The V2 type name the harness knows the layer by. Netscope compares type names lower-cased ("data",
    "relu"), BVLC Caffe exactly: a name known only in another case is read as Netscope reads it, and is one
    more reason for the caffe convention to refuse the file."""
    canonical = canonical_type(type_)
    known = {*handlers(), *DATA_LAYERS, "Input"}
    if canonical in known:
        return canonical
    caseless = {name.lower(): canonical_type(name) for name in known}
    match = caseless.get(type_.lower())
    if match is None:
        return canonical
    message = f"{f.loc}: {where}type {excerpt(type_, NAME_CHARS)} is {match!r} in BVLC Caffe, whose type names are " \
              "case-sensitive"
    warnings.append(f"{message}: read as {match!r}, as Netscope reads it (BVLC Caffe refuses it)")
    refusals.append(message)
    return match


def _v1_type(f: Field, where: str) -> str:
    """A V1 ``layers`` type is a LayerType enum: unquoted (CONVOLUTION) or its number; caffe.proto's
    parser rejects a quoted one."""
    if isinstance(f.value, Enum):
        return str(f.value)
    if isinstance(f.value, int) and not isinstance(f.value, bool) and f.value in V1_LAYER_TYPES:
        return V1_LAYER_TYPES[f.value]
    raise _caffe_rejects(f, where, "a V1 LayerType enum, unquoted (e.g. CONVOLUTION), or its number")


def _check_topology(source: str, inputs: list[InputSpec], layers: list[Layer], warnings: list[str],
                    refusals: list[str]) -> None:
    """Caffe runs layers in file order: every bottom must exist before its consumer.

    Netscope finds a bottom by the name of a *layer* (its graph's nodes are layers): a bottom that is no blob
    but names an earlier layer with tops is read as that layer's first top, with a warning, and is one more
    reason for the caffe convention to refuse the file (BVLC Caffe: "Unknown bottom blob")."""
    producer: dict[str, Layer | None] = {spec.name: None for spec in inputs}  # None: a network input
    all_tops = {top: lay for lay in layers for top in lay.tops}
    named: dict[str, Layer] = {}
    for lay in layers:
        for j, bottom in enumerate(lay.bottoms):
            if bottom in producer:
                continue
            if bottom in named and named[bottom].tops:
                message = (f"{lay.where()}: bottom {excerpt(bottom, NAME_CHARS)} is no blob but the name of "
                           f"{named[bottom].where()}")
                warnings.append(f"{message}: read as its top {excerpt(named[bottom].tops[0], NAME_CHARS)}, as "
                                "Netscope reads it (BVLC Caffe refuses it)")
                refusals.append(message)
                lay.bottoms[j] = named[bottom].tops[0]
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
        named.setdefault(lay.name, lay)
