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
from harness.kernels.parsers.common import dim3, integer, number, table_rows, time_factor

TRACE_COLUMNS = ("Start", "Duration", "Grid X", "Block X", "Name")
SUMMARY_COLUMNS = ("Time(%)", "Time", "Calls", "Avg", "Name")
METRICS_COLUMNS = ("Kernel", "Invocations", "Metric Name", "Avg")
_CUDA8_CORRELATION = re.compile(r"^(.*\S) \[(\d+)\]$")


def parse_trace(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, TRACE_COLUMNS, path, "nvprof --print-gpu-trace", units_row=True)
    start_f = time_factor(table.units["Start"], path, "Start")
    dur_f = time_factor(table.units["Duration"], path, "Duration")
    layout = "cuda9+" if "Correlation_ID" in table.col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-trace ({layout})", path=path)
    for row in table.rows:
        v = dict(zip(table.header, row, strict=False))
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
    table = table_rows(rows, SUMMARY_COLUMNS, path, "nvprof --print-gpu-summary", units_row=True)
    col = table.col
    factor = time_factor(table.units["Time"], path, "Time")
    layout = "cuda9+" if "Type" in col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-summary ({layout})", path=path)
    for row in table.rows:
        if "Type" in col and row[col["Type"]].strip() not in ("GPU activities", ""):
            continue  # "API calls" (and "OpenACC"...) rows are host time, not GPU time
        total, calls = number(row[col["Time"]]), integer(row[col["Calls"]])
        if total is None or calls is None:
            continue
        trace.summaries.append(KernelSummary(row[col["Name"]], total * factor, calls, trace.source))
    return trace


def parse_metrics(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, METRICS_COLUMNS, path, "nvprof --metrics")
    col = table.col
    trace = KernelTrace(source="nvprof-csv-metrics", path=path)
    per_kernel: dict[str, KernelMetrics] = {}
    for row in table.rows:
        name = row[col["Kernel"]]
        value = number(row[col["Avg"]])
        if value is None:
            continue
        km = per_kernel.setdefault(name, KernelMetrics(name, integer(row[col["Invocations"]]) or 1, {},
                                                       trace.source))
        km.values[row[col["Metric Name"]].strip()] = value
    trace.metrics = list(per_kernel.values())
    return trace
