"""Rows of an engine joined with the analyzer: what each row's layers cost, what it achieved, and where the
time goes by layer type.

The analysis is BVLC Caffe's counting (``--convention caffe``: its pooling rule and its parameter blobs),
the network the engines run, at the run's batch. A row's data volume is what an unfused execution of its
layers would read and write, with the blobs passed between its own layers left out (a fused group keeps
them on chip, or at least need not): its parameters, the blobs it reads from outside, the blobs it writes
(a blob written in place counts once). Bytes are at the run's precision (2 per element under fp16 or bf16,
else 4). From these and a row's median time: achieved GMAC/s and GB/s, arithmetic intensity (MACs per
byte, as ``harness analyze --metrics`` gives it), and with a device spec the row's roofline bound
(:func:`harness.analysis.roofline.layer_bound`) and how close the row came to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analysis.volume import DataVolume
from harness.layers.base import count
from harness.results.median import median_interval

if TYPE_CHECKING:
    from harness.analysis.analyzer import LayerStats, NetAnalysis
    from harness.analysis.roofline import DeviceSpec
    from harness.backends.base import EngineLayer
    from harness.layertime.record import LayerEntry, LayerProfile, RowTime

#: the row kind of a step no prototxt layer names (Caffe's Split, ONNX Runtime's layout changes)
ADDED = "added by the engine"
#: Caffe layer type -> the kind the summaries group it under (convolutions are split by shape: category())
KINDS = {"InnerProduct": "fully connected", "Pooling": "pooling", "BatchNorm": "BatchNorm, Scale",
         "Scale": "BatchNorm, Scale", "ReLU": "activation", "PReLU": "activation", "Sigmoid": "activation",
         "TanH": "activation", "ELU": "activation", "LRN": "LRN", "Concat": "concat", "Eltwise": "eltwise",
         "Softmax": "softmax", "Dropout": "copy, reshape", "Split": "copy, reshape", "Flatten": "copy, reshape",
         "Reshape": "copy, reshape", "Input": "copy, reshape"}
#: kinds that do the network's MACs: a fused row is named after the first of them among its layers
COMPUTE = ("Convolution", "Deconvolution", "InnerProduct")


def category(stats: LayerStats) -> str:
    """A layer's kind as the paper discusses them: '1x1 convolution', '3x3 convolution', '3x3 grouped
    convolution', 'depthwise convolution' (one input channel per group), 'fully connected', 'pooling', ..."""
    if stats.type == "Convolution" and stats.param_shapes and len(stats.param_shapes[0]) == 4:
        _, per_group, kh, kw = stats.param_shapes[0]
        groups = stats.input_shapes[0][1] // per_group if per_group else 1
        if groups > 1 and per_group == 1:
            return "depthwise convolution"
        return f"{kh}x{kw}{' grouped' if groups > 1 else ''} convolution"
    return KINDS.get(stats.type, stats.type)


def bytes_per_element(precision: str | None) -> int:
    """Bytes a blob element takes at a session's precision ('fp32', 'fp16 autocast', 'bf16 autocast', 'tf32')."""
    return 2 if precision and precision.split()[0] in ("fp16", "bf16") else 4


def row_volume(layers: Sequence[LayerStats]) -> DataVolume:
    """MACs, parameters, and the elements a row reads from outside and writes (see the module docstring)."""
    written: dict[str, int] = {}
    read: dict[str, int] = {}
    for stats in layers:
        for bottom, shape in zip(stats.bottoms, stats.input_shapes, strict=True):
            if bottom not in written:
                read.setdefault(bottom, count(shape))
        for top, shape in zip(stats.tops, stats.output_shapes, strict=True):
            written[top] = count(shape)
    return DataVolume(sum(s.macs for s in layers), sum(s.params for s in layers), sum(read.values()),
                      sum(written.values()))


