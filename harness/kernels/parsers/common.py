"""Pieces every text parser shares: finding the CSV header under a tool's preamble, numbers, units."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass
class CsvTable:
    """A profiler's CSV table: stripped column names, their indexes, the units row (nvprof and
    ncu --page raw print one under the header; empty otherwise) and the data rows as wide as the header."""

    header: list[str]
    col: dict[str, int]
    units: dict[str, str]
    rows: list[list[str]]


def table_rows(rows: list[list[str]], required: Sequence[str], path: str, what: str,
               units_row: bool = False) -> CsvTable:
    """The table under the first row holding every ``required`` column; shorter rows (a tool's notes
    and footers) are dropped. Raises ProfileFormatError naming ``what`` when the header is missing."""
    h = find_header(rows, required)
    if h is None or (units_row and h + 1 >= len(rows)):
        raise ProfileFormatError(f"{path}: no {what} header ({', '.join(required)})")
    header = [c.strip() for c in rows[h]]
    units = dict(zip(header, rows[h + 1], strict=False)) if units_row else {}
    data = [row for row in rows[h + (2 if units_row else 1):] if len(row) >= len(header)]
    return CsvTable(header, {name: i for i, name in enumerate(header)}, units, data)


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
