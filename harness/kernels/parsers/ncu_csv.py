"""Nsight Compute ``--csv`` output: the details page (one row per metric) and ``--page raw`` (one row per kernel).

Details page columns: "ID","Process ID","Process Name","Host Name","Kernel Name",["Kernel Time",]"Context",
"Stream",["Block Size","Grid Size","Device","CC",]"Section Name","Metric Name","Metric Unit","Metric Value".
The kernel's duration is the "Duration" metric of the "GPU Speed Of Light Throughput" section (unit
nsecond/usecond/msecond, or ns/us/ms in recent releases). ``--page raw``: the same identifying columns
then one column per metric (``gpu__time_duration.sum``, ``launch__grid_size`` ...), a units row, then one
row per profiled kernel. ncu replays kernels one by one, so events have no start time.
"""

from __future__ import annotations

import math

from harness.kernels.events import KernelEvent, KernelMetrics, KernelTrace
from harness.kernels.parsers.common import (
    CsvRow,
    CsvTable,
    ProfileFormatError,
    dim3_text,
    finish,
    integer,
    number,
    table_rows,
    time_factor,
)

ID_COLUMNS = ("ID", "Kernel Name")
DURATION_METRICS = ("gpu__time_duration.sum", "Duration")


def parse_details(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, (*ID_COLUMNS, "Metric Name", "Metric Unit", "Metric Value"), path, "ncu --csv details")
    trace = KernelTrace(source="ncu-csv-details", path=path)
    kernels: dict[str, dict] = {}
    for row in table.data():
        k = kernels.setdefault(table.cell(row, "ID"), {"row": row.cells, "metrics": {}, "duration_ns": None})
        metric, unit = table.cell(row, "Metric Name"), table.cell(row, "Metric Unit")
        value = _metric(table, row, "Metric Value")
        if value is None:
            continue
        if metric in DURATION_METRICS:
            k["duration_ns"] = _duration(table, row, "Metric Value", value,
                                         time_factor(unit, path, f"Metric Value of {metric}"))
        k["metrics"][metric] = value
    for k in kernels.values():
        _add_kernel(trace, k["row"], table.col, k["duration_ns"], k["metrics"])
    finish(table, trace.notes)
    return trace


def parse_raw(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, ID_COLUMNS, path, "ncu --page raw", units_row=True)
    header, col = table.header, table.col
    trace = KernelTrace(source="ncu-csv-raw", path=path)
    first_metric = max(col.get(c, -1) for c in ("Kernel Name", "Context", "Stream", "Block Size", "Grid Size",
                                                 "Device", "CC", "Kernel Time")) + 1
    for row in table.data():
        metrics = {header[i]: v for i in range(first_metric, len(header))
                   if (v := _metric(table, row, header[i])) is not None}
        duration = None
        for m in DURATION_METRICS:
            if m in metrics:
                duration = _duration(table, row, m, metrics[m], time_factor(table.units.get(m, ""), path, m))
                break
        _add_kernel(trace, row.cells, col, duration, metrics)
    finish(table, trace.notes)
    return trace


def _metric(table: CsvTable, row: CsvRow, column: str) -> float | None:
    """A metric's number; None for the text values ncu prints for some metrics ("CachePreferNone", n/a)."""
    value = number(table.cell(row, column))
    if value is not None and not math.isfinite(value):
        raise ProfileFormatError(f"{table.path}:{row.line}: {column[:60]!r} {table.cell(row, column)[:40]!r} cannot "
                                 "be a measurement (it must be finite)")
    return value


def _duration(table: CsvTable, row: CsvRow, column: str, value: float, factor: float) -> float:
    if value < 0:
        raise ProfileFormatError(f"{table.path}:{row.line}: {column[:60]!r} {table.cell(row, column)[:40]!r} cannot "
                                 "be a duration (it must be >= 0)")
    return value * factor


def _add_kernel(trace: KernelTrace, row: list[str], col: dict[str, int], duration_ns: float | None,
                metrics: dict[str, float]) -> None:
    v = dict(zip((h for h, _ in sorted(col.items(), key=lambda kv: kv[1])), row, strict=False))
    name = v.get("Kernel Name") or ""
    if duration_ns is not None:
        trace.events.append(KernelEvent(
            name=name, duration_ns=duration_ns, grid=dim3_text(v.get("Grid Size")),
            block=dim3_text(v.get("Block Size")),
            registers_per_thread=_int_metric(metrics, "launch__registers_per_thread", "Registers Per Thread"),
            stream=integer(v.get("Stream")), device=v.get("Device"), source=trace.source))
    trace.metrics.append(KernelMetrics(name, 1, metrics, trace.source))


def _int_metric(metrics: dict[str, float], *names: str) -> int | None:
    for name in names:
        if name in metrics:
            return int(metrics[name])
    return None
