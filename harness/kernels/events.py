"""The one kernel-event table every profiler parser produces.

A trace (``--print-gpu-trace``, ``cuda_gpu_trace``, SQLite exports, Kineto, ncu) gives one
:class:`KernelEvent` per kernel (or memcpy/memset) execution. A summary (``--print-gpu-summary``,
``cuda_gpu_kern_sum``) has no individual executions: it gives one :class:`KernelSummary` per kernel
name (total time and calls) and nothing else - a different type, so that nobody mistakes an
aggregate row for an execution. Both reduce to :meth:`KernelTrace.totals_by_name`, which is all the
family attribution needs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

Dim3 = tuple[int, int, int]


@dataclass(frozen=True)
class KernelEvent:
    """One execution of a kernel (or a memcpy/memset) on the GPU."""

    name: str  # demangled
    duration_ns: float
    start_ns: float | None = None  # None where the tool serialises kernels (ncu) and keeps no timeline
    grid: Dim3 | None = None
    block: Dim3 | None = None
    registers_per_thread: int | None = None
    stream: int | None = None
    correlation_id: int | None = None
    device: str | None = None
    source: str = ""  # the format it came from, e.g. "nvprof-csv-trace"

    @property
    def end_ns(self) -> float | None:
        return None if self.start_ns is None else self.start_ns + self.duration_ns


@dataclass(frozen=True)
class KernelSummary:
    """An aggregate row of a summary report: ``calls`` executions of ``name`` took ``total_ns``."""

    name: str
    total_ns: float
    calls: int
    source: str = ""


@dataclass(frozen=True)
class HostRange:
    """A named host-side interval: an NVTX range, a Kineto user annotation or a framework op."""

    name: str
    start_ns: float
    end_ns: float
    thread: int | None = None
    kind: str = "nvtx"  # "nvtx", "annotation" (torch record_function) or "cpu_op"


@dataclass(frozen=True)
class KernelMetrics:
    """Hardware-counter metrics of one kernel (nvprof ``--metrics`` averages, or one ncu profile)."""

    name: str
    invocations: int
    values: dict[str, float]  # metric name -> value, in the tool's own metric names and units
    source: str = ""


@dataclass
class KernelTrace:
    """Everything one profiler file gives: executions or summary rows, host ranges, metrics."""

    source: str  # format name
    path: str
    events: list[KernelEvent] = field(default_factory=list)
    summaries: list[KernelSummary] = field(default_factory=list)
    ranges: list[HostRange] = field(default_factory=list)
    #: correlation id -> (host timestamp ns, host thread) of the API call that launched the kernel
    launches: dict[int, tuple[float, int | None]] = field(default_factory=dict)
    metrics: list[KernelMetrics] = field(default_factory=list)
    cpu_ops: list[HostRange] = field(default_factory=list)  # Kineto cpu_op events (also on CPU-only runs)
    notes: list[str] = field(default_factory=list)

    @property
    def is_summary(self) -> bool:
        return not self.events and bool(self.summaries)

    def totals_by_name(self) -> dict[str, tuple[float, int]]:
        """Kernel name -> (total ns, calls), from executions or from summary rows."""
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        for e in self.events:
            totals[e.name][0] += e.duration_ns
            totals[e.name][1] += 1
        for s in self.summaries:
            totals[s.name][0] += s.total_ns
            totals[s.name][1] += s.calls
        return {name: (t, int(c)) for name, (t, c) in totals.items()}

    def span_ns(self) -> float | None:
        """Wall time from the first start to the last end on the GPU, where the trace has a timeline."""
        timed = [e for e in self.events if e.start_ns is not None]
        if not timed:
            return None
        return max(e.end_ns for e in timed) - min(e.start_ns for e in timed)  # type: ignore[type-var,operator]
