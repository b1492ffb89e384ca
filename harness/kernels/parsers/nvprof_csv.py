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
    CsvRow,
    ProfileFormatError,
    dim3,
    finish,
    integer,
    number,
    table_rows,
    time_factor,
)

TRACE_COLUMNS = ("Start", "Duration", "Grid X", "Block X", "Name")
SUMMARY_COLUMNS = ("Time(%)", "Time", "Calls", "Avg", "Name")
METRICS_COLUMNS = ("Kernel", "Invocations", "Metric Name", "Avg")
_CUDA8_CORRELATION = re.compile(r"^(.*\S) \[(\d+)\]$")


def parse_trace(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, TRACE_COLUMNS, path, "nvprof --print-gpu-trace", units_row=True)
    start_f = time_factor(table.units["Start"], path, "Start")
    dur_f = time_factor(table.units["Duration"], path, "Duration")
    layout = "cuda9+" if "Correlation_ID" in table.col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-trace ({layout})", path=path)
    for row in table.data():
        v = dict(zip(table.header, row.cells, strict=False))
        name = v.get("Name") or ""
        correlation = integer(v.get("Correlation_ID"))
        m = _CUDA8_CORRELATION.match(name)
        if correlation is None and m:
            name, correlation = m.group(1), int(m.group(2))
        start = table.number(row, "Start", start_f, "finite")
        duration = None if start is None else table.number(row, "Duration", dur_f, "non-negative")
        if duration is None:
            continue
        trace.events.append(KernelEvent(
            name=name, start_ns=start, duration_ns=duration,
            grid=dim3(v.get("Grid X"), v.get("Grid Y"), v.get("Grid Z")),
            block=dim3(v.get("Block X"), v.get("Block Y"), v.get("Block Z")),
            registers_per_thread=integer(v.get("Registers Per Thread")), stream=integer(v.get("Stream")),
            correlation_id=correlation, device=v.get("Device"), source=trace.source))
    finish(table, trace.notes)
    return trace


def parse_summary(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, SUMMARY_COLUMNS, path, "nvprof --print-gpu-summary", units_row=True)
    factor = time_factor(table.units["Time"], path, "Time")
    layout = "cuda9+" if "Type" in table.col else "cuda8"
    trace = KernelTrace(source=f"nvprof-csv-summary ({layout})", path=path)
    share = 0.0
    for row in table.data():
        if "Type" in table.col and table.cell(row, "Type").strip() not in ("GPU activities", ""):
            continue  # "API calls" (and "OpenACC"...) rows are host time, not GPU time
        total = table.number(row, "Time", factor, "non-negative")
        calls = None if total is None else table.number(row, "Calls", check="non-negative")
        if calls is None:
            continue
        trace.summaries.append(KernelSummary(table.cell(row, "Name"), total, int(calls), trace.source))
        share += number(table.cell(row, "Time(%)")) or 0.0
    if share > 101.0:  # each row's Time(%) is its share of GPU time: together they make 100 %
        raise ProfileFormatError(f"{path}: the GPU rows' Time(%) add up to {share:.1f} %: the file mixes GPU "
                                 "activities with other rows (a CUDA 9+ summary without its Type column?)")
    finish(table, trace.notes)
    return trace


def parse_metrics(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, METRICS_COLUMNS, path, "nvprof --metrics")
    trace = KernelTrace(source="nvprof-csv-metrics", path=path)
    per_kernel: dict[str, KernelMetrics] = {}
    for row in table.data():
        name = table.cell(row, "Kernel")
        if number(table.cell(row, "Avg")) is None and table.cell(row, "Avg").strip() in ("n/a", "N/A", ""):
            continue  # a metric the device does not support: nvprof prints n/a
        value = table.number(row, "Avg", check="finite")
        if value is None:
            continue
        km = per_kernel.setdefault(name, KernelMetrics(name, integer(table.cell(row, "Invocations")) or 1, {},
                                                       trace.source))
        km.values[table.cell(row, "Metric Name").strip()] = value
    trace.metrics = list(per_kernel.values())
    finish(table, trace.notes)
    return trace
