"""A .caffemodel written field by field (protobuf's wire format by hand), so that tests can make the damaged and
legacy files no writer produces: a NetParameter of V2 layers (field 100), each with its BlobProtos (field 7)."""

from __future__ import annotations

import numpy as np


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def blob(shape: tuple[int, ...] | None = None, legacy: dict[int, int] | None = None, values: int = 0,
         doubles: bool = False, diff: int = 0) -> bytes:
    """A BlobProto: explicit shape (packed dims; ``()`` an empty BlobShape), legacy num/channels/height/width
    (fields 1-4, only those given), ``values`` data values (0, 1, 2, ...), ``diff`` diff values."""
    out = b"" if shape is None else ld(7, ld(1, b"".join(varint(d) for d in shape)) if shape else b"")
    out += b"".join(varint(f << 3) + varint(v) for f, v in (legacy or {}).items())
    if values:
        dtype, field = ("<f8", 8) if doubles else ("<f4", 5)
        out += ld(field, np.arange(values, dtype=dtype).tobytes())
    if diff:
        out += ld(6, np.zeros(diff, "<f4").tobytes())
    return out


def model(*layers: tuple[str, list[bytes]]) -> bytes:
    """A NetParameter of V2 layers: (name, blobs) each."""
    return b"".join(ld(100, ld(1, name.encode()) + b"".join(ld(7, b) for b in blobs)) for name, blobs in layers)
