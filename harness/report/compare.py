"""Backend comparison after a bench: each backend/mode's latency and throughput relative to a baseline.

The baseline of a (network, batch, device) group is Caffe in its default mode when it ran there, else
PyTorch eager fp32 (the faithful conversion). Ratios are ``speedup = baseline median latency /
median latency`` and ``throughput ratio = throughput / baseline throughput``; rows whose record is not
``ok`` keep their status and message and carry no numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.results.records import Record

#: PyTorch's faithful mode, the baseline where Caffe did not run
FAITHFUL_PYTORCH = "eager-fp32"


@dataclass(frozen=True)
class ComparisonRow:
    network: str
    batch: int
    device: str
    backend: str
    mode: str
    status: str
    baseline: str | None  # "caffe" or "pytorch/eager-fp32"; None when the group has no baseline
    latency_ms: float | None = None
    throughput_fps: float | None = None
    speedup: float | None = None  # > 1: faster than the baseline
    throughput_ratio: float | None = None
    message: str | None = None


def _is_baseline(rec: Record, backend: str) -> bool:
    c = rec.config
    if rec.status != "ok" or rec.latency is None or c.backend != backend:
        return False
    if backend == "caffe":  # Caffe as the paper ran it: its default engines (cuDNN on a GPU build), or its own
        return c.mode in (None, "cudnn") or (c.mode == "caffe" and c.device_kind == "cpu")
    return c.mode in (None, FAITHFUL_PYTORCH)


def _baseline(group: list[Record]) -> Record | None:
    for backend in ("caffe", "pytorch"):
        for rec in group:
            if _is_baseline(rec, backend):
                return rec
    return None


def comparison_table(records: Iterable[Record]) -> list[ComparisonRow]:
    """One row per record, grouped by (network, batch, device), each relative to its group's baseline."""
    groups: dict[tuple[str, int, str], list[Record]] = {}
    for rec in records:
        groups.setdefault((rec.config.network, rec.config.batch, rec.config.device), []).append(rec)
    rows: list[ComparisonRow] = []
    for (network, batch, device), group in groups.items():
        base = _baseline(group)
        base_name = None if base is None else (
            base.config.backend if base.config.backend == "caffe" else f"pytorch/{FAITHFUL_PYTORCH}")
        for rec in sorted(group, key=lambda r: (r is not base, r.config.backend, r.config.mode or "")):
            mode = rec.config.mode or "default"
            if rec.status != "ok" or rec.latency is None:
                rows.append(ComparisonRow(network, batch, device, rec.config.backend, mode, rec.status, base_name,
                                          message=rec.message))
                continue
            lat, thr = rec.latency.median_s, rec.latency.throughput_fps
            speedup = ratio = None
            if base is not None and base.latency is not None:
                speedup = base.latency.median_s / lat if lat > 0 else None
                ratio = thr / base.latency.throughput_fps if base.latency.throughput_fps > 0 else None
            rows.append(ComparisonRow(network, batch, device, rec.config.backend, mode, rec.status, base_name,
                                      lat * 1e3, thr, speedup, ratio))
    return rows


def format_comparison(rows: list[ComparisonRow]) -> str:
    """The table as text, one block per (network, batch, device)."""
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines: list[str] = []
    group = None
    for r in rows:
        if (r.network, r.batch, r.device) != group:
            group = (r.network, r.batch, r.device)
            baseline = r.baseline or "nothing: no baseline ran"
            lines.append(f"{r.network}  batch {r.batch}  {r.device}  (relative to {baseline})")
            lines.append(f"  {'backend':<12} {'mode':<16} {'status':<11} {'latency ms':>10} {'img/s':>9} "
                         f"{'speedup':>8} {'thr ratio':>9}")
        tail = f"  {r.message}" if r.message else ""
        lines.append(f"  {r.backend:<12} {r.mode:<16} {r.status:<11} {num(r.latency_ms, '10.3f')} "
                     f"{num(r.throughput_fps, '9.1f')} {num(r.speedup, '8.2f')} "
                     f"{num(r.throughput_ratio, '9.2f')}{tail}")
    return "\n".join(lines)
