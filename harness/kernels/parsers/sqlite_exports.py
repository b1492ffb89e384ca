"""SQLite exports of nvprof/nvvp (``nvprof -o x.nvvp``) and Nsight Systems (``nsys export --type sqlite``).

nvprof: kernels in CUPTI_ACTIVITY_KIND_KERNEL and/or CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL (start, end,
deviceId, streamId, correlationId, gridX.., blockX.., registersPerThread, name -> StringTable(_id_, value),
mangled); memcpy/memset in CUPTI_ACTIVITY_KIND_MEMCPY/MEMSET; runtime API calls (the launch side of a
correlation id) in CUPTI_ACTIVITY_KIND_RUNTIME (start, threadId).

Nsight Systems: kernels in CUPTI_ACTIVITY_KIND_KERNEL (start, end, deviceId, streamId, correlationId,
gridX.., blockX.., registersPerThread, demangledName/shortName -> StringIds(id, value)); memcpy/memset in
CUPTI_ACTIVITY_KIND_MEMCPY/MEMSET; API calls in CUPTI_ACTIVITY_KIND_RUNTIME (start, globalTid,
correlationId); NVTX ranges in NVTX_EVENTS (start, end, text or textId -> StringIds, globalTid).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from harness.kernels.demangle import demangle_all
from harness.kernels.events import HostRange, KernelEvent, KernelTrace
from harness.kernels.parsers.common import ProfileFormatError

# CUpti_ActivityMemcpyKind (cupti_activity.h): the names nvprof itself prints.
MEMCPY_KINDS = {1: "HtoD", 2: "DtoH", 3: "HtoA", 4: "AtoH", 5: "AtoA", 6: "AtoD", 7: "DtoA", 8: "DtoD", 9: "HtoH",
                10: "PtoP"}
NVTX_RANGE_TYPES = (59, 60, 70, 71)  # push/pop and start/end ranges (plain and payload variants)
RUNTIME_TABLE = "CUPTI_ACTIVITY_KIND_RUNTIME"
#: a per-format reader of kernel (and NVTX) rows: (connection, table names, trace to fill)
KernelReader = Callable[[sqlite3.Connection, set[str], KernelTrace], None]


def _connect(path: str | Path) -> closing[sqlite3.Connection]:
    # closing(): a Connection used as a context manager only ends the transaction, it does not close
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.text_factory = lambda raw: raw.decode("utf-8", errors="replace")  # a damaged name is still text
    return closing(db)


def tables(path: str | Path) -> set[str]:
    with _connect(path) as db:
        return _table_names(db)


def _table_names(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def _interval(path: str, table: str, row: int, start: object, end: object) -> tuple[float, float]:
    """(start, duration) of a row's start and end columns; values a profiler cannot have written (text, a
    NULL, an end before the start) are an error naming the table and the row."""
    for column, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ProfileFormatError(f"{path}: {table} row {row + 1}: '{column}' is {_shown(value)}, not a time "
                                     "stamp")
    if end < start:  # type: ignore[operator]
        raise ProfileFormatError(f"{path}: {table} row {row + 1}: ends ({end}) before it starts ({start})")
    return float(start), float(end) - float(start)  # type: ignore[arg-type]


def _text(path: str, table: str, row: int, column: str, value: object) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    raise ProfileFormatError(f"{path}: {table} row {row + 1}: '{column}' is {_shown(value)}, not text")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _memory_events(db: sqlite3.Connection, names: set[str], source: str, path: str) -> list[KernelEvent]:
    events = []
    table = "CUPTI_ACTIVITY_KIND_MEMCPY"
    if table in names:
        for i, (start, end, dev, stream, corr, kind) in enumerate(db.execute(
                f"SELECT start, end, deviceId, streamId, correlationId, copyKind FROM {table}")):
            begin, duration = _interval(path, table, i, start, end)
            events.append(KernelEvent(f"[CUDA memcpy {MEMCPY_KINDS.get(kind, kind)}]", duration, begin,
                                      stream=stream, correlation_id=corr, device=str(dev), source=source))
    table = "CUPTI_ACTIVITY_KIND_MEMSET"
    if table in names:
        for i, (start, end, dev, stream, corr) in enumerate(db.execute(
                f"SELECT start, end, deviceId, streamId, correlationId FROM {table}")):
            begin, duration = _interval(path, table, i, start, end)
            events.append(KernelEvent("[CUDA memset]", duration, begin, stream=stream, correlation_id=corr,
                                      device=str(dev), source=source))
    return events


def _kernel_rows(db: sqlite3.Connection, table: str, name_sql: str, join: str) -> list[tuple]:
    return list(db.execute(
        f"SELECT k.start, k.end, k.deviceId, k.streamId, k.correlationId, k.gridX, k.gridY, k.gridZ, "
        f"k.blockX, k.blockY, k.blockZ, k.registersPerThread, {name_sql} FROM {table} AS k {join}"))


def _events(rows: list[tuple], source: str, path: str, table: str) -> list[KernelEvent]:
    texts = [_text(path, table, i, "name", r[12]) for i, r in enumerate(rows)]
    names = demangle_all(texts)
    events = []
    for i, (r, text) in enumerate(zip(rows, texts, strict=True)):
        start, duration = _interval(path, table, i, r[0], r[1])
        events.append(KernelEvent(names[text], duration, start, (r[5], r[6], r[7]), (r[8], r[9], r[10]), r[11],
                                  r[3], r[4], str(r[2]), source))
    return events


def _read(path: str, source: str, launch_thread_column: str, read_kernels: KernelReader) -> KernelTrace:
    """What both exports share: kernels (format-specific), memcpy/memset, launches; events in time order."""
    trace = KernelTrace(source=source, path=path)
    with _connect(path) as db:
        names = _table_names(db)
        read_kernels(db, names, trace)
        trace.events += _memory_events(db, names, source, path)
        if RUNTIME_TABLE in names:
            for i, (corr, start, thread) in enumerate(db.execute(
                    f"SELECT correlationId, start, {launch_thread_column} FROM {RUNTIME_TABLE}")):
                trace.launches[corr] = (_interval(path, RUNTIME_TABLE, i, start, start)[0], thread)
    trace.events.sort(key=lambda e: e.start_ns or 0.0)
    return trace


def parse_nvprof(path: str) -> KernelTrace:
    trace = _read(path, "nvprof-sqlite", "threadId", _nvprof_kernels)
    if not trace.events:
        raise ProfileFormatError(f"{path}: nvprof SQLite export with no kernel, memcpy or memset rows")
    trace.notes.append("nvprof NVTX markers (CUPTI_ACTIVITY_KIND_MARKER) are not read: per-layer attribution "
                       "needs an nsys or Kineto capture")
    return trace


def _nvprof_kernels(db: sqlite3.Connection, names: set[str], trace: KernelTrace) -> None:
    for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL"):
        if table in names:
            rows = _kernel_rows(db, table, "s.value", "LEFT JOIN StringTable AS s ON s._id_ = k.name")
            trace.events += _events(rows, trace.source, trace.path, table)


def parse_nsys(path: str) -> KernelTrace:
    trace = _read(path, "nsys-sqlite", "globalTid", _nsys_kernels_and_ranges)
    if not trace.events:
        raise ProfileFormatError(f"{path}: Nsight Systems SQLite export with no CUDA kernel, memcpy or memset "
                                 "rows (was the capture made with --trace=cuda?)")
    return trace


def _nsys_kernels_and_ranges(db: sqlite3.Connection, names: set[str], trace: KernelTrace) -> None:
    cols = _columns(db, "CUPTI_ACTIVITY_KIND_KERNEL") if "CUPTI_ACTIVITY_KIND_KERNEL" in names else set()
    if cols:
        name_col = next((c for c in ("demangledName", "shortName", "mangledName") if c in cols), None)
        if name_col is None:
            raise ProfileFormatError(f"{trace.path}: CUPTI_ACTIVITY_KIND_KERNEL has no demangledName, shortName "
                                     "or mangledName column")
        rows = _kernel_rows(db, "CUPTI_ACTIVITY_KIND_KERNEL", "s.value",
                            f"LEFT JOIN StringIds AS s ON s.id = k.{name_col}")
        trace.events += _events(rows, trace.source, trace.path, "CUPTI_ACTIVITY_KIND_KERNEL")
    if "NVTX_EVENTS" in names:
        text = "COALESCE(n.text, s.value)" if "textId" in _columns(db, "NVTX_EVENTS") else "n.text"
        join = "LEFT JOIN StringIds AS s ON s.id = n.textId" if text != "n.text" else ""
        marks = ",".join(map(str, NVTX_RANGE_TYPES))
        for i, (start, end, label, tid) in enumerate(db.execute(
                f"SELECT n.start, n.end, {text}, n.globalTid FROM NVTX_EVENTS AS n {join} "
                f"WHERE n.eventType IN ({marks}) AND n.end IS NOT NULL")):
            begin, duration = _interval(trace.path, "NVTX_EVENTS", i, start, end)
            trace.ranges.append(HostRange(_text(trace.path, "NVTX_EVENTS", i, "text", label), begin, begin + duration,
                                          tid, "nvtx"))
