"""Binary ``.caffemodel`` files (a serialized ``NetParameter``) without a compiled ``caffe.proto``.

Only the fields that carry weights are read and written, by hand, in the protobuf wire format; their
numbers and types are those of BVLC Caffe's ``caffe.proto`` (:mod:`harness.ir.caffe_schema`):

- NetParameter: ``name`` = 1, ``layer`` = 100 (LayerParameter), legacy ``layers`` = 2 (V1LayerParameter)
- LayerParameter: ``name`` = 1, ``blobs`` = 7 (BlobProto); V1LayerParameter: ``name`` = 4, ``blobs`` = 6
- BlobProto: ``shape`` = 7 (BlobShape: ``dim`` = 1, repeated int64), ``data`` = 5 and ``diff`` = 6
  (repeated float), ``double_data`` = 8 and ``double_diff`` = 9 (repeated double), legacy ``num``,
  ``channels``, ``height``, ``width`` = 1..4 (int32, default 0)

Reading follows protobuf and Caffe: every other field is skipped (a full trained model reads fine), as is
a known field sent with a wire type its type does not have (protobuf keeps it as an unknown field); a
repeated number may come packed or not; a blob keeps what it states: an explicit shape as given (an empty
one is a 0-axis blob), legacy dimensions as 4 axes with caffe.proto's default 0 for those not given.
:func:`match_blobs` (behind :func:`harness.convert.weights.check_weights`) then does what Caffe's
``Net::CopyTrainedLayersFrom`` does. Writing produces what Caffe's ``Net::ToProto`` would for these fields,
except that a 0-axis blob (a channel-shared PReLU's slope) is written with legacy dimensions 1x1x1x1,
which Caffe matches to the 0-axis blob and OpenCV, which cannot hold a 0-axis blob, reads as one value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.convert.cache import write_atomic
from harness.errors import GraphError, HarnessError
from harness.files import read_regular_file
from harness.ir.graph import INT_MAX, Shape

# Wire types.
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class CaffemodelError(HarnessError):
    """A file that is not a readable .caffemodel (the message names the file and what is wrong)."""


# ---- writing ------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, LENGTH) + _varint(len(payload)) + payload


def _blob(array: np.ndarray) -> bytes:
    data = _length_delimited(5, np.require(array, "<f4", "C").tobytes())
    if array.ndim == 0:  # legacy num/channels/height/width 1: Blob::ShapeEquals matches them to ()
        return b"".join(_key(field, VARINT) + _varint(1) for field in (1, 2, 3, 4)) + data
    dims = b"".join(_varint(int(d)) for d in array.shape)
    return _length_delimited(7, _length_delimited(1, dims)) + data  # BlobShape.dim, packed


def _layer(name: str, type_: str, blobs: list[np.ndarray]) -> bytes:
    body = _length_delimited(1, name.encode()) + _length_delimited(2, type_.encode())
    return body + b"".join(_length_delimited(7, _blob(b)) for b in blobs)


def write_caffemodel(path: str | Path, weights: dict[str, list[np.ndarray]], types: dict[str, str],
                     net_name: str = "") -> Path:
    """Write ``weights`` (layer name -> blobs) as a V2 NetParameter; ``types`` gives each layer's type."""
    missing = sorted(set(weights) - set(types))
    if missing:
        raise HarnessError(f"write_caffemodel: no layer type given for {', '.join(missing)}")
    parts = [_length_delimited(1, net_name.encode())] if net_name else []
    parts += [_length_delimited(100, _layer(name, types[name], blobs)) for name, blobs in weights.items()]
    path = Path(path)
    data = b"".join(parts)
    write_atomic(path, lambda tmp: tmp.write_bytes(data))  # never a truncated model where a reader could find it
    return path


# ---- reading ------------------------------------------------------------------------------------

START_GROUP, END_GROUP = 3, 4


