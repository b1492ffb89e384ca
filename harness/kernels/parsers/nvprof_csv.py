"""nvprof ``--csv`` output: ``--print-gpu-trace``, ``--print-gpu-summary`` and ``--metrics``.

Layouts handled (each with nvprof's units row under the header):

- trace, CUDA 9+: Start, Duration, Grid X/Y/Z, Block X/Y/Z, Registers Per Thread, Static SMem,
  Dynamic SMem, Size, Throughput, SrcMemType, DstMemType, Device, Context, Stream, Name, Correlation_ID
- trace, CUDA 8: the same without SrcMemType, DstMemType and Correlation_ID; the name ends in the
  correlation id in brackets (``sobolGPU_kernel(...) [1097]``).
- summary, CUDA 9+: Type, Time(%), Time, Calls, Avg, Min, Max, Name (rows of Type "GPU activities"
  are kept, "API calls" dropped); CUDA 8: the same without Type (GPU rows only).
- metrics: Device, Kernel, Invocations, Metric Name, Metric Description, Min, Max, Avg.
"""

from __future__ import annotations

import re

from harness.kernels.events import KernelEvent, KernelMetrics, KernelSummary, KernelTrace
from harness.kernels.parsers.common import (
    ProfileFormatError,
    dim3,
    find_header,
    integer,
    number,
    time_factor,
)

TRACE_COLUMNS = ("Start", "Duration", "Grid X", "Block X", "Name")
SUMMARY_COLUMNS = ("Time(%)", "Time", "Calls", "Avg", "Name")
METRICS_COLUMNS = ("Kernel", "Invocations", "Metric Name", "Avg")
_CUDA8_CORRELATION = re.compile(r"^(.*\S) \[(\d+)\]$")


def parse_trace(rows: list[list[str]], path: str) -> KernelTrace:
    h = find_header(rows, TRACE_COLUMNS)
    if h is None or h + 1 >= len(rows):
        raise ProfileFormatError(f"{path}: no nvprof --print-gpu-trace header ({', '.join(TRACE_COLUMNS)})")
    header = [c.strip() for c in rows[h]]
    units = dict(zip(header, rows[h + 1], strict=False))
    col = {name: i for i, name in enumerate(header)}
    start_f = time_factor(units["Start"], path, "Start")
    dur_f = time_factor(units["Duration"], path, "Duration")
    layout = "cuda9+" if "Correlation_ID" in col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-trace ({layout})", path=path)
    for row in rows[h + 2:]:
        if len(row) < len(header):
            continue
        v = dict(zip(header, row, strict=False))
        name = v.get("Name") or ""
        correlation = integer(v.get("Correlation_ID"))
        m = _CUDA8_CORRELATION.match(name)
        if correlation is None and m:
            name, correlation = m.group(1), int(m.group(2))
        start, duration = number(v.get("Start")), number(v.get("Duration"))
        if start is None or duration is None:
            continue
        trace.events.append(KernelEvent(
            name=name, start_ns=start * start_f, duration_ns=duration * dur_f,
            grid=dim3(v.get("Grid X"), v.get("Grid Y"), v.get("Grid Z")),
            block=dim3(v.get("Block X"), v.get("Block Y"), v.get("Block Z")),
            registers_per_thread=integer(v.get("Registers Per Thread")), stream=integer(v.get("Stream")),
            correlation_id=correlation, device=v.get("Device"), source=trace.source))
    return trace


def parse_summary(rows: list[list[str]], path: str) -> KernelTrace:
    h = find_header(rows, SUMMARY_COLUMNS)
    if h is None or h + 1 >= len(rows):
        raise ProfileFormatError(f"{path}: no nvprof --print-gpu-summary header ({', '.join(SUMMARY_COLUMNS)})")
    header = [c.strip() for c in rows[h]]
    col = {name: i for i, name in enumerate(header)}
    units = dict(zip(header, rows[h + 1], strict=False))
    factor = time_factor(units["Time"], path, "Time")
    layout = "cuda9+" if "Type" in col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-summary ({layout})", path=path)
    for row in rows[h + 2:]:
        if len(row) < len(header):
            continue
        if "Type" in col and row[col["Type"]].strip() not in ("GPU activities", ""):
            continue  # "API calls" (and "OpenACC"...) rows are host time, not GPU time
        total, calls = number(row[col["Time"]]), integer(row[col["Calls"]])
        if total is None or calls is None:
            continue
        trace.summaries.append(KernelSummary(row[col["Name"]], total * factor, calls, trace.source))
    return trace


def parse_metrics(rows: list[list[str]], path: str) -> KernelTrace:
    h = find_header(rows, METRICS_COLUMNS)
    if h is None:
        raise ProfileFormatError(f"{path}: no nvprof --metrics header ({', '.join(METRICS_COLUMNS)})")
    header = [c.strip() for c in rows[h]]
    col = {name: i for i, name in enumerate(header)}
    trace = KernelTrace(source="nvprof-csv-metrics", path=path)
    per_kernel: dict[str, KernelMetrics] = {}
    for row in rows[h + 1:]:
        if len(row) < len(header):
            continue
        name = row[col["Kernel"]]
        value = number(row[col["Avg"]])
        if value is None:
            continue
        km = per_kernel.setdefault(name, KernelMetrics(name, integer(row[col["Invocations"]]) or 1, {},
                                                       trace.source))
        km.values[row[col["Metric Name"]].strip()] = value
    trace.metrics = list(per_kernel.values())
    return trace
