"""The graph IR: what a prototxt describes, in the form every consumer of the harness reads.

A :class:`Graph` is a list of :class:`Layer` in file order (Caffe's execution order) plus the
network inputs. Layer hyperparameters stay in the parsed text-format message (``Layer.spec``), read
through the per-type handlers in :mod:`harness.layers`, so a field the harness does not know
survives unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from harness.errors import GraphError
from harness.ir.textformat import NAME_CHARS, Location, Message, excerpt

Shape = tuple[int, ...]
# BVLC Caffe keeps blob sizes in an int: Blob::Reshape checks ``CHECK_LE(shape[i], INT_MAX / count_)``
# ("blob size exceeds INT_MAX", src/caffe/blob.cpp), so no blob may hold more elements, and no
# dimension or integer hyperparameter may exceed it either.
INT_MAX = 2**31 - 1


def check_blob_size(shape: Shape, what: str) -> None:
    """Raise GraphError when a blob of ``shape`` is one BVLC Caffe refuses to allocate."""
    elements = math.prod(shape)
    if elements > INT_MAX:
        raise GraphError(f"{what} would hold {elements:,} elements {shape}; BVLC Caffe refuses blobs over "
                         f"INT_MAX ({INT_MAX:,}) elements (blob.cpp)")


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: Shape
    loc: Location | None = None
    # The data layer (Input, Data, ...) whose top this is, and its type; None for a net-level ``input:``.
    layer: str | None = None
    layer_type: str | None = None
    # What of the shape the file does not say and was assumed: "channels" (a Data layer's, in its database)
    # and/or "size" (the image size, without crop_size or new_height/new_width). Cleared when replaced.
    assumed: tuple[str, ...] = ()
    # The file gives the shape whole (an input shape, DummyData's); False where it is put together from a data
    # layer's batch_size and crop_size (Netscope has no batch then: NaN).
    shape_given: bool = True


@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    spec: Message
    loc: Location | None = None

    def param(self, block: str) -> Message:
        """The ``*_param`` block of this layer (empty when absent, as protobuf defaults)."""
        return self.spec.message(block)

    @property
    def in_place(self) -> bool:
        return bool(self.tops) and self.tops == self.bottoms[: len(self.tops)]

    def where(self) -> str:
        """How messages name the layer: short and on one line, whatever its name."""
        return (f"layer {excerpt(self.name, NAME_CHARS)} ({excerpt(self.type, NAME_CHARS)[1:-1]})"
                + (f" at {self.loc}" if self.loc else ""))


@dataclass
class Graph:
    name: str
    source: str
    inputs: list[InputSpec]
    layers: list[Layer]
    warnings: list[str] = field(default_factory=list)
    # The net-level message (name, input fields, anything unknown), kept for faithful re-writing.
    spec: Message = field(default_factory=Message)
    # The phase whose layers the graph holds (Caffe's include/exclude rules): "TRAIN" or "TEST".
    phase: str = "TEST"
    # Where Netscope's reader would read the file otherwise (its simpler phase rule): said in the paper
    # convention only, which counts as Netscope does.
    netscope_warnings: list[str] = field(default_factory=list)
    # Why BVLC Caffe would refuse the file although the harness reads it (a file mixing V1 'layers' with V2
    # 'layer', which Netscope reads): the caffe convention refuses the graph with the first of these.
    bvlc_refusals: list[str] = field(default_factory=list)

    def layer(self, name: str) -> Layer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def with_inputs(self, batch: int | None = None, input_size: int | tuple[int, int] | None = None,
                    channels: int | None = None) -> Graph:
        """A copy with the batch of every input, and the spatial size and/or the channel count of every 4-D
        input, replaced."""
        if batch is None and input_size is None and channels is None:
            return self
        hw = (input_size, input_size) if isinstance(input_size, int) else input_size
        new_inputs = []
        for spec in self.inputs:
            shape = list(spec.shape)
            if batch is not None and shape:
                shape[0] = batch
            assumed = set(spec.assumed)
            if hw is not None and len(shape) == 4:
                shape[2], shape[3] = hw
                assumed.discard("size")
            if channels is not None and len(shape) == 4:
                shape[1] = channels
                assumed.discard("channels")
            new_inputs.append(replace(spec, shape=tuple(shape), assumed=tuple(a for a in spec.assumed if a in assumed)))
        return replace(self, inputs=new_inputs)

    def assumptions(self) -> list[str]:
        """What was assumed of the inputs' shapes and not replaced (by --channels, --input-size), one line each."""
        lines = []
        for spec in self.inputs:
            where = f"layer {excerpt(spec.layer or spec.name, NAME_CHARS)}" + (f" at {spec.loc}" if spec.loc else "")
            if "size" in spec.assumed:
                lines.append(f"{where}: image size unknown (no crop_size or new_height/new_width); assumed "
                             f"{spec.shape[2]}x{spec.shape[3]} (--input-size sets it)")
            if "channels" in spec.assumed:
                lines.append(f"{where}: the channel count is in the data source, not in the file; assumed "
                             f"{spec.shape[1]} (--channels sets it)")
        return lines

    def types(self) -> Iterable[str]:
        return (lay.type for lay in self.layers)
