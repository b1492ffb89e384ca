"""JSON as the harness writes it: NaN and infinity (undefined ratios, unmeasured figures) become null, since
JSON has no such numbers and strict readers (jq, JSON.parse) reject them; numpy scalars become numbers."""

from __future__ import annotations

import json
import math
from typing import IO, Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return finite(value.item())
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def dumps(value: Any, indent: int | None = None) -> str:
    separators = None if indent else (",", ":")
    return json.dumps(finite(value), default=_default, allow_nan=False, indent=indent, separators=separators)


def dump(value: Any, stream: IO[str], indent: int | None = 1) -> None:
    stream.write(dumps(value, indent) + "\n")
