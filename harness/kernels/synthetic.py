"""Whether a profiler capture is made up, told from what is inside it, never from its name.

Every synthetic capture this project commits (``kernels_profiles/make_synthetic.py``) carries :data:`MARKER` in
its content: a preamble line of the CSV exports, a top-level key of the Kineto JSON, a one-row table of the
SQLite exports. A copy renamed ``ncu.csv`` is still synthetic, so it can never be recorded, attributed or
reported as a measurement of a GPU. A real profiler never writes the marker.
"""

from __future__ import annotations

import os

#: the text whose presence anywhere in a capture makes it synthetic
MARKER = "HARNESS-SYNTHETIC-CAPTURE"
#: what the marker line says, as make_synthetic.py writes it
MARKER_LINE = f"{MARKER}: made up by kernels_profiles/make_synthetic.py, not a measurement"
#: the SQLite exports' table that holds MARKER_LINE
MARKER_TABLE = "HARNESS_SYNTHETIC_CAPTURE"
#: what a table or figure made from a synthetic capture says first
SYNTHETIC_TITLE = "SYNTHETIC (made up, not a measurement): "

_CHUNK = 1 << 20


def is_synthetic_capture(path: str | os.PathLike[str]) -> bool:
    """True when the file holds :data:`MARKER` (read in chunks: a capture can be large; SQLite stores the
    marker row's text as it is, so one byte search serves every format)."""
    needle = MARKER.encode("ascii")
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            if needle in tail + chunk:
                return True
            tail = chunk[-(len(needle) - 1):]
    return False
