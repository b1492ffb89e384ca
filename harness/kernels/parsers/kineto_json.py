"""PyTorch profiler / Kineto chrome-trace JSON (``prof.export_chrome_trace`` or the TensorBoard plugin's files).

``{"traceEvents": [...]}`` (a bare list is accepted too) of complete events (``"ph": "X"``, ``ts``/``dur``
in microseconds). GPU work: ``cat`` "kernel", "gpu_memcpy", "gpu_memset" with args "device", "stream",
"correlation", "grid", "block", "registers per thread", "External id". Launches: ``cat`` "cuda_runtime"
/ "cuda_driver" with args "correlation". Host: "cpu_op" (aten ops, args "External id") and
"user_annotation" (``torch.profiler.record_function`` ranges - the harness's ``layer:<name>`` ranges).
"""

from __future__ import annotations

import json
import math

from harness.kernels.events import HostRange, KernelEvent, KernelTrace
from harness.kernels.parsers.common import ProfileFormatError

GPU_CATEGORIES = {"kernel", "gpu_memcpy", "gpu_memset"}
LAUNCH_CATEGORIES = {"cuda_runtime", "cuda_driver"}
US = 1e3  # Kineto timestamps and durations are microseconds


def looks_like_kineto(doc: object) -> bool:
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    return isinstance(events, list) and any(isinstance(e, dict) and "ph" in e for e in events[:2000])


class _Event:
    """One trace event's fields, each checked for the type Kineto writes; a wrong one is an error naming
    the event (a file with one is not a profiler's output)."""

    def __init__(self, event: dict, index: int, path: str) -> None:
        self.event, self.where = event, f"{path}: traceEvents[{index}]"

    def _bad(self, key: str, expected: str, value: object) -> ProfileFormatError:
        shown = repr(value)
        return ProfileFormatError(f"{self.where}: '{key}' must be {expected}, got "
                                  f"{shown[:40] + '...' if len(shown) > 40 else shown}")

    def number(self, key: str, default: float | None = None, non_negative: bool = False) -> float:
        value = self.event.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value) \
                or (non_negative and value < 0):
            raise self._bad(key, "a finite number" + (" >= 0" if non_negative else ""), value)
        return float(value)

    def text(self, key: str, required: bool = False) -> str:
        value = self.event.get(key, None if required else "")
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def args(self) -> dict:
        value = self.event.get("args") or {}
        if not isinstance(value, dict):
            raise self._bad("args", "an object", value)
        return value

    def integer(self, args: dict, key: str) -> int | None:
        value = args.get(key)
        if value is None:
            return None
        if not _int64(value):
            raise self._bad(f"args.{key}", "an integer" + (" of 64 bits" if type(value) is int else ""), value)
        return value


def _finite(value: int | float) -> bool:
    """A JSON number that is a finite double (JSON integers have no size limit; a double has)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63


def _dim3(value: object) -> tuple[int, int, int] | None:
    ok = isinstance(value, list) and len(value) == 3 and all(_int64(v) for v in value)
    return tuple(value) if ok else None  # type: ignore[arg-type,return-value]


def parse(text: str, path: str) -> KernelTrace:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ProfileFormatError(f"{path}: JSON nested too deeply to be a chrome trace") from None
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise ProfileFormatError(f"{path}: JSON without a 'traceEvents' list (expected a Kineto chrome trace)")
    trace = KernelTrace(source="kineto-json", path=path)
    for i, raw in enumerate(events):
        if not isinstance(raw, dict) or raw.get("ph") != "X" or "ts" not in raw:
            continue
        e = _Event(raw, i, path)
        cat, args = e.text("cat"), e.args()
        ts, dur = e.number("ts") * US, e.number("dur", 0.0, non_negative=True) * US
        if cat in GPU_CATEGORIES:
            device = args.get("device")
            trace.events.append(KernelEvent(
                name=e.text("name", required=True), start_ns=ts, duration_ns=dur, grid=_dim3(args.get("grid")),
                block=_dim3(args.get("block")), registers_per_thread=e.integer(args, "registers per thread"),
                stream=e.integer(args, "stream"), correlation_id=e.integer(args, "correlation"),
                device=None if device is None else str(device), source=trace.source))
        elif cat in LAUNCH_CATEGORIES and (correlation := e.integer(args, "correlation")) is not None:
            trace.launches[correlation] = (ts, raw.get("tid"))
        elif cat == "user_annotation":
            trace.ranges.append(HostRange(e.text("name"), ts, ts + dur, raw.get("tid"), "annotation"))
        elif cat == "cpu_op":
            trace.cpu_ops.append(HostRange(e.text("name"), ts, ts + dur, raw.get("tid"), "cpu_op"))
    if not trace.events and not trace.cpu_ops:
        raise ProfileFormatError(f"{path}: Kineto trace with neither GPU kernels nor cpu_op events")
    if not trace.events:
        trace.notes.append("no GPU kernels in this trace (a CPU-only run): only CPU ops were recorded")
    trace.events.sort(key=lambda ev: ev.start_ns or 0.0)
    return trace
