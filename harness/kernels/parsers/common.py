"""Pieces every text parser shares: finding the CSV header under a tool's preamble, numbers, units."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from harness.errors import HarnessError

TIME_UNITS_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "μs": 1e3, "usecond": 1e3, "ns": 1.0, "nsecond": 1.0,
                 "msecond": 1e6, "second": 1e9, "cycle": float("nan")}


class ProfileFormatError(HarnessError):
    """A profiler file that does not have the layout its format requires (names the file and what)."""


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def find_header(rows: list[list[str]], required: Iterable[str]) -> int | None:
    """Index of the first row containing every ``required`` column name (tools print preambles first)."""
    need = set(required)
    for i, row in enumerate(rows):
        if need <= {c.strip() for c in row}:
            return i
    return None


def number(text: str | None) -> float | None:
    """'1,234.5' -> 1234.5, '95.5%' -> 95.5, '' -> None; nvprof's 'Low (1)' levels -> 1."""
    if text is None:
        return None
    t = text.strip().replace(",", "")
    if not t or t in ("-", "n/a", "N/A"):
        return None
    level = re.fullmatch(r"[A-Za-z ]+\((\d+)\)", t)
    if level:
        return float(level.group(1))
    m = re.fullmatch(r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*(%|[A-Za-z/]+)?", t)
    return float(m.group(1)) if m else None


def integer(text: str | None) -> int | None:
    value = number(text)
    return None if value is None else int(value)


def time_factor(unit: str, path: str, column: str) -> float:
    """ns per unit for a time column's unit (nvprof's units row, ncu's Metric Unit)."""
    factor = TIME_UNITS_NS.get(unit.strip())
    if factor is None or factor != factor:
        raise ProfileFormatError(f"{path}: column '{column}' has time unit {unit!r}, expected one of "
                                 "s, ms, us, ns")
    return factor


def dim3(*parts: str | None) -> tuple[int, int, int] | None:
    values = [integer(p) for p in parts]
    if any(v is None for v in values):
        return None
    return (values[0], values[1], values[2])  # type: ignore[return-value]


def dim3_text(text: str | None) -> tuple[int, int, int] | None:
    """'(256, 1, 1)' or '[256, 1, 1]' -> (256, 1, 1)."""
    if not text:
        return None
    found = re.findall(r"\d+", text.replace(",", " "))
    return (int(found[0]), int(found[1]), int(found[2])) if len(found) == 3 else None