def join_rows(units: Sequence[EngineLayer], passes: Sequence[Sequence[float]], analysis: NetAnalysis,
              element_bytes: int) -> tuple[list[RowTime], list[LayerEntry]]:
    """The engine's rows with their time statistics over ``passes`` (seconds per unit per pass) and their
    layers' costs; and every prototxt layer with its kind, its MACs and the row that ran it (None: no row did)."""
    from harness.layertime.record import LayerEntry, RowTime

    stats = {s.name: s for s in analysis.layers}
    times = np.asarray(passes, dtype=np.float64).reshape(len(passes), len(units))
    rows = []
    for unit, column in zip(units, times.T, strict=True):
        members = [stats[name] for name in unit.layers if name in stats]
        compute = next((s for s in members if s.type in COMPUTE), members[0] if members else None)
        volume = row_volume(members)
        low, high, coverage = median_interval(column)
        rows.append(RowTime(
            name=unit.name, layers=list(unit.layers), types=[s.type for s in members], ops=list(unit.ops),
            note=unit.note, category=category(compute) if compute is not None else KINDS.get(unit.ops[0], ADDED),
            median_s=float(np.median(column)), ci_low_s=low, ci_high_s=high, ci_coverage=coverage,
            mean_s=float(column.mean()), min_s=float(column.min()), max_s=float(column.max()),
            macs=volume.macs, params=volume.weights, input_elements=volume.inputs, output_elements=volume.outputs,
            bytes_moved=volume.elements * element_bytes))
    ran_in = {layer: unit.name for unit in units for layer in unit.layers}
    return rows, [LayerEntry(s.name, s.type, category(s), s.macs, ran_in.get(s.name)) for s in analysis.layers]


# ---- figures of a measured row ---------------------------------------------------------------------------

def row_figures(profile: LayerProfile, row: RowTime, spec: DeviceSpec | None = None) -> dict[str, Any]:
    """A row as a table shows it: its time and share of the rows' time, its MACs and share, the rates it
    achieved and its arithmetic intensity; with ``spec``, its roofline bound and how close it came."""
    total_s = profile.rows_sum_s
    total_macs = sum(r.macs for r in profile.rows)
    seconds = row.median_s
    out: dict[str, Any] = {
        "row": row.name, "layers": len(row.layers), "category": row.category, "ops": "+".join(row.ops),
        "note": row.note, "median_ms": seconds * 1e3, "ci_low_ms": row.ci_low_s * 1e3,
        "ci_high_ms": row.ci_high_s * 1e3, "time_pct": 100 * seconds / total_s if total_s else None,
        "macs": row.macs, "macs_pct": 100 * row.macs / total_macs if total_macs else None, "params": row.params,
        "bytes_moved": row.bytes_moved,
        "gmacs_per_s": row.macs / seconds / 1e9 if seconds > 0 and row.macs else None,
        "gb_per_s": row.bytes_moved / seconds / 1e9 if seconds > 0 and row.bytes_moved else None,
        "ai_mac_per_byte": row.macs / row.bytes_moved if row.bytes_moved else None}
    if spec is not None:
        out.update(roofline_figures(profile, row, spec))
    return out


def roofline_figures(profile: LayerProfile, row: RowTime, spec: DeviceSpec) -> dict[str, Any]:
    """The row's roofline bound on ``spec`` at the run's precision (fp16 peaks for 2-byte runs), whether it
    binds on compute or bandwidth, and the share of the measured time the bound is."""
    from harness.analysis.roofline import layer_bound

    dtype = "fp16" if profile.bytes_per_element == 2 else "fp32"
    elements = row.params + row.input_elements + row.output_elements
    bound = layer_bound(DataVolume(row.macs, row.params, row.input_elements, row.output_elements), spec)
    t_bound = bound[f"t_bound_{dtype}_s"]
    return {"roofline_dtype": dtype, "bound": bound[f"bound_{dtype}"] if elements else None,
            "t_bound_ms": t_bound * 1e3, "roofline_pct": 100 * t_bound / row.median_s if row.median_s > 0 else None}


def category_summary(profile: LayerProfile) -> list[dict[str, Any]]:
    """Per layer kind: its share of the rows' time and of the MACs, most time first."""
    total_s = profile.rows_sum_s
    total_macs = sum(r.macs for r in profile.rows)
    kinds: dict[str, list[RowTime]] = {}
    for row in profile.rows:
        kinds.setdefault(row.category, []).append(row)
    out = [{"category": kind, "rows": len(rows), "time_ms": sum(r.median_s for r in rows) * 1e3,
            "time_pct": 100 * sum(r.median_s for r in rows) / total_s if total_s else None,
            "macs": sum(r.macs for r in rows),
            "macs_pct": 100 * sum(r.macs for r in rows) / total_macs if total_macs else None}
           for kind, rows in kinds.items()]
    return sorted(out, key=lambda r: -(r["time_ms"]))


