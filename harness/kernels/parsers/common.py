"""Pieces every text parser shares: finding the CSV header under a tool's preamble, numbers, units, and
the account of rows that could not be read.

A profiler table is read row by row. A row that cannot be read (too few fields, no number where one
belongs) is skipped and counted, and the trace says so ("skipped 3 of 120 rows (line 5: ...)"); a
value that is a number but cannot be a measurement (a negative or non-finite duration) makes the whole
file an error naming its line, since a file that holds one is not a profiler's output.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from harness.errors import HarnessError

TIME_UNITS_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "μs": 1e3, "usecond": 1e3, "ns": 1.0, "nsecond": 1.0,
                 "msecond": 1e6, "second": 1e9, "cycle": float("nan")}
# Lines a tool prints between its table rows: nvprof's and ncu's "==PID==" / "==PROF==" messages.
TOOL_MESSAGE = re.compile(r"==[A-Z0-9]+==")


class ProfileFormatError(HarnessError):
    """A profiler file that does not have the layout its format requires (names the file and what)."""


@dataclass(frozen=True)
class CsvRow:
    line: int  # where the row ends in the file (1-based), for messages
    cells: list[str]
    cut: bool = False  # the file ends inside this row's quoted field: skipped and counted by CsvTable


def csv_rows(text: str, path: str) -> list[CsvRow]:
    """The CSV records of ``text`` with their line numbers. csv's own limits (a field over
    ``csv.field_size_limit()`` characters, a NUL) are a ProfileFormatError naming the line.

    No profiler writes a line break inside a field, and a quote that is never closed makes Python's
    reader take every following line into one field, so the rows there would be lost unseen: a field
    that runs over several lines is a ProfileFormatError naming where it opens. A file cut short inside
    the quoted field of its last line loses that row only: it is marked ``cut``."""
    reader = csv.reader(io.StringIO(text))
    rows = []
    start = 1
    try:
        for cells in reader:
            if reader.line_num > start and any("\n" in c or "\r" in c for c in cells):
                raise ProfileFormatError(f"{path}:{start}: a quoted field opens on this line and runs to line "
                                         f"{reader.line_num} (a quote never closed: the file is damaged)")
            rows.append(CsvRow(reader.line_num, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ProfileFormatError(f"{path}:{reader.line_num + 1}: not readable as CSV ({exc})") from None
    if rows and _ends_inside_quotes(text[text.rfind("\n", 0, len(text.rstrip("\r\n"))) + 1:]):
        rows[-1] = CsvRow(rows[-1].line, rows[-1].cells, cut=True)
    return rows


def _ends_inside_quotes(line: str) -> bool:
    """Whether one CSV line ends inside a quoted field, read as Python's lenient reader reads it (a quote
    opens a quoted field only at a field's start; a doubled quote inside one is a quote)."""
    state = "start"  # of a field; or "field", "quoted", "quote" (a quote seen inside a quoted field)
    for ch in line.rstrip("\r\n"):
        if state == "quoted":
            state = "quote" if ch == '"' else "quoted"
        elif state == "quote" and ch == '"':
            state = "quoted"
        elif ch == ",":
            state = "start"
        else:
            state = "quoted" if state == "start" and ch == '"' else "field"
    return state == "quoted"


def find_header(rows: Sequence[CsvRow], required: Iterable[str]) -> int | None:
    """Index of the first row containing every ``required`` column name (tools print preambles first)."""
    need = set(required)
    for i, row in enumerate(rows):
        if need <= {c.strip() for c in row.cells}:
            return i
    return None


