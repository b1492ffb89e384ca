"""Nsight Compute ``--csv`` output: the details page (one row per metric) and ``--page raw`` (one row per kernel).

Details page columns: "ID","Process ID","Process Name","Host Name","Kernel Name",["Kernel Time",]"Context",
"Stream",["Block Size","Grid Size","Device","CC",]"Section Name","Metric Name","Metric Unit","Metric Value".
The kernel's duration is the "Duration" metric of the "GPU Speed Of Light Throughput" section (unit
nsecond/usecond/msecond, or ns/us/ms in recent releases). ``--page raw``: the same identifying columns
then one column per metric (``gpu__time_duration.sum``, ``launch__grid_size`` ...), a units row, then one
row per profiled kernel. ncu replays kernels one by one, so events have no start time.
"""

from __future__ import annotations

from harness.kernels.events import KernelEvent, KernelMetrics, KernelTrace
from harness.kernels.parsers.common import dim3_text, integer, number, table_rows, time_factor

ID_COLUMNS = ("ID", "Kernel Name")
DURATION_METRICS = ("gpu__time_duration.sum", "Duration")


def parse_details(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, (*ID_COLUMNS, "Metric Name", "Metric Unit", "Metric Value"), path, "ncu --csv details")
    col = table.col
    trace = KernelTrace(source="ncu-csv-details", path=path)
    kernels: dict[str, dict] = {}
    for row in table.rows:
        k = kernels.setdefault(row[col["ID"]], {"row": row, "metrics": {}, "duration_ns": None})
        metric, unit, value = row[col["Metric Name"]], row[col["Metric Unit"]], number(row[col["Metric Value"]])
        if value is None:
            continue
        if metric in DURATION_METRICS:
            k["duration_ns"] = value * time_factor(unit, path, f"Metric Value of {metric}")
        k["metrics"][metric] = value
    for k in kernels.values():
        _add_kernel(trace, k["row"], col, k["duration_ns"], k["metrics"])
    return trace


def parse_raw(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, ID_COLUMNS, path, "ncu --page raw", units_row=True)
    header, col = table.header, table.col
    trace = KernelTrace(source="ncu-csv-raw", path=path)
    first_metric = max(col.get(c, -1) for c in ("Kernel Name", "Context", "Stream", "Block Size", "Grid Size",
                                                 "Device", "CC", "Kernel Time")) + 1
    for row in table.rows:
        metrics = {header[i]: v for i in range(first_metric, len(header)) if (v := number(row[i])) is not None}
        duration = None
        for m in DURATION_METRICS:
            if m in metrics:
                duration = metrics[m] * time_factor(table.units.get(m, ""), path, m)
                break
        _add_kernel(trace, row, col, duration, metrics)
    return trace


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
