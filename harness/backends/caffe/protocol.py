"""The wire format between the Caffe backend and its worker process.

One message is a 4-byte big-endian length, a JSON header, then one ``.npy`` payload per array the
header lists. JSON and ``.npy`` (not pickle) because the two ends may run different interpreters
with different numpy majors: pycaffe is often built for the distribution's Python and numpy 1.x,
and numpy 2 pickles arrays through modules numpy 1 does not have.

This module is imported by the worker under that other interpreter: standard library and numpy only.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, BinaryIO

import numpy as np

_LENGTH = struct.Struct(">I")


class ChannelClosed(EOFError):
    """The other end closed the pipe (the worker exited or was killed)."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    payloads = []
    names = []
    for name, array in (arrays or {}).items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
        payloads.append(buf.getvalue())
        names.append([name, len(payloads[-1])])
    head = json.dumps({**header, "_arrays": names}).encode()
    return b"".join([_LENGTH.pack(len(head)), head, *payloads])


def decode_arrays(header: dict[str, Any], read_exact: Any) -> dict[str, np.ndarray]:
    """Read the ``.npy`` payloads ``header`` announces with ``read_exact(n) -> bytes``."""
    arrays = {}
    for name, size in header.pop("_arrays", []):
        arrays[name] = np.lib.format.read_array(io.BytesIO(read_exact(size)), allow_pickle=False)
    return arrays


def send(stream: BinaryIO, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    stream.write(encode(header, arrays))
    stream.flush()


def recv(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Blocking read of one message (the worker's side; the parent reads with a deadline)."""

    def read_exact(n: int) -> bytes:
        data = stream.read(n)
        if data is None or len(data) < n:
            raise ChannelClosed("channel closed")
        return data

    (size,) = _LENGTH.unpack(read_exact(_LENGTH.size))
    header = json.loads(read_exact(size))
    return header, decode_arrays(header, read_exact)


HEADER_LENGTH = _LENGTH
