"""% of GPU time per kernel family, for a whole trace and per layer.

Denominator: the summed durations of every GPU activity in the trace (kernels, plus memcpy/memset
unless ``include_memory=False``) - "GPU kernel time", what nvprof/nvvp's "Time(%)" column and the
paper's Table III percentages use. It is NOT wall time: overlapping kernels on several streams are
counted once each, and idle gaps are not counted. Where the trace has a timeline, the GPU span
(first start to last end) is reported beside it for reference.

Per layer: a kernel belongs to the innermost host range named ``layer:<name>`` (see
:mod:`harness.kernels.ranges`) that contains the host call which launched it (matched through the
correlation id). Kernels launched outside any layer range go to ``(outside layers)``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

from harness.kernels.events import HostRange, KernelEvent, KernelTrace
from harness.kernels.ranges import LAYER_PREFIX
from harness.kernels.taxonomy import MEMORY, PAPER_FAMILIES, classify

OUTSIDE = "(outside layers)"
DENOMINATOR = "GPU kernel time (sum of GPU activity durations; not wall time)"


@dataclass(frozen=True)
class FamilyShare:
    family: str
    total_ns: float
    calls: int
    pct: float  # of Attribution.total_ns


@dataclass
class Attribution:
    source: str
    denominator: str
    total_ns: float
    span_ns: float | None  # GPU wall span where the trace has a timeline
    families: list[FamilyShare]
    kernels: list[tuple[str, str, float, int]]  # (family, name, total ns, calls), longest first
    layers: dict[str, dict[str, float]] = field(default_factory=dict)  # layer -> family -> ns
    notes: list[str] = field(default_factory=list)

    def pct(self, family: str) -> float:
        return next((f.pct for f in self.families if f.family == family), 0.0)

    def paper_columns(self) -> dict[str, float]:
        """Table III's last three columns: % of GPU kernel time in gemv2T, gemv2N, gemmk1."""
        return {f: self.pct(f) for f in PAPER_FAMILIES}

    def to_json(self) -> dict:
        return {
            "source": self.source, "denominator": self.denominator, "total_ns": self.total_ns,
            "span_ns": self.span_ns,
            "families": [{"family": f.family, "total_ns": f.total_ns, "calls": f.calls, "pct": f.pct}
                         for f in self.families],
            "layers": self.layers, "notes": self.notes,
        }


def attribute(trace: KernelTrace, include_memory: bool = True) -> Attribution:
    totals = {n: tc for n, tc in trace.totals_by_name().items() if include_memory or classify(n) != MEMORY}
    by_family: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    kernels = []
    for name, (ns, calls) in totals.items():
        fam = classify(name)
        by_family[fam][0] += ns
        by_family[fam][1] += calls
        kernels.append((fam, name, ns, calls))
    total = sum(ns for ns, _ in by_family.values())
    shares = sorted((FamilyShare(f, ns, int(c), 100.0 * ns / total if total else 0.0)
                     for f, (ns, c) in by_family.items()), key=lambda s: -s.total_ns)
    denominator = DENOMINATOR if include_memory else DENOMINATOR.replace("GPU activity", "kernel (no memcpy)")
    result = Attribution(trace.source, denominator, total, trace.span_ns(), shares,
                         sorted(kernels, key=lambda k: -k[2]), notes=list(trace.notes))
    events = [e for e in trace.events if include_memory or classify(e.name) != MEMORY]
    layer_ranges = [r for r in trace.ranges if r.name.startswith(LAYER_PREFIX)]
    if layer_ranges and events:
        result.layers = per_layer(events, layer_ranges, trace.launches)
    elif events and not trace.is_summary:
        result.notes.append("no per-layer breakdown: the trace has no 'layer:<name>' ranges")
    return result


def per_layer(events: list[KernelEvent], ranges: list[HostRange],
              launches: dict[int, tuple[float, int | None]]) -> dict[str, dict[str, float]]:
    """Layer -> family -> ns, assigning each kernel to the innermost layer range around its launch."""
    ordered = sorted(ranges, key=lambda r: r.start_ns)
    starts = [r.start_ns for r in ordered]
    table: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        launch = launches.get(e.correlation_id) if e.correlation_id is not None else None
        layer = OUTSIDE
        if launch is not None:
            t, thread = launch
            best: HostRange | None = None
            for r in ordered[:bisect.bisect_right(starts, t)]:
                same_thread = r.thread is None or thread is None or r.thread == thread
                if r.start_ns <= t <= r.end_ns and same_thread and (best is None or r.start_ns >= best.start_ns):
                    best = r
            if best is not None:
                layer = best.name[len(LAYER_PREFIX):]
        table[layer][classify(e.name)] += e.duration_ns
    return {layer: dict(fams) for layer, fams in table.items()}
