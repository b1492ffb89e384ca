"""``nsys stats --format csv`` reports: ``cuda_gpu_kern_sum`` / ``gpukernsum`` and ``cuda_gpu_trace`` / ``gputrace``.

Column names changed across Nsight Systems releases; both spellings are accepted:

- kernel summary (2023+): Time (%), Total Time (ns), Instances, Avg (ns), Med (ns), Min (ns), Max (ns),
  StdDev (ns), Name; older ``gpukernsum``: Time(%), Total Time (ns), Instances, Average, Minimum, Maximum,
  StdDev, Name (times in ns; the oldest print "Total Time" without the unit, also ns).
- GPU trace (2023+): Start (ns), Duration (ns), CorrId, GrdX, GrdY, GrdZ, BlkX, BlkY, BlkZ, Reg/Trd, ...,
  Device, Ctx, [GreenCtx,] Strm, Name; older ``gputrace``: the same with "Throughput (MBps)" and
  without GreenCtx. Memcpy/memset rows have no grid and keep their "[CUDA memcpy ...]" names.
"""

from __future__ import annotations

from harness.kernels.events import KernelEvent, KernelSummary, KernelTrace
from harness.kernels.parsers.common import CsvRow, ProfileFormatError, dim3, finish, integer, table_rows


def _column(header: list[str], *candidates: str) -> int | None:
    for c in candidates:
        if c in header:
            return header.index(c)
    return None


def _ns_factor(label: str) -> float:
    for unit, f in (("(ns)", 1.0), ("(us)", 1e3), ("(ms)", 1e6), ("(s)", 1e9)):
        if label.endswith(unit):
            return f
    return 1.0  # nsys reports nanoseconds unless told otherwise


def parse_kern_sum(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, ("Instances", "Name"), path, "nsys cuda_gpu_kern_sum/gpukernsum")
    header = table.header
    total_i = _column(header, "Total Time (ns)", "Total Time (us)", "Total Time (ms)", "Total Time")
    if total_i is None:
        raise ProfileFormatError(f"{path}: nsys kernel summary without a 'Total Time' column")
    total_col = header[total_i]
    factor = _ns_factor(total_col)
    source = "nsys-csv-kern-sum" if "Med (ns)" in header else "nsys-csv-gpukernsum"
    trace = KernelTrace(source=source, path=path)
    for row in table.data():
        total = table.number(row, total_col, factor, "non-negative")
        calls = None if total is None else table.number(row, "Instances", check="non-negative")
        if calls is None:
            continue
        trace.summaries.append(KernelSummary(table.cell(row, "Name"), total, int(calls), source))
    finish(table, trace.notes)
    return trace


def parse_gpu_trace(rows: list[CsvRow], path: str) -> KernelTrace:
    table = table_rows(rows, ("CorrId", "Name"), path, "nsys cuda_gpu_trace/gputrace")
    header = table.header
    start_i = _column(header, "Start (ns)", "Start (us)", "Start")
    dur_i = _column(header, "Duration (ns)", "Duration (us)", "Duration")
    if start_i is None or dur_i is None:
        missing = " and ".join(c for c, i in (("Start", start_i), ("Duration", dur_i)) if i is None)
        raise ProfileFormatError(f"{path}: nsys GPU trace without a {missing} column")
    start_col, dur_col = header[start_i], header[dur_i]
    s_f, d_f = _ns_factor(start_col), _ns_factor(dur_col)
    source = "nsys-csv-gpu-trace" if "GreenCtx" in header or "Throughput (MB/s)" in header else "nsys-csv-gputrace"
    trace = KernelTrace(source=source, path=path)
    for row in table.data():
        v = dict(zip(header, row.cells, strict=False))
        start = table.number(row, start_col, s_f, "finite")
        duration = None if start is None else table.number(row, dur_col, d_f, "non-negative")
        if duration is None:
            continue
        trace.events.append(KernelEvent(
            name=table.cell(row, "Name"), start_ns=start, duration_ns=duration,
            grid=dim3(v.get("GrdX"), v.get("GrdY"), v.get("GrdZ")),
            block=dim3(v.get("BlkX"), v.get("BlkY"), v.get("BlkZ")),
            registers_per_thread=integer(v.get("Reg/Trd")), stream=integer(v.get("Strm")),
            correlation_id=integer(v.get("CorrId")), device=v.get("Device"), source=source))
    finish(table, trace.notes)
    return trace
