"""Table III beside the paper, one column group per device (and per backend/mode on it), and the tables of
where and with what each measurement was taken.

Every table carries a ``synthetic`` column: True on a row that holds a figure from a synthetic record or
profile (tests/data/synthetic-*), so no CSV of the report can pass made-up numbers off as measurements.
"""

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


def setup_columns(frame: pd.DataFrame, setup: str) -> list[str]:
    """The columns of a table whose name starts with the setup label (its column group)."""
    return [c for c in frame.columns if str(c).startswith(setup + " ")]


def beside_paper(metric: Metric, frame: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """Networks (zoo order) x [paper, then per setup: measured and measured/paper]."""
    values = measured.per_network(frame, metric.batch, metric.value(frame))
    if values.empty:
        return pd.DataFrame()
    made_up = measured.synthetic_setups(frame)
    paper = paper_table3()
    rows = []
    for network, paper_name in paper_names.items():
        if network not in values.index:
            continue
        theirs = float(paper[paper_name][metric.key]) if paper_name in paper else float("nan")
        row: dict[str, object] = {"network": paper_name, f"paper (P100) {metric.paper_unit}": theirs}
        for setup in measured.setup_order(values.columns):
            ours = values.at[network, setup]
            row[f"{setup} {metric.unit}"] = ours
            row[f"{setup} ÷ paper"] = ours / theirs if theirs and np.isfinite(ours) else float("nan")
        row["synthetic"] = any(np.isfinite(values.at[network, s]) for s in values.columns if s in made_up)
        rows.append(row)
    return pd.DataFrame(rows)


def throughput_batches(frame: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    best = measured.best_throughput_batch(frame)
    if best.empty:
        return pd.DataFrame()
    table = best.pivot_table(index="network", columns="setup", values="batch", aggfunc="first")
    table = table.reindex([n for n in paper_names if n in table.index])[measured.setup_order(table.columns)]
    made_up = [s for s in table.columns if s in measured.synthetic_setups(frame)]
    table["synthetic"] = table[made_up].notna().any(axis=1) if made_up else False
    table.index = [paper_names[n] for n in table.index]
    return table.rename_axis("network").reset_index()


def setups(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per setup: device, backend, mode, what it ran, and every piece of software and hardware metadata
    recorded (many more columns than rows: the report shows it transposed, one table per device)."""
    rows = []
    for setup in measured.setup_order(frame["setup"]):
        group = frame[frame["setup"] == setup]
        first = group.iloc[0]
        row: dict[str, object] = {
            "setup": setup, "device": first["device_id"], "kind": first["device_kind"],
            "device name": first["device_name"], "backend": first["backend"],
            "mode": first["mode"] if isinstance(first.get("mode"), str) else "default",
            "records": len(group),
            "statuses": ", ".join(f"{k} {v}" for k, v in group["status"].value_counts().sort_index().items()),
            "batches": ",".join(str(b) for b in sorted(group["batch"].unique())),
            "networks": group["network"].nunique(),
            "when": when_range(group),
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
        row["synthetic"] = _synthetic(group)
        rows.append(row)
    return pd.DataFrame(rows)


def transposed(table: pd.DataFrame) -> pd.DataFrame:
    """A one-row-per-setup table shown as one column per setup, one row per fact ("–" where not recorded)."""
    shown = table.drop(columns=["synthetic"]).set_index("setup").T.dropna(how="all").fillna("–").astype(str)
    shown.insert(0, "fact", shown.index)
    shown = shown.reset_index(drop=True)
    marked = table.set_index("setup")["synthetic"]
    shown["synthetic"] = False
    if marked.any():  # one row that says which columns are made up
        shown.loc[len(shown)] = ["SYNTHETIC (made up)", *("yes" if marked[s] else "no" for s in marked.index), True]
    return shown


#: the short device table: what a reader checks first about a setup (harness.results.metadata keys)
ENGINE_VERSION_KEYS = {"caffe": ("backend_caffe_version", "backend_caffe_commit"), "pytorch": ("backend_torch",),
                       "onnxruntime": ("backend_onnxruntime",), "opencv": ("backend_opencv",)}


def devices_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One short row per setup: device, engine and its version, CUDA/cuDNN, precision, date, records."""
    rows = []
    for setup in measured.setup_order(frame["setup"]):
        group = frame[frame["setup"] == setup]
        first = group.iloc[0]
        backend = str(first["backend"])
        version = " ".join(_one(group, f"meta.{k}")[:12] for k in ENGINE_VERSION_KEYS.get(backend, ())
                           if _one(group, f"meta.{k}"))
        cuda = ", ".join(f"{k} {v}" for k in ("cuda", "cudnn") if (v := _one(group, f"meta.{k}")))
        precision = _one(group, "meta.backend_precision")
        tf32 = _one(group, "meta.backend_tf32")
        if tf32 and not tf32.startswith("not applicable"):
            precision += f" (TF32 {tf32})"
        generation = first.get("device_generation")
        rows.append({"setup": setup, "device": f"{first['device_id']}: {first['device_name']}" +
                     (f" ({generation})" if isinstance(generation, str) else ""),
                     "host": first["device_host"], "engine": backend + (f"/{first['mode']}" if
                                                                         isinstance(first.get("mode"), str) else ""),
                     "version": version or "–", "CUDA / cuDNN": cuda or ("–" if first["device_kind"] == "cpu"
                                                                       else "not recorded"),
                     "precision": precision or "not recorded", "date (UTC)": when_range(group) or "not recorded",
                     "records": len(group), "synthetic": _synthetic(group)})
    return pd.DataFrame(rows)


def _one(group: pd.DataFrame, column: str) -> str:
    """The value a setup's records agree on, as text ("" when absent; several values joined)."""
    if column not in group:
        return ""
    values = sorted({_text(v) for v in group[column].dropna()})
    return "; ".join(values)


def _synthetic(rows: pd.DataFrame) -> bool:
    return bool(rows["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in rows else False


def dates(group: pd.DataFrame) -> str:
    """The days the records were made (UTC): ``2026-11-24`` or ``2026-11-24 to 2026-11-29``."""
    days = sorted({str(t)[:10] for t in group.get("started_at", pd.Series(dtype=object)).dropna()})
    return "" if not days else days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def when_range(group: pd.DataFrame) -> str | None:
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
    out = bad[["setup", "network", "batch", "status", "message", "inferred_from", "synthetic"]].copy()
    out["network"] = out["network"].map(lambda n: paper_names.get(n, n))
    out = out.rename(columns={"inferred_from": "inferred from"})
    return out.sort_values(["setup", "network", "batch"]).reset_index(drop=True)


def contended_table(contended: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """The records left out because something disturbed their window, with what did."""
    out = contended[["setup", "network", "batch", "status", "contended", "key", "synthetic"]].copy()
    out["network"] = out["network"].map(lambda n: paper_names.get(n, n))
    return out.rename(columns={"contended": "disturbed by"}).sort_values(["setup", "network", "batch"]) \
        .reset_index(drop=True)


def _text(value: object) -> str:
    """A metadata value as text; counts read back as floats (NaN-padded columns) print as integers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


PAPER_FAMILIES = ("gemv2T", "gemv2N", "gemmk1")


def gpu_profiles(shares: pd.DataFrame) -> pd.DataFrame:
    """Profile rows that can speak for GPU kernels: a GPU device and at least one kernel in the capture."""
    if shares.empty:
        return shares
    return shares[(shares["device_kind"] == "gpu") & (shares["gpu_kernels"] > 0)]


def why_no_kernels(shares: pd.DataFrame) -> str:
    """The reason the kernel columns and Table V are empty, naming what profiles there are."""
    if shares.empty:
        return ("no kernel profile in the results: run `harness profile NET --backend B --tool ncu|nsys|torch "
                "--device cuda:N --out RESULTS_DIR` on a GPU")
    cpu = shares.drop_duplicates("profile")
    listed = ", ".join(f"{r['setup']} {r['network']} ({r['tool']})" for _, r in cpu.iterrows())
    return f"only profiles without GPU kernels ({listed}): a CPU run has no cuBLAS kernels to attribute"


def kernel_columns(shares: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """Table III's last three columns: every zoo network, the paper's shares, then per GPU profile setup
    each family's % of GPU kernel time, or "not measured" with the reason."""
    profiles = gpu_profiles(shares)
    paper = paper_table3()
    setups = measured.setup_order(profiles["setup"].unique())
    rows = []
    for network, name in paper_names.items():
        if name not in paper and network not in set(profiles["network"]):
            continue
        row: dict[str, object] = {"network": name}
        for family in PAPER_FAMILIES:
            theirs = paper.get(name, {}).get(f"{family}_pct")
            row[f"paper {family} %"] = float(theirs) if theirs is not None else float("nan")
        for setup in setups:
            mine = profiles[(profiles["setup"] == setup) & (profiles["network"] == network)]
            if mine.empty:
                for family in PAPER_FAMILIES:
                    row[f"{setup} {family} %"] = "not measured: not profiled on this setup"
                continue
            pct = mine.groupby("family")["pct"].sum()
            for family in PAPER_FAMILIES:
                row[f"{setup} {family} %"] = float(pct.get(family, 0.0))
            first = mine.iloc[0]
            row[f"{setup} profile"] = f"{first['tool']}, {first['iterations']:.0f} iteration(s)" if \
                pd.notna(first["iterations"]) else f"{first['tool']}, imported capture"
        mine = profiles[profiles["network"] == network]
        row["synthetic"] = _synthetic(mine)
        rows.append(row)
    return pd.DataFrame(rows)


PAPER_TABLE5_ROWS = ("compute_utilization_pct", "bandwidth_utilization_pct", "occupancy_pct",
                     "warp_execution_efficiency_pct", "branch_divergence_pct", "sm_utilization",
                     "stall_memory_dependency_pct", "stall_instruction_dependency_pct", "stall_synchronization_pct",
                     "stall_other_pct")


def table_v(profiles: list, shares: pd.DataFrame, paper_names: dict[str, str]) -> pd.DataFrame:
    """Table V: one row per attribute; the paper's gemv2T/gemv2N/gemmk1 columns, then one column per GPU
    profile with metrics and per paper family it captured ("<setup> <network> <family>"). ``profiles`` are the
    ProfileRecords, in the order of ``shares``' "profile" column."""
    from harness.analysis.paper import paper_table

    paper = {r["attribute"]: r for r in paper_table("table5")}
    table: dict[str, list[object]] = {"attribute": list(PAPER_TABLE5_ROWS)}
    for family in PAPER_FAMILIES:
        table[f"paper {family}"] = [_number(paper[a][family]) for a in PAPER_TABLE5_ROWS]
    gpu = gpu_profiles(shares).drop_duplicates("profile")
    made_up = False
    for _, p in gpu.iterrows():
        record = profiles[int(p["profile"])]
        by_family = {r["family"]: r for r in record.table_v or []}
        for family in PAPER_FAMILIES:
            if family in by_family:
                name = paper_names.get(p["network"], p["network"])
                table[f"{p['setup']} {name} {family}"] = [by_family[family].get(a, float("nan"))
                                                          for a in PAPER_TABLE5_ROWS]
                made_up = made_up or bool(record.synthetic)
    table["synthetic"] = [made_up] * len(PAPER_TABLE5_ROWS)  # every row holds the profiles' columns
    return pd.DataFrame(table)


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text  # the paper's qualitative SM utilisation ("Poor", "Excellent")


def metric_mapping() -> pd.DataFrame:
    from harness.kernels.metrics import METRIC_MAPPING

    return pd.DataFrame(METRIC_MAPPING, columns=["attribute", "nvprof metric (the paper's nvvp)",
                                                 "Nsight Compute metric", "conversion"]).assign(synthetic=False)
