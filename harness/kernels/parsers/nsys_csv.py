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
from harness.kernels.parsers.common import ProfileFormatError, dim3, integer, number, table_rows


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


def parse_kern_sum(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, ("Instances", "Name"), path, "nsys cuda_gpu_kern_sum/gpukernsum")
    header = table.header
    total_i = _column(header, "Total Time (ns)", "Total Time (us)", "Total Time (ms)", "Total Time")
    name_i, calls_i = header.index("Name"), header.index("Instances")
    if total_i is None:
        raise ProfileFormatError(f"{path}: nsys kernel summary without a 'Total Time' column")
    factor = _ns_factor(header[total_i])
    source = "nsys-csv-kern-sum" if "Med (ns)" in header else "nsys-csv-gpukernsum"
    trace = KernelTrace(source=source, path=path)
    for row in table.rows:
        total, calls = number(row[total_i]), integer(row[calls_i])
        if total is None or calls is None:
            continue
        trace.summaries.append(KernelSummary(row[name_i], total * factor, calls, source))
    return trace


def parse_gpu_trace(rows: list[list[str]], path: str) -> KernelTrace:
    table = table_rows(rows, ("CorrId", "Name"), path, "nsys cuda_gpu_trace/gputrace")
    header, col = table.header, table.col
    start_i = _column(header, "Start (ns)", "Start (us)", "Start")
    dur_i = _column(header, "Duration (ns)", "Duration (us)", "Duration")
    if start_i is None or dur_i is None:
        raise ProfileFormatError(f"{path}: nsys GPU trace without Start/Duration columns")
    s_f, d_f = _ns_factor(header[start_i]), _ns_factor(header[dur_i])
    source = "nsys-csv-gpu-trace" if "GreenCtx" in header or "Throughput (MB/s)" in header else "nsys-csv-gputrace"
    trace = KernelTrace(source=source, path=path)
    for row in table.rows:
        v = dict(zip(header, row, strict=False))
        start, duration = number(row[start_i]), number(row[dur_i])
        if start is None or duration is None:
            continue
        trace.events.append(KernelEvent(
            name=row[col["Name"]], start_ns=start * s_f, duration_ns=duration * d_f,
            grid=dim3(v.get("GrdX"), v.get("GrdY"), v.get("GrdZ")),
            block=dim3(v.get("BlkX"), v.get("BlkY"), v.get("BlkZ")),
            registers_per_thread=integer(v.get("Reg/Trd")), stream=integer(v.get("Strm")),
            correlation_id=integer(v.get("CorrId")), device=v.get("Device"), source=source))
    return trace