@dataclass
class CsvTable:
    """A profiler's CSV table: stripped column names, their indexes, the units row (nvprof and
    ncu --page raw print one under the header; empty otherwise), the data rows as wide as the header, and
    the rows skipped so far."""

    path: str
    header: list[str]
    col: dict[str, int]
    units: dict[str, str]
    rows: list[CsvRow]
    read: int = 0  # data rows seen, skipped ones included
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why)

    def data(self) -> Iterator[CsvRow]:
        """The data rows; one that is too short for the header is skipped (and counted)."""
        for row in self.rows:
            self.read += 1
            if row.cut:
                self.skip(row, "the file ends inside its quoted field (cut short?)")
            elif len(row.cells) < len(self.header):
                self.skip(row, f"{len(row.cells)} field(s), the header has {len(self.header)}")
            else:
                yield row

    def skip(self, row: CsvRow, why: str) -> None:
        self.skipped.append((row.line, why))

    def cell(self, row: CsvRow, column: str) -> str:
        return row.cells[self.col[column]]

    def note(self) -> str | None:
        """'skipped 3 of 120 rows (line 5: ...)', or None when every row was read."""
        if not self.skipped:
            return None
        line, why = self.skipped[0]
        return f"{self.path}: skipped {len(self.skipped)} of {self.read} rows (line {line}: {why})"

    def number(self, row: CsvRow, column: str, factor: float = 1.0, check: str = "") -> float | None:
        """The value of ``column`` times ``factor``; None (the row is skipped) where it is not a number.
        ``check`` "finite" (a time stamp, a metric) or "non-negative" (a duration, a count): a number that
        fails it is an error naming the line."""
        text = self.cell(row, column)
        value = number(text)
        if value is None:
            self.skip(row, f"{_label(column)} {_short(text)} is not a number")
            return None
        value *= factor
        if (check and not math.isfinite(value)) or (check == "non-negative" and value < 0):
            raise ProfileFormatError(f"{self.path}:{row.line}: {_label(column)} {_short(text)} cannot be a measurement "
                                     f"(it must be {'finite and >= 0' if check == 'non-negative' else 'finite'})")
        return value


def table_rows(rows: Sequence[CsvRow], required: Sequence[str], path: str, what: str,
               units_row: bool = False) -> CsvTable:
    """The table under the first row holding every ``required`` column. Raises ProfileFormatError naming
    ``what`` and the columns missing from the row that comes closest. Blank rows and the tool's own
    "==...==" messages are not data and are left out; every other row is data."""
    h = find_header(rows, required)
    if h is None:
        raise ProfileFormatError(f"{path}: no {what} header ({', '.join(required)}){_closest(rows, required)}")
    if units_row and h + 1 >= len(rows):
        raise ProfileFormatError(f"{path}:{rows[h].line}: {what} header without the units row under it")
    header = [c.strip() for c in rows[h].cells]
    units = dict(zip(header, rows[h + 1].cells, strict=False)) if units_row else {}
    data = [row for row in rows[h + (2 if units_row else 1):]
            if any(c.strip() for c in row.cells) and not TOOL_MESSAGE.match(row.cells[0])]
    return CsvTable(path, header, {name: i for i, name in enumerate(header)}, units, data)


def _closest(rows: Sequence[CsvRow], required: Sequence[str]) -> str:
    best, missing = None, list(required)
    for row in rows[:200]:  # a header is near the top: tools print a few lines of preamble at most
        names = {c.strip() for c in row.cells}
        lacking = [c for c in required if c not in names]
        if len(lacking) < len(missing):
            best, missing = row, lacking
    if best is None or len(missing) == len(required):
        return ""
    return f"; the header at line {best.line} lacks {', '.join(repr(c) for c in missing)}"


def finish(table: CsvTable, notes: list[str]) -> None:
    """Record the table's skipped rows in ``notes``."""
    note = table.note()
    if note:
        notes.append(note)


def _label(name: str) -> str:
    """A column name as a message shows it: as it is when short and printable, else quoted and cut."""
    return name if len(name) <= 60 and name.isprintable() else _short(name, 60)


def _short(text: str, limit: int = 40) -> str:
    """A value from the file as a message quotes it: at most ``limit`` characters, escaped (one line)."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def number(text: str | None) -> float | None:
    """'1,234.5' -> 1234.5, '95.5%' -> 95.5, '' -> None; nvprof's 'Low (1)' levels -> 1."""
    if text is None:
        return None
    t = text.strip().replace(",", "")
    if not t or t in ("-", "n/a", "N/A") or len(t) > 400:
        return None
    level = re.fullmatch(r"[A-Za-z ]+\((\d+)\)", t)
    if level:
        return float(level.group(1))
    m = re.fullmatch(r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*(%|[A-Za-z/]+)?", t)
    return float(m.group(1)) if m else None


def integer(text: str | None) -> int | None:
    value = number(text)
    return None if value is None or not math.isfinite(value) else int(value)


def time_factor(unit: str, path: str, column: str) -> float:
    """ns per unit for a time column's unit (nvprof's units row, ncu's Metric Unit)."""
    factor = TIME_UNITS_NS.get(unit.strip())
    if factor is None or factor != factor:
        raise ProfileFormatError(f"{path}: column {_short(column, 60)} has time unit {_short(unit)}, expected one of "
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
