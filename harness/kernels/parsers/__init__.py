"""Profiler file -> :class:`~harness.kernels.events.KernelTrace`, with the format detected from the content.

One module per format family; :data:`FORMATS` lists what :func:`load_trace` recognises (and what its
error message says it expected).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from harness.kernels.demangle import demangle_all
from harness.kernels.events import KernelTrace
from harness.kernels.parsers import kineto_json, ncu_csv, nsys_csv, nvprof_csv, sqlite_exports
from harness.kernels.parsers.common import CsvRow, ProfileFormatError, csv_rows, find_header

FORMATS = (
    "nvprof --csv --print-gpu-trace (CUDA 8 or 9+)",
    "nvprof --csv --print-gpu-summary (CUDA 8 or 9+)",
    "nvprof --csv --metrics ...",
    "nvprof/nvvp SQLite export (CUPTI_ACTIVITY_KIND_[CONCURRENT_]KERNEL + StringTable)",
    "nsys stats --format csv: cuda_gpu_kern_sum/gpukernsum or cuda_gpu_trace/gputrace",
    "nsys export --type sqlite (CUPTI_ACTIVITY_KIND_KERNEL + StringIds)",
    "ncu --csv (details page) or ncu --csv --page raw",
    "PyTorch profiler / Kineto chrome-trace JSON",
)
SQLITE_MAGIC = b"SQLite format 3\x00"


def load_trace(path: str | Path) -> KernelTrace:
    """Read any supported profiler file; kernel names come out demangled. A file with no kernel rows (a
    header alone) is an error, never a trace of 0 ms."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ProfileFormatError(f"{p}: not a file" if p.exists() else f"{p}: cannot read (file not found)")
        with p.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ProfileFormatError(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if head == SQLITE_MAGIC:
        trace = _load_sqlite(p)
    else:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ProfileFormatError(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from None
        nul = data.find(b"\x00")
        if nul >= 0:
            raise _unknown(str(p), f"binary data (a NUL byte at offset {nul}), not a text export")
        trace = _load_text(data.decode("utf-8", errors="replace"), str(p))
    if not trace.events and not trace.summaries and not trace.metrics and not trace.cpu_ops:
        skipped = f" ({'; '.join(trace.notes)})" if trace.notes else ""
        raise ProfileFormatError(f"{p}: no kernels in this {trace.source} file, only its header{skipped}")
    return _demangled(trace)


def _unknown(path: str, what: str) -> ProfileFormatError:
    return ProfileFormatError(f"{path}: {what}; expected one of: " + "; ".join(FORMATS))


def _load_sqlite(p: Path) -> KernelTrace:
    # A damaged file passes the magic check, and a table can lack a column the export should have:
    # sqlite3 reports both (DatabaseError, OperationalError) as sqlite3.Error.
    try:
        names = sqlite_exports.tables(p)
        kernels = {"CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL"} & names
        if "StringIds" in names and (kernels or "NVTX_EVENTS" in names):
            return sqlite_exports.parse_nsys(str(p))
        if "StringTable" in names and kernels:
            return sqlite_exports.parse_nvprof(str(p))
    except sqlite3.Error as exc:
        raise ProfileFormatError(f"{p}: not a readable SQLite export ({' '.join(str(exc).split())[:200]})") from None
    except UnicodeDecodeError:  # SQLite's own message quotes the damaged schema, which is not UTF-8
        raise ProfileFormatError(f"{p}: not a readable SQLite export (its schema is damaged)") from None
    raise _unknown(str(p), "an SQLite database without CUPTI kernel tables")


# (columns that identify a format's table, its parser, what the user knows it as), tried in this order.
TEXT_FORMATS = (
    (nvprof_csv.TRACE_COLUMNS, nvprof_csv.parse_trace, "nvprof --print-gpu-trace"),
    (nvprof_csv.METRICS_COLUMNS, nvprof_csv.parse_metrics, "nvprof --metrics"),
    (nvprof_csv.SUMMARY_COLUMNS, nvprof_csv.parse_summary, "nvprof --print-gpu-summary"),
    (("ID", "Kernel Name", "Metric Name", "Metric Value"), ncu_csv.parse_details, "ncu --csv details"),
    (ncu_csv.ID_COLUMNS, ncu_csv.parse_raw, "ncu --csv --page raw"),
    (("Instances", "Name"), nsys_csv.parse_kern_sum, "an nsys kernel summary"),
    (("CorrId", "Name"), nsys_csv.parse_gpu_trace, "an nsys GPU trace"),
)


def _load_text(text: str, path: str) -> KernelTrace:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            doc = None
        if doc is not None and kineto_json.looks_like_kineto(doc):
            return kineto_json.parse(stripped, path)
        raise _unknown(path, "JSON that is not a chrome trace")
    rows = csv_rows(text, path)
    for columns, parser, _ in TEXT_FORMATS:
        if find_header(rows, columns) is not None:
            return parser(rows, path)
    raise _unknown(path, "no known profiler header found" + _nearest_format(rows))


def _nearest_format(rows: list[CsvRow]) -> str:
    """For a table that is one column short of a known header: which format, and the columns it lacks."""
    best = ""
    for columns, _, description in TEXT_FORMATS:
        for row in rows[:200]:
            names = {c.strip() for c in row.cells}
            lacking = [c for c in columns if c not in names]
            if len(lacking) == 1 and len(columns) >= 3:
                best = best or f" (line {row.line} looks like {description} without the column {lacking[0]!r})"
    return best


def _demangled(trace: KernelTrace) -> KernelTrace:
    names = demangle_all([e.name for e in trace.events] + [s.name for s in trace.summaries]
                         + [m.name for m in trace.metrics])
    if any(n != d for n, d in names.items()):
        from dataclasses import replace

        trace.events = [replace(e, name=names[e.name]) for e in trace.events]
        trace.summaries = [replace(s, name=names[s.name]) for s in trace.summaries]
        trace.metrics = [replace(m, name=names[m.name]) for m in trace.metrics]
    if any(n.startswith("_Z") for n in names.values()):
        trace.notes.append("some kernel names stay mangled: no demangler found (install binutils for c++filt)")
    return trace


__all__ = ["FORMATS", "ProfileFormatError", "load_trace"]