class _Reader:
    """Protobuf wire format over ``data``; ``base`` is where ``data`` starts in the file, so that every
    error names the file offset of the damage."""

    def __init__(self, data: memoryview, where: str, base: int = 0) -> None:
        self.data, self.pos, self.where, self.base = data, 0, where, base

    def error(self, what: str, at: int | None = None) -> CaffemodelError:
        return CaffemodelError(f"{self.where}: {what} at byte {self.base + (self.pos if at is None else at)} "
                               "(a damaged or truncated .caffemodel?)")

    def varint(self) -> int:
        result = shift = 0
        start = self.pos
        while True:
            if self.pos >= len(self.data):
                raise self.error("truncated varint", start)
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result & 0xFFFFFFFFFFFFFFFF
            shift += 7
            if shift > 63:
                raise self.error("malformed varint (over 10 bytes)", start)

    def take(self, n: int) -> tuple[int, memoryview]:
        """(file offset, the next ``n`` bytes)."""
        if self.pos + n > len(self.data):
            raise self.error(f"a field of {n} bytes runs past the end of its message ({len(self.data) - self.pos} "
                             "bytes left)")
        at = self.base + self.pos
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return at, chunk

    def fields(self) -> Iterator[tuple[int, int, int | _Chunk]]:
        """(field number, wire type, value): an int for varint, a :class:`_Chunk` for the others; groups
        (wire types 3 and 4, which caffe.proto does not use) are skipped whole, as protobuf skips them."""
        while self.pos < len(self.data):
            start = self.pos
            key = self.varint()
            field, wire = key >> 3, key & 7
            if field == 0 or field >= 1 << 29:
                raise self.error(f"field number {field}", start)
            if wire == VARINT:
                yield field, wire, self.varint()
            elif wire in (LENGTH, FIXED32, FIXED64):
                size = self.varint() if wire == LENGTH else (4 if wire == FIXED32 else 8)
                at, chunk = self.take(size)
                yield field, wire, _Chunk(chunk, at)
            elif wire == START_GROUP:
                self._skip_group(field, start)
            else:
                raise self.error(f"wire type {wire} (field {field}), which protobuf does not have here", start)

    def _skip_group(self, field: int, start: int) -> None:
        open_groups = [field]
        while open_groups:
            if self.pos >= len(self.data):
                raise self.error(f"group {field} is not closed", start)
            at = self.pos
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise self.error("field number 0", at)
            if wire == VARINT:
                self.varint()
            elif wire in (LENGTH, FIXED32, FIXED64):
                self.take(self.varint() if wire == LENGTH else (4 if wire == FIXED32 else 8))
            elif wire == START_GROUP:
                open_groups.append(number)
            elif wire == END_GROUP and number == open_groups[-1]:
                open_groups.pop()
            else:
                raise self.error(f"wire type {wire} (field {number}) inside group {open_groups[-1]}", at)


class _Chunk:
    """Bytes of one field and their offset in the file."""

    __slots__ = ("at", "data")

    def __init__(self, data: memoryview, at: int) -> None:
        self.data, self.at = data, at

    def reader(self, where: str) -> _Reader:
        return _Reader(self.data, where, self.at)


