"""Table III beside the paper, one column group per device (and per backend/mode on it), and the table of
where and with what each measurement was taken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.paper import paper_table
from harness.report import measured

# Metadata shown for every setup (harness.results.metadata keys), in this order.
SOFTWARE_KEYS = ("host", "cpu", "cpu_count", "os", "gpu_name", "driver", "cuda_driver",
                 "cuda", "cudnn", "cublas", "power_limit_w", "python", "numpy", "harness", "git_revision")


@dataclass(frozen=True)
class Metric:
    """One Table III column: how it is read from records and at which batch."""

    key: str  # the paper CSV's column
    title: str
    unit: str
    paper_unit: str
    batch: int | None  # None: best over every measured batch
    value: Callable[[pd.DataFrame], pd.Series]
    note: str


def _footprint_mib(frame: pd.DataFrame) -> pd.Series:
    return measured.footprint_bytes(frame) / measured.MIB


METRICS: tuple[Metric, ...] = (
    Metric("inference_time_ms", "Inference time", "ms", "ms", measured.LATENCY_BATCH, measured.latency_ms,
           "median forward latency at B=1 (the paper: forward-only, B=1)"),
    Metric("memory_footprint_mb", "Memory footprint", "MiB", "MB", measured.MEMORY_BATCH, _footprint_mib,
           "peak at B=1; GPU: whole-device memory used as nvidia-smi shows it (the paper's quantity); "
           "CPU: peak resident set of the process, which is NOT comparable to the paper's GPU figure"),
    Metric("energy_efficiency_gmacs_per_j", "Energy efficiency", "10^9 MACs/J", "10^9 MACs/J", measured.ENERGY_BATCH,
           measured.energy_efficiency, "at B=4 as in the paper; total energy of the window"),
    Metric("throughput_fps", "Throughput", "images/s", "images/s", None, measured.throughput_fps,
           "the highest over the measured batches (the paper's 42 FPS for MobileNet is 1/23.6 ms at B=90, "
           "so its throughput is taken at a large batch); the batch is in the throughput-batch table"),
)


def paper_table3() -> dict[str, dict[str, str]]:
    return {row["model"]: row for row in paper_table("table3")}


def beside_paper(metric: Metric, frame: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """Networks (zoo order) x [paper, then per setup: measured and measured/paper]."""
    values = measured.per_network(frame, metric.batch, metric.value(frame))
    if values.empty:
        return pd.DataFrame()
    paper = paper_table3()
    rows = []
    for network, paper_name in paper_names.items():
        if network not in values.index:
            continue
        theirs = float(paper[paper_name][metric.key]) if paper_name in paper else float("nan")
        row: dict[str, object] = {"network": paper_name, f"paper (P100) {metric.paper_unit}": theirs}
        for setup in values.columns:
            ours = values.at[network, setup]
            row[f"{setup} {metric.unit}"] = ours
            row[f"{setup} ÷ paper"] = ours / theirs if theirs and np.isfinite(ours) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def throughput_batches(frame: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    best = measured.best_throughput_batch(frame)
    if best.empty:
        return pd.DataFrame()
    table = best.pivot_table(index="network", columns="setup", values="batch", aggfunc="first")
    table = table.reindex([n for n in paper_names if n in table.index])
    table.index = [paper_names[n] for n in table.index]
    return table.rename_axis("network").reset_index()


def setups(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per setup, one row per fact: device, backend, mode, what it ran, and the software and
    hardware metadata recorded (transposed, because there are many more facts than setups)."""
    rows = []
    for setup, group in frame.groupby("setup", sort=True):
        first = group.iloc[0]
        row: dict[str, object] = {
            "setup": setup, "device": first["device_id"], "kind": first["device_kind"],
            "device name": first["device_name"], "backend": first["backend"],
            "mode": first["mode"] if isinstance(first.get("mode"), str) else "default",
            "records": len(group),
            "statuses": ", ".join(f"{k} {v}" for k, v in group["status"].value_counts().sort_index().items()),
            "batches": ",".join(str(b) for b in sorted(group["batch"].unique())),
            "networks": group["network"].nunique(),
            "when": _when(group),
        }
        gpu_memory = group.get("meta.memory_total_bytes", pd.Series(dtype=float)).dropna()
        if len(gpu_memory):
            row["GPU memory (MiB)"] = float(gpu_memory.iloc[0]) / measured.MIB
        keys = [k for k in SOFTWARE_KEYS if f"meta.{k}" in group] + sorted(
            c[len("meta."):] for c in group.columns if c.startswith("meta.backend_"))
        for key in keys:
            values = group[f"meta.{key}"].dropna().map(_text).unique()
            # A value that differs per configuration (worker pid, model file) describes a record, not the
            # setup: it stays in the results export and is left out here.
            if len(values) == 1 or (len(values) > 1 and not key.startswith("backend_")):
                row[key] = "; ".join(sorted(values))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("setup").T.fillna("–")
    table.insert(0, "setup", table.index)
    return table.reset_index(drop=True)


def _when(group: pd.DataFrame) -> str | None:
    """``2026-11-24 06:16 to 06:18`` (UTC, as recorded)."""
    if "started_at" not in group or "finished_at" not in group:
        return None
    first, last = group["started_at"].dropna().min(), group["finished_at"].dropna().max()
    if not isinstance(first, str) or not isinstance(last, str):
        return None
    end = last[11:16] if last[:10] == first[:10] else f"{last[:10]} {last[11:16]}"
    return f"{first[:10]} {first[11:16]} to {end}"


def status_table(frame: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """Every configuration that did not end ok, with its one-line reason (nothing measured is hidden)."""
    bad = frame[frame["status"] != "ok"]
    if bad.empty:
        return pd.DataFrame()
    out = bad[["setup", "network", "batch", "status", "message"]].copy()
    out["network"] = out["network"].map(lambda n: paper_names.get(n, n))
    return out.sort_values(["setup", "network", "batch"]).reset_index(drop=True)


def _text(value: object) -> str:
    """A metadata value as text; counts read back as floats (NaN-padded columns) print as integers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
