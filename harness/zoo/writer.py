"""A small builder for Caffe text-format deploy prototxts.

Each zoo family (``harness.zoo.alexnet`` ...) describes its network with these calls, in Caffe's
execution order; :meth:`NetWriter.text` renders the ``NetParameter`` in the usual prototxt layout.
A ``*_param`` block is given as keyword arguments in the order they are written; nested blocks are
dicts, repeated fields lists, enum values :class:`~harness.ir.textformat.Enum` (written unquoted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

from harness.ir.textformat import Enum

# A field value; recursive, so spelled as a string (annotations only).
Value: TypeAlias = "bool | int | float | str | Mapping[str, Value] | Sequence[Value]"
Block = Mapping[str, Value]
InputStyle = Literal["layer", "input_shape", "input_dim"]

MAX, AVE, SUM, CAFFE = Enum("MAX"), Enum("AVE"), Enum("SUM"), Enum("CAFFE")
INDENT = "  "


def _scalar(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _fields(block: Block, depth: int) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for key, value in block.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, Mapping):
                lines += [f"{pad}{key} {{", *_fields(item, depth + 1), f"{pad}}}"]
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def _shape(dims: Sequence[int]) -> dict[str, list[int]]:
    return {"dim": list(dims)}


class NetWriter:
    """Collects layers in order and renders them; helpers return the name of the blob they produce."""

    def __init__(self, name: str, header: Sequence[str] = ()) -> None:
        self._lines = [f"# {line}".rstrip() for line in header]
        self._lines.append(f"name: {_scalar(name)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"

    def input(self, top: str, shape: Sequence[int], style: InputStyle = "layer") -> str:
        """Declare a network input: an ``Input`` layer, or net-level ``input`` + ``input_shape``/``input_dim``."""
        if style == "layer":
            self.layer(top, "Input", [], [top], input_param={"shape": _shape(shape)})
        elif style == "input_shape":
            self._lines += _fields({"input": top, "input_shape": _shape(shape)}, 0)
        else:
            self._lines += _fields({"input": top, "input_dim": list(shape)}, 0)
        return top

    def layer(self, name: str, type_: str, bottoms: Sequence[str], tops: Sequence[str], **blocks: Block) -> None:
        body: dict[str, Value] = {"name": name, "type": type_, "bottom": list(bottoms), "top": list(tops), **blocks}
        self._lines += ["layer {", *_fields(body, 1), "}"]

    # One helper per layer type the zoo uses. ``top`` defaults to the layer name, as in most Caffe models.
    def conv(self, name: str, bottom: str, top: str | None = None, **convolution_param: Value) -> str:
        top = top or name
        self.layer(name, "Convolution", [bottom], [top], convolution_param=convolution_param)
        return top

    def inner_product(self, name: str, bottom: str, top: str | None = None, **inner_product_param: Value) -> str:
        top = top or name
        self.layer(name, "InnerProduct", [bottom], [top], inner_product_param=inner_product_param)
        return top

    def pool(self, name: str, bottom: str, top: str | None = None, **pooling_param: Value) -> str:
        top = top or name
        self.layer(name, "Pooling", [bottom], [top], pooling_param=pooling_param)
        return top

    def lrn(self, name: str, bottom: str, top: str | None = None, **lrn_param: Value) -> str:
        top = top or name
        self.layer(name, "LRN", [bottom], [top], lrn_param=lrn_param)
        return top

    def batch_norm(self, name: str, bottom: str, top: str | None = None, **batch_norm_param: Value) -> str:
        top = top or bottom
        blocks = {"batch_norm_param": batch_norm_param} if batch_norm_param else {}
        self.layer(name, "BatchNorm", [bottom], [top], **blocks)
        return top

    def scale(self, name: str, bottom: str, top: str | None = None, **scale_param: Value) -> str:
        top = top or bottom
        self.layer(name, "Scale", [bottom], [top], scale_param=scale_param)
        return top

    def relu(self, name: str, blob: str) -> str:
        """In place, as every network in the zoo uses it."""
        self.layer(name, "ReLU", [blob], [blob])
        return blob

    def dropout(self, name: str, blob: str, ratio: float) -> str:
        self.layer(name, "Dropout", [blob], [blob], dropout_param={"dropout_ratio": ratio})
        return blob

    def concat(self, name: str, bottoms: Sequence[str], top: str | None = None) -> str:
        top = top or name
        self.layer(name, "Concat", bottoms, [top])
        return top

    def eltwise(self, name: str, bottoms: Sequence[str], top: str | None = None, **eltwise_param: Value) -> str:
        top = top or name
        self.layer(name, "Eltwise", bottoms, [top], eltwise_param=eltwise_param)
        return top

    def softmax(self, name: str, bottom: str, top: str | None = None) -> str:
        top = top or name
        self.layer(name, "Softmax", [bottom], [top])
        return top