def _int32(value: int) -> int:
    """A varint read into an int32 field (protobuf keeps the low 32 bits)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value > INT_MAX else value


def _numbers(value: int | _Chunk, wire: int, dtype: str, what: str, where: str) -> np.ndarray | None:
    """One occurrence of a repeated float/double field: packed (wire type 2) or a single value (its own
    wire type); None for any other wire type (protobuf keeps that as an unknown field)."""
    size = np.dtype(dtype).itemsize
    if not isinstance(value, _Chunk) or wire not in (LENGTH, FIXED32 if size == 4 else FIXED64):
        return None
    if len(value.data) % size:
        raise CaffemodelError(f"{where}: {what} at byte {value.at} holds {len(value.data)} bytes, not a whole "
                              f"number of {size}-byte values (a damaged .caffemodel?)")
    return np.frombuffer(value.data, dtype=dtype)


def _dims(value: int | _Chunk, wire: int, where: str) -> list[int]:
    """BlobShape.dim (repeated int64, packed or not); Caffe keeps each in an int."""
    if wire == VARINT:
        return [_int32(value)]  # type: ignore[arg-type]
    if wire != LENGTH:
        return []
    r = value.reader(where)  # type: ignore[union-attr]
    out = []
    while r.pos < len(r.data):
        out.append(_int32(r.varint()))
    return out


@dataclass(frozen=True)
class StoredBlob:
    """One BlobProto as stored: its explicit shape (None when the blob gives none), its legacy
    (num, channels, height, width) when it gives any of them, its values and its number of diff values."""

    shape: tuple[int, ...] | None
    legacy: tuple[int, int, int, int] | None
    data: np.ndarray
    diff: int
    at: int

    @property
    def stated_shape(self) -> tuple[int, ...]:
        """The shape Blob::FromProto(reshape) gives it: legacy 4 axes if any is given, else the explicit
        shape (a blob with neither has 0 axes)."""
        return self.legacy if self.legacy is not None else (self.shape or ())

    def fits(self, target: Shape) -> bool:
        """Blob::ShapeEquals: legacy dimensions compare with the target's last 4 axes padded with 1s (a
        target of at most 4 axes); an explicit shape compares exactly."""
        if self.legacy is not None:
            return len(target) <= 4 and self.legacy == (1,) * (4 - len(target)) + tuple(target)
        return tuple(self.shape or ()) == tuple(target)


def _read_blob(chunk: _Chunk, where: str) -> StoredBlob:
    shape: list[int] | None = None
    legacy: dict[int, int] = {}
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    diff = double_diff = 0
    for field, wire, value in chunk.reader(where).fields():
        if field == 7 and wire == LENGTH:  # BlobShape: the last one given wins, its dims merged (protobuf)
            shape = shape or []
            for f, w, v in value.reader(where).fields():  # type: ignore[union-attr]
                if f == 1:
                    shape.extend(_dims(v, w, where))
        elif field in (5, 6, 8, 9):
            numbers = _numbers(value, wire, "<f4" if field in (5, 6) else "<f8",
                               {5: "BlobProto.data", 6: "BlobProto.diff", 8: "BlobProto.double_data",
                                9: "BlobProto.double_diff"}[field], where)
            if numbers is None:
                continue
            if field == 5:
                floats.append(numbers)
            elif field == 8:
                doubles.append(numbers)
            elif field == 6:
                diff += numbers.size
            else:
                double_diff += numbers.size
        elif field in (1, 2, 3, 4) and wire == VARINT:
            legacy[field] = _int32(value)  # type: ignore[arg-type]
    # Blob::FromProto: double_data when there is any, else data (the same for the diffs)
    data = (np.concatenate(doubles).astype(np.float32) if doubles
            else np.concatenate(floats).astype(np.float32, copy=False) if floats else np.zeros(0, np.float32))
    stated = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4)) if legacy else None
    return StoredBlob(tuple(shape) if shape is not None else None, stated, data,  # type: ignore[arg-type]
                      double_diff or diff, chunk.at)


@dataclass(frozen=True)
class SourceLayer:
    """A layer of a .caffemodel: its name and its blobs (perhaps none), in the file's order."""

    name: str
    blobs: list[StoredBlob]
    at: int


def _read_layer(chunk: _Chunk, name_field: int, blobs_field: int, where: str) -> SourceLayer:
    name = ""
    blobs = []
    for field, wire, value in chunk.reader(where).fields():
        if field == name_field and wire == LENGTH:
            name = bytes(value.data).decode("utf-8", errors="backslashreplace")  # type: ignore[union-attr]
        elif field == blobs_field and wire == LENGTH:
            shown = name if len(name) <= 60 else name[:60] + "..."
            blobs.append(_read_blob(value, f"{where}: layer {shown!r} blob {len(blobs)}"))  # type: ignore[arg-type]
    return SourceLayer(name, blobs, chunk.at)


def read_source_layers(path: str | Path) -> list[SourceLayer]:
    """Every layer of a binary .caffemodel (V2 ``layer`` or V1 ``layers``), with or without blobs, in order.

    A file that protobuf cannot parse (a flipped byte, a truncation) is a :class:`CaffemodelError` naming
    the file, the byte offset and the field.
    """
    try:
        data = read_regular_file(path, "the caffemodel")  # a FIFO would block the read forever
    except HarnessError as exc:
        raise CaffemodelError(str(exc)) from None
    return parse_source_layers(data, str(path))


