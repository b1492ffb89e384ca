"""Build the graph IR from a parsed prototxt: V2 ``layer {}`` and V1 ``layers {}``, TEST phase.

Inputs may be declared by ``input:`` with ``input_dim``/``input_shape``, by an ``Input`` layer, or by
a data layer (Data, ImageData, MemoryData, DummyData), which becomes an input of the size it would
produce. Fields unknown to BVLC Caffe's ``caffe.proto`` are kept and reported as warnings.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import GraphError, PrototxtError
from harness.ir.graph import Graph, InputSpec, Layer, Shape
from harness.ir.textformat import Field, Message, parse_file, parse_text
from harness.layers import canonical_type
from harness.layers.base import handlers, int_field

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


def load_graph(source: str | Path, text: str | None = None, phase: str = "TEST") -> Graph:
    """Parse a prototxt file (or ``text``, reported as ``source``) into a :class:`Graph`."""
    msg = parse_text(text, str(source)) if text is not None else parse_file(source)
    return build_graph(msg, str(source), phase)


def _shape_of(msg: Message, where: str) -> Shape:
    dims = []
    for f in msg.fields:
        if f.name != "dim":
            continue
        if isinstance(f.value, bool) or not isinstance(f.value, int):
            raise PrototxtError(f"{where}: dim must be an integer, got {f.value!r}", f.loc)
        if f.value <= 0:
            raise PrototxtError(f"{where}: dimension {f.value} must be positive", f.loc)
        dims.append(f.value)
    return tuple(dims)


def _net_inputs(net: Message) -> list[InputSpec]:
    names = [f for f in net.fields if f.name == "input"]
    if not names:
        return []
    shapes = [_shape_of(s, "input_shape") for s in net.all("input_shape") if isinstance(s, Message)]
    dims = [f for f in net.fields if f.name == "input_dim"]
    if dims:
        values = []
        for f in dims:
            if isinstance(f.value, bool) or not isinstance(f.value, int) or f.value <= 0:
                raise PrototxtError(f"input_dim must be a positive integer, got {f.value!r}", f.loc)
            values.append(f.value)
        if len(values) != 4 * len(names):
            raise PrototxtError(f"{len(values)} input_dim values for {len(names)} inputs (4 each)", dims[0].loc)
        shapes = [tuple(values[4 * i:4 * i + 4]) for i in range(len(names))]
    if len(shapes) != len(names):
        raise PrototxtError(f"{len(names)} inputs but {len(shapes)} input shapes", names[0].loc)
    return [InputSpec(str(f.value), s, f.loc) for f, s in zip(names, shapes, strict=True)]


def _phase_ok(layer: Message, phase: str) -> bool:
    includes = [m for m in layer.all("include") if isinstance(m, Message)]
    excludes = [m for m in layer.all("exclude") if isinstance(m, Message)]
    if includes:
        return any(str(m.get("phase", phase)) == phase for m in includes)
    return not any(str(m.get("phase", "")) == phase for m in excludes)


def _data_inputs(lay: Layer, warnings: list[str]) -> list[InputSpec]:
    """The blobs a data layer would produce: ``data`` (N, C, H, W) and an optional label (N,)."""
    if lay.type == "Input":
        shapes = [_shape_of(m, lay.where()) for m in lay.param("input_param").all("shape")
                  if isinstance(m, Message)]
        if len(shapes) not in (1, len(lay.tops)):
            raise GraphError(f"{lay.where()}: {len(shapes)} input shapes for {len(lay.tops)} tops")
        return [InputSpec(top, shapes[min(i, len(shapes) - 1)], lay.loc) for i, top in enumerate(lay.tops)]
    block = lay.param(DATA_LAYERS[lay.type])
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
        channels = 1 if block.get("is_color") is False else 3
        data = (batch, channels, int(height), int(width))
    specs = [InputSpec(lay.tops[0], data, lay.loc)]
    specs += [InputSpec(top, (batch,), lay.loc) for top in lay.tops[1:]]
    return specs


def _strings(msg: Message, name: str, where: str) -> list[str]:
    out = []
    for f in msg.fields:
        if f.name == name:
            if isinstance(f.value, Message):
                raise PrototxtError(f"{where}: '{name}' must be a blob name, not a block", f.loc)
            out.append(str(f.value))
    return out


def _check_fields(lay: Layer, warnings: list[str]) -> None:
    for f in lay.spec.fields:
        if f.name not in LAYER_FIELDS and f.name not in FORK_LAYER_FIELDS:
            warnings.append(f"{f.loc}: {lay.where()}: unknown field '{f.name}' kept but ignored")
    handler = handlers().get(lay.type)
    if handler is None or handler.param_block is None:
        return
    block = lay.spec.get(handler.param_block)
    if isinstance(block, Message):
        for f in block.fields:
            if f.name not in handler.fields:
                warnings.append(f"{f.loc}: {lay.where()}: field '{handler.param_block}.{f.name}' is not in "
                                "BVLC Caffe's caffe.proto; kept but ignored (BVLC Caffe would reject the file)")


def build_graph(net: Message, source: str, phase: str = "TEST") -> Graph:
    warnings: list[str] = []
    for f in net.fields:
        if f.name not in NET_FIELDS:
            warnings.append(f"{f.loc}: unknown net-level field '{f.name}' kept but ignored "
                            "(BVLC Caffe would reject the file)")
    inputs = _net_inputs(net)
    layer_fields: list[Field] = [f for f in net.fields if f.name in ("layer", "layers")]
    if any(f.name == "layer" for f in layer_fields) and any(f.name == "layers" for f in layer_fields):
        raise PrototxtError("the file mixes V2 'layer' and V1 'layers' blocks", layer_fields[0].loc)
    layers: list[Layer] = []
    for f in layer_fields:
        if not isinstance(f.value, Message):
            raise PrototxtError(f"'{f.name}' must be a block", f.loc)
        spec = f.value
        if not _phase_ok(spec, phase):
            continue
        raw_type = spec.get("type")
        name = str(spec.get("name", f"<layer {len(layers) + 1}>"))
        if raw_type is None or isinstance(raw_type, Message):
            raise PrototxtError(f"layer '{name}' has no type", f.loc)
        where = f"layer '{name}'"
        lay = Layer(name=name, type=canonical_type(str(raw_type)), bottoms=_strings(spec, "bottom", where),
                    tops=_strings(spec, "top", where), spec=spec, loc=f.loc)
        layers.append(lay)

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
        if spec.name in seen:
            raise GraphError(f"{source}: input '{spec.name}' is declared twice")
        seen.add(spec.name)
        if any(d <= 0 for d in spec.shape):
            raise GraphError(f"{source}: input '{spec.name}' has a non-positive dimension {spec.shape}")
    _check_topology(source, inputs, graph_layers)
    name = net.get("name", Path(source).stem)
    return Graph(name=str(name), source=source, inputs=inputs, layers=graph_layers, warnings=warnings,
                 spec=net)


def _check_topology(source: str, inputs: list[InputSpec], layers: list[Layer]) -> None:
    """Caffe runs layers in file order: every bottom must exist before its consumer."""
    producer = {spec.name: "<input>" for spec in inputs}
    all_tops = {top: lay for lay in layers for top in lay.tops}
    for lay in layers:
        for bottom in lay.bottoms:
            if bottom in producer:
                continue
            later = all_tops.get(bottom)
            if later is not None:
                raise GraphError(f"{lay.where()}: bottom '{bottom}' is only produced later by "
                                 f"{later.where()} (a cycle, or layers out of order)")
            raise GraphError(f"{lay.where()}: bottom '{bottom}' is not produced by any layer or input")
        for i, top in enumerate(lay.tops):
            in_place = i < len(lay.bottoms) and lay.bottoms[i] == top
            if top in producer and not in_place:
                raise GraphError(f"{lay.where()}: top '{top}' is already produced by {producer[top]} "
                                 "(only in-place layers may reuse a blob name)")
            producer[top] = lay.where()
