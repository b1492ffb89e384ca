"""The per-layer-type handler table.

Every layer type the harness understands is one :class:`LayerHandler` subclass registered with
:func:`register`. A handler knows the type's hyperparameter block, its output shapes, its Caffe
parameter blobs, its parameter count under Netscope's rules, its MACs and its internal buffers; the
framework converters add their own per-type methods to the same classes. Adding a layer type means
adding one class.
"""

from __future__ import annotations

import enum
import math
from typing import ClassVar, TypeVar

from harness.errors import GraphError, UnknownLayerError
from harness.ir.graph import Layer, Shape
from harness.ir.textformat import Enum, Message


class Convention(str, enum.Enum):
    """How shapes and parameters are counted.

    PAPER: Netscope's rules, which reproduce the paper's Table II (pooling always ceil without
    Caffe's clipping, BatchNorm = 2*C params, Scale = 0 params).
    CAFFE: what BVLC Caffe builds (its pooling rule, its parameter blobs, in-place blobs shared).
    """

    PAPER = "paper"
    CAFFE = "caffe"


def count(shape: Shape) -> int:
    return math.prod(shape)


class LayerHandler:
    type: ClassVar[str]
    v1_names: ClassVar[tuple[str, ...]] = ()
    param_block: ClassVar[str | None] = None
    # Field names of ``param_block`` that BVLC's caffe.proto defines; others are warned about.
    fields: ClassVar[frozenset[str]] = frozenset()
    bottoms: ClassVar[tuple[int, int | None]] = (1, 1)
    tops: ClassVar[tuple[int, int | None]] = (1, 1)
    # Caffe's Forward shares the bottom's memory (ShareData): the top adds no activation memory.
    shares_bottom_memory: ClassVar[bool] = False

    def output_shapes(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        """Default: one top per bottom with the same shape (element-wise layers)."""
        return [ins[i if i < len(ins) else 0] for i in range(len(layer.tops))]

    def param_shapes(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        """The shapes of the parameter blobs BVLC Caffe allocates for this layer."""
        return []

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        """Parameters as Netscope counts them; the default agrees with Caffe's blobs."""
        return sum(count(s) for s in self.param_shapes(layer, ins))

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    def workspace(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        """Elements of internal buffers Caffe allocates in a forward pass (e.g. im2col)."""
        return 0


_REGISTRY: dict[str, LayerHandler] = {}
_V1_NAMES: dict[str, str] = {}
H = TypeVar("H", bound=type[LayerHandler])


def register(cls: H) -> H:
    _REGISTRY[cls.type] = cls()
    for v1 in cls.v1_names:
        _V1_NAMES[v1] = cls.type
    return cls


class PassThrough(LayerHandler):
    """What ``--allow-unknown`` uses for an unknown type: shape-preserving, no parameters, no MACs."""

    type = "<unknown>"
    bottoms = (0, None)
    tops = (0, None)


def handler_for(layer: Layer, allow_unknown: bool = False) -> LayerHandler:
    try:
        return _REGISTRY[layer.type]
    except KeyError:
        if allow_unknown:
            return PassThrough()
        raise UnknownLayerError(
            f"{layer.where()}: unknown layer type '{layer.type}' "
            "(use --allow-unknown to treat it as a zero-cost pass-through)") from None


def canonical_type(name: str) -> str:
    """V2 type name for a V1 enum (CONVOLUTION -> Convolution); other names unchanged."""
    return _V1_NAMES.get(name, name)


def known_types() -> list[str]:
    return sorted(_REGISTRY)


def handlers() -> dict[str, LayerHandler]:
    return dict(_REGISTRY)


# ---- reading hyperparameters -------------------------------------------------------------------

def int_field(layer: Layer, block: Message, name: str, default: int | None = None,
              minimum: int | None = 0) -> int:
    value = block.get(name, default)
    if value is None:
        raise GraphError(f"{layer.where()}: required field '{name}' is missing")
    if isinstance(value, bool) or not isinstance(value, int):
        f = block.field(name)
        raise GraphError(f"{layer.where()}: field '{name}' must be an integer, got {value!r}"
                         + (f" at {f.loc}" if f else ""))
    if minimum is not None and value < minimum:
        raise GraphError(f"{layer.where()}: field '{name}' must be >= {minimum}, got {value}")
    return value


def float_field(layer: Layer, block: Message, name: str, default: float) -> float:
    value = block.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraphError(f"{layer.where()}: field '{name}' must be a number, got {value!r}")
    return float(value)


def bool_field(layer: Layer, block: Message, name: str, default: bool) -> bool:
    value = block.get(name, default)
    if not isinstance(value, bool):
        raise GraphError(f"{layer.where()}: field '{name}' must be true or false, got {value!r}")
    return value


def enum_field(layer: Layer, block: Message, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = block.get(name, default)
    text = str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = allowed[value] if 0 <= value < len(allowed) else text
    if not isinstance(value, Enum | str | int) or text not in allowed:
        raise GraphError(f"{layer.where()}: field '{name}' must be one of {', '.join(allowed)}, got {value!r}")
    return text


def canonical_axis(layer: Layer, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise GraphError(f"{layer.where()}: axis {axis} is out of range for a {ndim}-D input")
    return axis % ndim


def int_list(layer: Layer, block: Message, name: str, minimum: int | None = 0) -> list[int]:
    """A repeated integer field (``slice_point``, ``offset``, ``dim``...), every value checked."""
    values = block.all(name)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise GraphError(f"{layer.where()}: field '{name}' must be an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise GraphError(f"{layer.where()}: field '{name}' must be >= {minimum}, got {v}")
    return [int(v) for v in values]


def spatial_triplet(layer: Layer, block: Message, name: str, default: int, ndim: int,
                    minimum: int = 0) -> list[int]:
    """Caffe's per-axis fields: ``name`` repeated (1 or ndim values) or ``name_h``/``name_w``."""
    h, w = block.get(f"{name}_h"), block.get(f"{name}_w")
    if h is not None or w is not None:
        if ndim != 2:
            raise GraphError(f"{layer.where()}: {name}_h/{name}_w are only for 2-D spatial inputs")
        return [int_field(layer, block, f"{name}_h", default, minimum),
                int_field(layer, block, f"{name}_w", default, minimum)]
    values = int_list(layer, block, name, minimum)
    if not values:
        return [default] * ndim
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise GraphError(f"{layer.where()}: '{name}' has {len(values)} values for {ndim} spatial axes")
    return values


def require(cond: bool, layer: Layer, message: str) -> None:
    if not cond:
        raise GraphError(f"{layer.where()}: {message}")