def parse_source_layers(data: bytes, where: str) -> list[SourceLayer]:
    """:func:`read_source_layers` of bytes in memory; ``where`` names them in errors."""
    layers: list[tuple[int, SourceLayer]] = []
    for field, wire, value in _Reader(memoryview(data), where).fields():
        if field in (100, 2) and wire == LENGTH:
            name_field, blobs_field = (1, 7) if field == 100 else (4, 6)
            layers.append((field, _read_layer(value, name_field, blobs_field, where)))  # type: ignore[arg-type]
    if {field for field, _ in layers} == {100, 2}:
        raise CaffemodelError(f"{where}: the model has both 'layer' and 'layers' fields (BVLC Caffe: \"Refusing to "
                              "upgrade inconsistent NetParameter input\")")
    return [layer for _, layer in layers]


def _array(blob: StoredBlob, where: str) -> np.ndarray:
    shape = blob.stated_shape
    if any(d < 0 for d in shape) or math.prod(shape) != blob.data.size:
        raise CaffemodelError(f"{where}: the blob at byte {blob.at} has shape {shape[:8]} but {blob.data.size} values "
                              "(a damaged .caffemodel?)")
    return blob.data.reshape(shape)


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> parameter blobs (float32, in their stated shapes) of the layers of a .caffemodel that
    have blobs (the last of several layers of one name). For matching them to a network as Caffe does, use
    :func:`read_source_layers` and :func:`harness.convert.weights.check_weights`."""
    path = Path(path)
    return {layer.name: [_array(b, f"{path}: layer {layer.name!r}") for b in layer.blobs]
            for layer in read_source_layers(path) if layer.blobs}


def match_blobs(targets: dict[str, list[Shape]], source: list[SourceLayer], where: str) -> dict[str, list[np.ndarray]]:
    """Net::CopyTrainedLayersFrom: each source layer whose name a layer of the net has (the first of that
    name; ``targets`` maps every layer name of the net, in order, to its parameter shapes) must have exactly
    that layer's number of blobs, each of the layer's shape (Blob::ShapeEquals) and holding that many
    values (Blob::FromProto); layers the net lacks are ignored. Returns the arrays in the net's shapes (a
    layer given twice: the later copy, as Caffe's second copy overwrites the first). Raises
    :class:`CaffemodelMismatch` naming the layer and Caffe's reason."""
    matched: dict[str, list[np.ndarray]] = {}
    for layer in source:
        shapes = targets.get(layer.name)
        if shapes is None:
            continue
        name = layer.name if len(layer.name) <= 60 else layer.name[:60] + "..."
        if len(layer.blobs) != len(shapes):
            raise CaffemodelMismatch(f"{where}: layer {name!r} has {len(layer.blobs)} blob(s), the net's layer of "
                                     f"that name {len(shapes)} (BVLC Caffe: \"Incompatible number of blobs for "
                                     "layer\")")
        arrays = []
        for j, (blob, shape) in enumerate(zip(layer.blobs, shapes, strict=True)):
            if not blob.fits(shape):
                raise CaffemodelMismatch(f"{where}: layer {name!r} blob {j} has shape {blob.stated_shape[:8]}"
                                         f"{' (legacy num/channels/height/width)' if blob.legacy else ''}, the net "
                                         f"needs {tuple(shape)} (BVLC Caffe: \"Cannot copy param {j} weights ... "
                                         "shape mismatch\")")
            count = math.prod(shape)
            if blob.data.size != count or blob.diff not in (0, count):
                what = "values" if blob.data.size != count else "diff values"
                size = blob.data.size if blob.data.size != count else blob.diff
                raise CaffemodelMismatch(f"{where}: layer {name!r} blob {j} holds {size} {what} for its {count} "
                                         "elements (BVLC Caffe's Blob::FromProto refuses it)")
            arrays.append(blob.data.reshape(shape))
        matched[layer.name] = arrays
    return matched


class CaffemodelMismatch(CaffemodelError, GraphError):
    """Weights Caffe would refuse to copy into the network (the message names the layer): a damaged file's
    fault or the graph's, as the caller sees it."""


__all__ = ["CaffemodelError", "CaffemodelMismatch", "SourceLayer", "StoredBlob", "match_blobs", "parse_source_layers",
           "read_caffemodel", "read_source_layers", "write_caffemodel"]
