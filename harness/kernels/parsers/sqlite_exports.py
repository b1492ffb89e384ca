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

import sqlite3
from pathlib import Path

from harness.kernels.demangle import demangle_all
from harness.kernels.events import HostRange, KernelEvent, KernelTrace
from harness.kernels.parsers.common import ProfileFormatError

# CUpti_ActivityMemcpyKind (cupti_activity.h): the names nvprof itself prints.
MEMCPY_KINDS = {1: "HtoD", 2: "DtoH", 3: "HtoA", 4: "AtoH", 5: "AtoA", 6: "AtoD", 7: "DtoA", 8: "DtoD", 9: "HtoH",
                10: "PtoP"}
NVTX_RANGE_TYPES = (59, 60, 70, 71)  # push/pop and start/end ranges (plain and payload variants)


def tables(path: str | Path) -> set[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def _memory_events(db: sqlite3.Connection, names: set[str], source: str) -> list[KernelEvent]:
    events = []
    if "CUPTI_ACTIVITY_KIND_MEMCPY" in names:
        for start, end, dev, stream, corr, kind in db.execute(
                "SELECT start, end, deviceId, streamId, correlationId, copyKind FROM CUPTI_ACTIVITY_KIND_MEMCPY"):
            events.append(KernelEvent(f"[CUDA memcpy {MEMCPY_KINDS.get(kind, kind)}]", end - start, start,
                                      stream=stream, correlation_id=corr, device=str(dev), source=source))
    if "CUPTI_ACTIVITY_KIND_MEMSET" in names:
        for start, end, dev, stream, corr in db.execute(
                "SELECT start, end, deviceId, streamId, correlationId FROM CUPTI_ACTIVITY_KIND_MEMSET"):
            events.append(KernelEvent("[CUDA memset]", end - start, start, stream=stream, correlation_id=corr,
                                      device=str(dev), source=source))
    return events


def _kernel_rows(db: sqlite3.Connection, table: str, name_sql: str, join: str) -> list[tuple]:
    return list(db.execute(
        f"SELECT k.start, k.end, k.deviceId, k.streamId, k.correlationId, k.gridX, k.gridY, k.gridZ, "
        f"k.blockX, k.blockY, k.blockZ, k.registersPerThread, {name_sql} FROM {table} AS k {join}"))


def _events(rows: list[tuple], source: str) -> list[KernelEvent]:
    names = demangle_all(r[12] or "" for r in rows)
    return [KernelEvent(names[r[12] or ""], r[1] - r[0], r[0], (r[5], r[6], r[7]), (r[8], r[9], r[10]), r[11], r[3],
                        r[4], str(r[2]), source) for r in rows]


def parse_nvprof(path: str) -> KernelTrace:
    source = "nvprof-sqlite"
    trace = KernelTrace(source=source, path=path)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL"):
            if table in names:
                rows = _kernel_rows(db, table, "s.value", "LEFT JOIN StringTable AS s ON s._id_ = k.name")
                trace.events += _events(rows, source)
        trace.events += _memory_events(db, names, source)
        if "CUPTI_ACTIVITY_KIND_RUNTIME" in names:
            for corr, start, thread in db.execute(
                    "SELECT correlationId, start, threadId FROM CUPTI_ACTIVITY_KIND_RUNTIME"):
                trace.launches[corr] = (float(start), thread)
    if not trace.events:
        raise ProfileFormatError(f"{path}: nvprof SQLite export with no kernel, memcpy or memset rows")
    trace.notes.append("nvprof NVTX markers (CUPTI_ACTIVITY_KIND_MARKER) are not read: per-layer attribution "
                       "needs an nsys or Kineto capture")
    trace.events.sort(key=lambda e: e.start_ns or 0.0)
    return trace


def parse_nsys(path: str) -> KernelTrace:
    source = "nsys-sqlite"
    trace = KernelTrace(source=source, path=path)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        cols = _columns(db, "CUPTI_ACTIVITY_KIND_KERNEL") if "CUPTI_ACTIVITY_KIND_KERNEL" in names else set()
        if cols:
            name_col = next(c for c in ("demangledName", "shortName", "mangledName") if c in cols)
            rows = _kernel_rows(db, "CUPTI_ACTIVITY_KIND_KERNEL", "s.value",
                                f"LEFT JOIN StringIds AS s ON s.id = k.{name_col}")
            trace.events += _events(rows, source)
        trace.events += _memory_events(db, names, source)
        if "CUPTI_ACTIVITY_KIND_RUNTIME" in names:
            for corr, start, tid in db.execute(
                    "SELECT correlationId, start, globalTid FROM CUPTI_ACTIVITY_KIND_RUNTIME"):
                trace.launches[corr] = (float(start), tid)
        if "NVTX_EVENTS" in names:
            text = "COALESCE(n.text, s.value)" if "textId" in _columns(db, "NVTX_EVENTS") else "n.text"
            join = "LEFT JOIN StringIds AS s ON s.id = n.textId" if text != "n.text" else ""
            marks = ",".join(map(str, NVTX_RANGE_TYPES))
            for start, end, label, tid in db.execute(
                    f"SELECT n.start, n.end, {text}, n.globalTid FROM NVTX_EVENTS AS n {join} "
                    f"WHERE n.eventType IN ({marks}) AND n.end IS NOT NULL"):
                trace.ranges.append(HostRange(label or "", float(start), float(end), tid, "nvtx"))
    if not trace.events:
        raise ProfileFormatError(f"{path}: Nsight Systems SQLite export with no CUDA kernel, memcpy or memset "
                                 "rows (was the capture made with --trace=cuda?)")
    trace.events.sort(key=lambda e: e.start_ns or 0.0)
    return trace
