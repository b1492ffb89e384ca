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

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

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
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)  # never leave a truncated model where a reader could find it
    return path


# ---- reading ------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: memoryview, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise CaffemodelError(f"{self.where}: truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise CaffemodelError(f"{self.where}: malformed varint")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise CaffemodelError(f"{self.where}: field runs past the end of the data")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def fields(self) -> Iterator[tuple[int, int, int | memoryview]]:
        """(field number, wire type, value): an int for varint/fixed, the bytes for length-delimited."""
        while self.pos < len(self.data):
            key = self.varint()
            field, wire = key >> 3, key & 7
            if wire == VARINT:
                yield field, wire, self.varint()
            elif wire == LENGTH:
                yield field, wire, self.take(self.varint())
            elif wire == FIXED32:
                yield field, wire, self.take(4)
            elif wire == FIXED64:
                yield field, wire, self.take(8)
            else:
                raise CaffemodelError(f"{self.where}: unsupported wire type {wire} (field {field})")


def _packed_varints(chunk: memoryview, where: str) -> list[int]:
    r = _Reader(chunk, where)
    values = []
    while r.pos < len(chunk):
        v = r.varint()
        values.append(v - (1 << 64) if v >= 1 << 63 else v)
    return values


def _read_blob(chunk: memoryview, where: str) -> np.ndarray:
    shape: list[int] = []
    legacy = {1: 1, 2: 1, 3: 1, 4: 1}
    has_legacy = False
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for field, wire, value in _Reader(chunk, where).fields():
        if field == 7 and wire == LENGTH:  # BlobShape
            for f, w, v in _Reader(value, where).fields():
                if f == 1 and w == LENGTH:
                    shape.extend(_packed_varints(v, where))
                elif f == 1 and w == VARINT:
                    shape.append(v)
        elif field == 5:  # data: packed (LENGTH) or one float per key (FIXED32)
            floats.append(np.frombuffer(value, dtype="<f4"))
        elif field == 8:
            doubles.append(np.frombuffer(value, dtype="<f8"))
        elif field in legacy and wire == VARINT:
            legacy[field] = value
            has_legacy = True
    data = np.concatenate(floats) if floats else (
        np.concatenate(doubles).astype(np.float32) if doubles else np.zeros(0, np.float32))
    if not shape:
        shape = [legacy[1], legacy[2], legacy[3], legacy[4]] if has_legacy else [data.size]
    if int(np.prod(shape)) != data.size:
        raise CaffemodelError(f"{where}: blob shape {tuple(shape)} does not match its {data.size} values")
    return data.astype(np.float32).reshape(shape)


def _read_layer(chunk: memoryview, name_field: int, blobs_field: int, where: str) -> tuple[str, list[np.ndarray]]:
    name = ""
    blobs = []
    for field, wire, value in _Reader(chunk, where).fields():
        if field == name_field and wire == LENGTH:
            name = bytes(value).decode("utf-8", errors="replace")
        elif field == blobs_field and wire == LENGTH:
            blobs.append(_read_blob(value, f"{where}: layer '{name}' blob {len(blobs)}"))
    return name, blobs


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> parameter blobs (float32) of a binary .caffemodel (V2 ``layer`` or V1 ``layers``).

    Layers without blobs are left out. To match the blobs to a network's shapes (and get a clear
    error naming the layer when they do not fit) pass the result to
    :func:`harness.convert.weights.check_weights`.
    """
    path = Path(path)
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise CaffemodelError(f"cannot read {path}: {exc.strerror or exc}") from None
    weights: dict[str, list[np.ndarray]] = {}
    for field, wire, value in _Reader(data, str(path)).fields():
        if wire != LENGTH or field not in (100, 2):
            continue
        name_field, blobs_field = (1, 7) if field == 100 else (4, 6)
        name, blobs = _read_layer(value, name_field, blobs_field, str(path))
        if blobs:
            weights[name] = blobs
    return weights


__all__ = ["CaffemodelError", "read_caffemodel", "write_caffemodel"]
