"""PyTorch profiler / Kineto chrome-trace JSON (``prof.export_chrome_trace`` or the TensorBoard plugin's files).

``{"traceEvents": [...]}`` (a bare list is accepted too) of complete events (``"ph": "X"``, ``ts``/``dur``
in microseconds). GPU work: ``cat`` "kernel", "gpu_memcpy", "gpu_memset" with args "device", "stream",
"correlation", "grid", "block", "registers per thread", "External id". Launches: ``cat`` "cuda_runtime"
/ "cuda_driver" with args "correlation". Host: "cpu_op" (aten ops, args "External id") and
"user_annotation" (``torch.profiler.record_function`` ranges - the harness's ``layer:<name>`` ranges).
"""

from __future__ import annotations

import json

from harness.kernels.events import HostRange, KernelEvent, KernelTrace
from harness.kernels.parsers.common import ProfileFormatError

GPU_CATEGORIES = {"kernel", "gpu_memcpy", "gpu_memset"}
LAUNCH_CATEGORIES = {"cuda_runtime", "cuda_driver"}
US = 1e3  # Kineto timestamps and durations are microseconds


def looks_like_kineto(doc: object) -> bool:
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    return isinstance(events, list) and any(isinstance(e, dict) and "ph" in e for e in events[:2000])


def parse(text: str, path: str) -> KernelTrace:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise ProfileFormatError(f"{path}: JSON without a 'traceEvents' list (expected a Kineto chrome trace)")
    trace = KernelTrace(source="kineto-json", path=path)
    for e in events:
        if not isinstance(e, dict) or e.get("ph") != "X" or "ts" not in e:
            continue
        cat, args = e.get("cat", ""), e.get("args") or {}
        ts, dur = float(e["ts"]) * US, float(e.get("dur", 0.0)) * US
        if cat in GPU_CATEGORIES:
            grid, block = args.get("grid"), args.get("block")
            trace.events.append(KernelEvent(
                name=e.get("name", ""), start_ns=ts, duration_ns=dur,
                grid=tuple(grid) if isinstance(grid, list) and len(grid) == 3 else None,
                block=tuple(block) if isinstance(block, list) and len(block) == 3 else None,
                registers_per_thread=args.get("registers per thread"), stream=args.get("stream"),
                correlation_id=args.get("correlation"),
                device=None if args.get("device") is None else str(args["device"]), source=trace.source))
        elif cat in LAUNCH_CATEGORIES and args.get("correlation") is not None:
            trace.launches[int(args["correlation"])] = (ts, e.get("tid"))
        elif cat == "user_annotation":
            trace.ranges.append(HostRange(e.get("name", ""), ts, ts + dur, e.get("tid"), "annotation"))
        elif cat == "cpu_op":
            trace.cpu_ops.append(HostRange(e.get("name", ""), ts, ts + dur, e.get("tid"), "cpu_op"))
    if not trace.events and not trace.cpu_ops:
        raise ProfileFormatError(f"{path}: Kineto trace with neither GPU kernels nor cpu_op events")
    if not trace.events:
        trace.notes.append("no GPU kernels in this trace (a CPU-only run): only CPU ops were recorded")
    trace.events.sort(key=lambda ev: ev.start_ns or 0.0)
    return trace