def layer_placement(profile: LayerProfile) -> list[dict[str, Any]]:
    """Every prototxt layer: the row it ran in, that row's time when the row is the layer alone, and how it
    ran (its own row, fused into a group, or no work in this engine)."""
    rows = {r.name: r for r in profile.rows}
    out = []
    for entry in profile.layers:
        layer, name = entry.name, entry.row
        row = rows.get(name) if name is not None else None
        alone = row is not None and row.layers == [layer]
        if row is None:  # no node, layer or module of the engine ran it: it took no time there
            how, time_s = f"removed by {profile.config.backend}: nothing ran it (an identity at inference)", 0.0
        else:
            how, time_s = (row.note or "own row", row.median_s) if alone else (f"fused: ran in '{name}'", None)
        out.append({"layer": layer, "type": entry.type, "kind": entry.category, "macs": entry.macs, "ran_in": name,
                    "time_s": time_s, "group_time_s": None if row is None or alone else row.median_s, "how": how})
    return out


def setup_label(profile: LayerProfile) -> str:
    """The engine a profile ran on: backend and mode."""
    c = profile.config
    return f"{c.backend} ({c.mode})" if c.mode else c.backend


def layer_macs_pct(profile: LayerProfile) -> dict[str, float]:
    """Each layer kind's share of the network's MACs, layer by layer as the prototxt has them (the same on
    every engine; a fused row's MACs are its layers' together, counted under the row's kind)."""
    total = sum(entry.macs for entry in profile.layers)
    shares: dict[str, float] = {}
    for entry in profile.layers:
        shares[entry.category] = shares.get(entry.category, 0.0) + (100 * entry.macs / total if total else 0.0)
    return shares


def side_by_side(profiles: Sequence[LayerProfile]) -> list[dict[str, Any]]:
    """Per (network, device, batch) measured by several engines: each layer kind's share of the MACs, layer by
    layer (:func:`layer_macs_pct`), and its share of each engine's time, in the engine's own rows (a BatchNorm
    fused into a convolution's row counts as convolution time there)."""
    groups: dict[tuple[str, str, int], list[LayerProfile]] = {}
    for p in profiles:
        if p.status == "ok":
            groups.setdefault((p.config.network, p.config.device, p.config.batch), []).append(p)
    out = []
    for (network, device, batch), members in groups.items():
        if len(members) < 2:
            continue
        summaries = {setup_label(p): {r["category"]: r for r in category_summary(p)} for p in members}
        macs = layer_macs_pct(members[0])
        kinds = list(dict.fromkeys([*macs, *(k for s in summaries.values() for k in s)]))
        rows = [{"category": k, "macs_pct": macs.get(k, 0.0),
                 "time_pct": {e: s[k]["time_pct"] if k in s else None for e, s in summaries.items()}} for k in kinds]
        rows.sort(key=lambda r: -(r["macs_pct"] or 0))
        out.append({"network": network, "device": device, "batch": batch, "engines": list(summaries),
                    "categories": rows})
    return out


def profile_doc(profile: LayerProfile, spec: DeviceSpec | None = None) -> dict[str, Any]:
    """A profile as ``harness layers --format json`` gives it: the configuration, the whole forward beside the
    rows' sum and the gap, what per-layer timing cost, every row with its figures, every prototxt layer with
    the row it ran in, and the share of time vs share of MACs per layer kind."""
    c = profile.config
    doc: dict[str, Any] = {"key": profile.key, "network": c.network, "backend": c.backend, "mode": c.mode,
                           "device": c.device, "hardware": c.hardware, "batch": c.batch, "status": profile.status,
                           "message": profile.message}
    if profile.status != "ok" or profile.whole is None or profile.instrumented is None:
        return doc
    whole, instrumented = profile.whole, profile.instrumented
    pass_sum = profile.pass_sum_s or 0.0
    doc.update({
        "mechanism": profile.mechanism, "precision": profile.precision,
        "contended": (profile.contended or {}).get("reasons") or None, "iterations": whole.iterations,
        "whole_forward_ms": {"median": whole.median_s * 1e3, "ci_low": whole.ci_low_s * 1e3,
                             "ci_high": whole.ci_high_s * 1e3, "ci_coverage": whole.ci_coverage},
        "sum_of_rows_ms": pass_sum * 1e3, "sum_of_row_medians_ms": profile.rows_sum_s * 1e3,
        "gap_pct": 100 * (profile.gap or 0.0), "instrumented_pass_ms": instrumented.median_s * 1e3,
        "timing_overhead_pct": 100 * (profile.overhead or 0.0),
        "rows": [row_figures(profile, r, spec) for r in profile.rows],
        "layers": layer_placement(profile), "summary": category_summary(profile)})
    return doc
