"""Binary ``.caffemodel`` files (a serialized ``NetParameter``) without a compiled ``caffe.proto``.

Only the fields that carry weights are encoded, by hand, in the protobuf wire format; field numbers
are those of BVLC Caffe's ``caffe.proto``:

- NetParameter: ``name`` = 1, ``layer`` = 100 (LayerParameter), legacy ``layers`` = 2 (V1LayerParameter)
- LayerParameter: ``name`` = 1, ``type`` = 2, ``blobs`` = 7 (BlobProto)
- V1LayerParameter: ``name`` = 4, ``type`` = 5 (enum), ``blobs`` = 6
- BlobProto: ``shape`` = 7 (BlobShape: ``dim`` = 1, packed int64), ``data`` = 5 (packed float),
  ``double_data`` = 8 (packed double), legacy ``num``/``channels``/``height``/``width`` = 1..4

Every other field is skipped when reading, so a full trained model (with its layer hyperparameters)
reads fine. Writing produces what Caffe's ``Net::ToProto`` would for these fields; Caffe and OpenCV
match layers by name and only use the blobs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.convert.cache import write_atomic
from harness.errors import HarnessError
from harness.files import read_regular_file
from harness.ir.graph import INT_MAX

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
    dims = b"".join(_varint(int(d)) for d in array.shape)
    shape = _length_delimited(1, dims)  # BlobShape.dim, packed
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return _length_delimited(7, shape) + _length_delimited(5, data)


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
                return result
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
        """(field number, wire type, value): an int for varint, a :class:`_Chunk` for the others."""
        while self.pos < len(self.data):
            start = self.pos
            key = self.varint()
            field, wire = key >> 3, key & 7
            if field == 0:
                raise self.error("field number 0", start)
            if wire == VARINT:
                yield field, wire, self.varint()
            elif wire in (LENGTH, FIXED32, FIXED64):
                size = self.varint() if wire == LENGTH else (4 if wire == FIXED32 else 8)
                at, chunk = self.take(size)
                yield field, wire, _Chunk(chunk, at)
            else:
                raise self.error(f"wire type {wire} (field {field}), which caffe.proto does not use", start)


class _Chunk:
    """Bytes of one field and their offset in the file."""

    __slots__ = ("at", "data")

    def __init__(self, data: memoryview, at: int) -> None:
        self.data, self.at = data, at

    def reader(self, where: str) -> _Reader:
        return _Reader(self.data, where, self.at)


def _expect(value: int | _Chunk, wire: int, expected: int, what: str, where: str) -> None:
    if wire != expected:
        at = f" at byte {value.at}" if isinstance(value, _Chunk) else ""
        raise CaffemodelError(f"{where}: {what} has wire type {wire}, caffe.proto's is {expected}{at} "
                              "(a damaged .caffemodel?)")


def _floats(value: int | _Chunk, wire: int, dtype: str, what: str, where: str) -> np.ndarray:
    """A packed (or single fixed-size) repeated float/double field."""
    size = np.dtype(dtype).itemsize
    if not isinstance(value, _Chunk) or wire not in (LENGTH, FIXED32 if size == 4 else FIXED64):
        raise CaffemodelError(f"{where}: {what} has wire type {wire}, not packed {dtype} values "
                              "(a damaged .caffemodel?)")
    if len(value.data) % size:
        raise CaffemodelError(f"{where}: {what} at byte {value.at} holds {len(value.data)} bytes, not a whole "
                              f"number of {size}-byte values (a damaged .caffemodel?)")
    return np.frombuffer(value.data, dtype=dtype)


def _packed_varints(chunk: _Chunk, where: str) -> list[int]:
    r = chunk.reader(where)
    values = []
    while r.pos < len(chunk.data):
        v = r.varint()
        values.append(v - (1 << 64) if v >= 1 << 63 else v)
    return values


def _read_blob(chunk: _Chunk, where: str) -> np.ndarray:
    shape: list[int] = []
    legacy = {1: 1, 2: 1, 3: 1, 4: 1}
    has_legacy = False
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for field, wire, value in chunk.reader(where).fields():
        if field == 7:  # BlobShape
            _expect(value, wire, LENGTH, "BlobProto.shape", where)
            for f, _, v in value.reader(where).fields():  # type: ignore[union-attr]
                if f == 1 and isinstance(v, _Chunk):
                    shape.extend(_packed_varints(v, where))
                elif f == 1:
                    shape.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif field == 5:
            floats.append(_floats(value, wire, "<f4", "BlobProto.data", where))
        elif field == 8:
            doubles.append(_floats(value, wire, "<f8", "BlobProto.double_data", where))
        elif field in legacy:
            _expect(value, wire, VARINT, f"BlobProto field {field} (num/channels/height/width)", where)
            legacy[field] = value  # type: ignore[assignment]
            has_legacy = True
    data = np.concatenate(floats) if floats else (
        np.concatenate(doubles).astype(np.float32) if doubles else np.zeros(0, np.float32))
    if not shape:
        shape = [legacy[1], legacy[2], legacy[3], legacy[4]] if has_legacy else [data.size]
    if any(d < 0 or d > INT_MAX for d in shape) or math.prod(shape) != data.size:
        raise CaffemodelError(f"{where}: the blob at byte {chunk.at} has shape {tuple(shape)[:8]} but "
                              f"{data.size} values (a damaged .caffemodel?)")
    return data.astype(np.float32).reshape(shape)


def _read_layer(chunk: _Chunk, name_field: int, blobs_field: int, where: str) -> tuple[str, list[np.ndarray]]:
    name = ""
    blobs = []
    for field, wire, value in chunk.reader(where).fields():
        if field == name_field:
            _expect(value, wire, LENGTH, "the layer name", where)
            name = bytes(value.data).decode("utf-8", errors="replace")  # type: ignore[union-attr]
        elif field == blobs_field:
            _expect(value, wire, LENGTH, "a layer blob", where)
            shown = name if len(name) <= 60 else name[:60] + "..."
            blobs.append(_read_blob(value, f"{where}: layer {shown!r} blob {len(blobs)}"))  # type: ignore[arg-type]
    return name, blobs


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> parameter blobs (float32) of a binary .caffemodel (V2 ``layer`` or V1 ``layers``).

    Layers without blobs are left out. A damaged file (a flipped byte, a truncation) is a
    :class:`CaffemodelError` naming the file, the byte offset and the field. To match the blobs to a
    network's shapes (and get a clear error naming the layer when they do not fit) pass the result to
    :func:`harness.convert.weights.check_weights`.
    """
    try:
        data = read_regular_file(path, "the caffemodel")  # a FIFO would block the read forever
    except HarnessError as exc:
        raise CaffemodelError(str(exc)) from None
    return parse_caffemodel(data, str(path))


def parse_caffemodel(data: bytes, where: str) -> dict[str, list[np.ndarray]]:
    """:func:`read_caffemodel` of bytes in memory; ``where`` names them in errors."""
    weights: dict[str, list[np.ndarray]] = {}
    for field, wire, value in _Reader(memoryview(data), where).fields():
        if field not in (100, 2):
            continue
        _expect(value, wire, LENGTH, "NetParameter.layer" if field == 100 else "NetParameter.layers", where)
        name_field, blobs_field = (1, 7) if field == 100 else (4, 6)
        name, blobs = _read_layer(value, name_field, blobs_field, where)  # type: ignore[arg-type]
        if blobs:
            weights[name] = blobs
    return weights


__all__ = ["CaffemodelError", "parse_caffemodel", "read_caffemodel", "write_caffemodel"]
