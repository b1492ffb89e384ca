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
from harness.ir.graph import INT_MAX, Layer, Shape, check_blob_size
from harness.ir.textformat import NAME_CHARS, Enum, Message, describe, excerpt


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
    # The number of axes the first bottom (the data) may have, (least, most): what Caffe's layer checks
    # in its Reshape. Checked before any method of the handler sees the shapes, so no handler indexes an
    # axis that is not there.
    input_rank: ClassVar[tuple[int, int | None]] = (0, None)
    # Caffe's Forward shares the bottom's memory (ShareData): the top adds no activation memory.
    shares_bottom_memory: ClassVar[bool] = False
    # The bottoms Netscope takes where they differ from Caffe's (a loss layer without its label).
    paper_bottoms: ClassVar[tuple[int, int | None] | None] = None
    # A type of a Caffe fork, not of BVLC Caffe (named here, e.g. "the SSD fork (weiliu89/caffe)"): the caffe
    # convention refuses it, as BVLC Caffe does, unless unknown types are allowed; then it is counted as that
    # fork builds it.
    fork: ClassVar[str | None] = None
    # Fields of ``param_block`` that Caffe forks add and the harness reads (a fork's pooling ``ceil_mode``).
    fork_params: ClassVar[frozenset[str]] = frozenset()
    # Caffe's EqualNumBottomTopBlobs (one top per bottom) and AutoTopBlobs (a loss layer given fewer tops
    # than ``tops`` allows at least gets anonymous ones), checked by the caffe convention's net set-up.
    equal_bottoms_tops: ClassVar[bool] = False
    auto_tops: ClassVar[bool] = False
    # Said with every analysis of a layer of this type whose cost is not a meaningful deploy cost.
    cost_note: ClassVar[str | None] = None

    def blob_counts(self, layer: Layer) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        """(least, most) bottoms and tops; a type whose numbers depend on its parameters overrides it."""
        return self.bottoms, self.tops

    def output_shapes(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        """The tops' shapes, for bottoms checked first (rank, size) and tops checked after (size, as
        Caffe's Blob::Reshape does). Handlers define :meth:`compute_outputs`, not this."""
        lo, hi = self.input_rank
        if ins and not (lo <= len(ins[0]) and (hi is None or len(ins[0]) <= hi)):
            axes = str(lo) if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise GraphError(f"{layer.where()}: needs a bottom with {axes} axes, got "
                             f"{excerpt(layer.bottoms[0], NAME_CHARS)} of shape {ins[0]}")
        for bottom, shape in zip(layer.bottoms, ins, strict=False):  # an input resized by --batch/--input-size
            check_blob_size(shape, f"{layer.where()}: bottom {excerpt(bottom, NAME_CHARS)}")
        outs = self.compute_outputs(layer, ins, conv)
        for top, shape in zip(layer.tops, outs, strict=False):
            check_blob_size(shape, f"{layer.where()}: top {excerpt(top, NAME_CHARS)}")
        return outs

    def compute_outputs(self, layer: Layer, ins: list[Shape], conv: Convention) -> list[Shape]:
        """Default: one top per bottom with the same shape (element-wise layers)."""
        return [ins[i if i < len(ins) else 0] for i in range(len(layer.tops))]

    def param_shapes(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        """The shapes of the parameter blobs BVLC Caffe allocates for this layer (each within Caffe's blob
        size limit). Handlers define :meth:`compute_params`, not this."""
        shapes = self.compute_params(layer, ins)
        for i, shape in enumerate(shapes):
            check_blob_size(shape, f"{layer.where()}: parameter blob {i}")
        return shapes

    def compute_params(self, layer: Layer, ins: list[Shape]) -> list[Shape]:
        return []

    def paper_params(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        """Parameters as Netscope counts them; the default agrees with Caffe's blobs."""
        return sum(count(s) for s in self.param_shapes(layer, ins))

    def macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    def paper_macs(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int | float:
        """MACs as Netscope counts them; the default agrees with :meth:`macs`. Netscope computes in doubles,
        and one of its rules (Deconvolution's) can give a fraction: it is kept, as Netscope shows it."""
        return self.macs(layer, ins, outs)

    def paper_output(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> Shape:
        """The output of the layer's node in Netscope's graph (one per layer, whatever its tops): its first
        top, or for a layer without tops its first bottom (Netscope passes such a node's input through)."""
        return outs[0] if outs else ins[0]

    def paper_activations(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        """Activations as Netscope counts them: the elements of the node's output."""
        return count(self.paper_output(layer, ins, outs))

    def notes(self, layer: Layer, ins: list[Shape], outs: list[Shape], conv: Convention) -> list[str]:
        """What the user should know about how this layer was counted in ``conv`` (where the count departs
        from Netscope's, or honours a field of a Caffe fork); printed as warnings naming the layer."""
        return []

    def workspace(self, layer: Layer, ins: list[Shape], outs: list[Shape]) -> int:
        """Elements of internal buffers Caffe allocates in a forward pass (e.g. im2col)."""
        return 0

    def fork_fields(self, layer: Layer) -> list[str]:
        """The fields of Caffe forks (not in BVLC's caffe.proto) this layer sets and the caffe convention honours
        when it counts the forks' way, e.g. ``pooling_param.ceil_mode: false``."""
        return []

    def unsupported(self, layer: Layer) -> str | None:
        """Why this layer of the type cannot be counted (a Python layer of an unknown module), else None."""
        return None


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
    handler = _REGISTRY.get(layer.type)
    reason = f"unknown layer type {excerpt(layer.type, NAME_CHARS)}" if handler is None \
        else handler.unsupported(layer)
    if reason is None:
        return handler
    if allow_unknown:
        return PassThrough()
    raise UnknownLayerError(f"{layer.where()}: {reason} (use --allow-unknown to treat it as a zero-cost "
                            "pass-through)", reason)


def canonical_type(name: str) -> str:
    """V2 type name for a V1 enum (CONVOLUTION -> Convolution); other names unchanged."""
    return _V1_NAMES.get(name, name)


def known_types() -> list[str]:
    return sorted(_REGISTRY)


def handlers() -> dict[str, LayerHandler]:
    return dict(_REGISTRY)


# ---- reading hyperparameters -------------------------------------------------------------------

def _bad(layer: Layer, block: Message, name: str, expected: str, value: object) -> GraphError:
    f = block.field(name)
    return GraphError(f"{layer.where()}: field {excerpt(name)} must be {expected}, got {describe(value)}"
                      + (f" at {f.loc}" if f else ""))


def _integer(layer: Layer, block: Message, name: str, value: object, minimum: int | None) -> int:
    """An integer field as BVLC Caffe reads it: protobuf takes only an integer (no 1.0, no true), and
    Caffe keeps every one in an int, so values beyond INT_MAX are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(layer, block, name, "an integer", value)
    low = -INT_MAX - 1 if minimum is None else minimum
    if not low <= value <= INT_MAX:
        raise _bad(layer, block, name, f"between {low} and {INT_MAX} (BVLC Caffe keeps it in an int)", value)
    return value


def int_field(layer: Layer, block: Message, name: str, default: int | None = None,
              minimum: int | None = 0) -> int:
    value = block.get(name, default)
    if value is None:
        raise GraphError(f"{layer.where()}: required field {excerpt(name)} is missing")
    return _integer(layer, block, name, value, minimum)


def float_field(layer: Layer, block: Message, name: str, default: float) -> float:
    value = block.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(layer, block, name, "a number", value)
    return float(value)


def bool_field(layer: Layer, block: Message, name: str, default: bool) -> bool:
    """A bool: true/false (t, True, f, False) or 0/1, what protobuf's parser accepts."""
    value = block.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad(layer, block, name, "true or false (or 1 or 0)", value)


def given_false(layer: Layer, block: str, name: str) -> bool:
    """The bool field is written out as false. Netscope's reader turns the word into the string "false",
    which JavaScript takes as true: a bug the paper convention does not reproduce, and says so."""
    return layer.param(block).has(name) and not bool_field(layer, layer.param(block), name, True)


def netscope_reading_notes(layer: Layer, block: str, repeated: tuple[str, ...] = (),
                           bias: bool = False) -> list[str]:
    """Where Netscope reads a hyperparameter block otherwise than Caffe (paper-convention notes): a field given
    more than once is a list to Netscope's reader, which turns its formulas' results into NaN; and a
    ``bias_term`` given as the number 0 is a bias to Netscope, which tests for the word false."""
    p = layer.param(block)
    notes = [f"{block}.{name} is given {len(p.all(name))} times: Netscope's totals are NaN then; read as Caffe reads "
             "it" for name in repeated if len(p.all(name)) > 1]
    f = p.field("bias_term")
    if bias and f is not None and not isinstance(f.value, str) and f.value == 0:
        notes.append("Netscope counts a bias unless bias_term is the word false: bias_term: 0 counted without one, "
                     "as Caffe builds it")
    return notes


def enum_field(layer: Layer, block: Message, name: str, default: str, allowed: tuple[str, ...]) -> str:
    """An enum: a name of ``allowed`` unquoted, or its number (its index in ``allowed``, which lists the
    values in caffe.proto's numbering). A quoted name is a string, which protobuf's parser rejects."""
    f = block.field(name)
    if f is None:
        return default
    if isinstance(f.value, Enum) and f.value in allowed:
        return str(f.value)
    if isinstance(f.value, int) and not isinstance(f.value, bool) and 0 <= f.value < len(allowed):
        return allowed[f.value]
    hint = " (unquoted: BVLC Caffe's parser rejects a quoted enum)" if isinstance(f.value, str) else ""
    raise _bad(layer, block, name, f"one of {', '.join(allowed)}{hint}", f.value)


def canonical_axis(layer: Layer, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise GraphError(f"{layer.where()}: axis {axis} is out of range for a {ndim}-D input")
    return axis % ndim


def int_list(layer: Layer, block: Message, name: str, minimum: int | None = 0) -> list[int]:
    """A repeated integer field (``slice_point``, ``offset``, ``dim``...), every value checked."""
    return [_integer(layer, block, name, v, minimum) for v in block.all(name)]


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
        raise GraphError(f"{layer.where()}: {excerpt(name)} has {len(values)} values for {ndim} spatial axes")
    return values


def require(cond: bool, layer: Layer, message: str) -> None:
    if not cond:
        raise GraphError(f"{layer.where()}: {message}")

