"""Measured results as the report reads them: one row per record, grouped by device and by setup
(backend + mode), with the Table III quantities picked the way the paper defines them, and the
kernel-profile records beside them.

Records come through the results store's one merge rule (:func:`harness.results.store.read_results`), so
several results directories that share a configuration are merged, not crashed on, and their duplicates
are reported. Records flagged ``contended`` (something disturbed the measurement window) are left out of
every table, figure and verdict and listed with their reasons; ``oom`` records inferred from a smaller
batch are kept for the tables but only measured OOMs decide a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.kernels.profile_record import PROFILES_DIR, ProfileRecord, read_profiles

MIB = 2**20
# The paper's batches: Table II and inference time at B=1, energy efficiency at B=4.
LATENCY_BATCH = 1
MEMORY_BATCH = 1
ENERGY_BATCH = 4


@dataclass(frozen=True)
class Device:
    """One physical device of one machine: a column group of the report."""

    id: str  # short label used in column names: D1, D2, ...
    kind: str  # "gpu" or "cpu"
    name: str  # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    host: str
    memory_bytes: int | None  # device (GPU) or host memory size, if recorded

    @property
    def label(self) -> str:
        return f"{self.id}: {self.name} ({self.kind.upper()}, host {self.host})"


@dataclass
class Measured:
    """Everything the report reads from its results directories."""

    frame: pd.DataFrame  # one row per merged record (Record.flat columns + device/setup), contended ones out
    contended: pd.DataFrame  # the records left out because their window was disturbed
    profiles: list[ProfileRecord]
    shares: pd.DataFrame  # one row per (profile, kernel family): setup, network, family, pct, device_kind, tool
    warnings: list[str] = field(default_factory=list)  # the store's merge warnings (duplicates, bad lines)


def load(dirs: Sequence[Path]) -> Measured:
    """Every record of every results directory, merged by the store's one rule, and every kernel profile."""
    from harness.results.store import read_results, results_files

    for d in map(Path, dirs):
        if not d.is_dir() or not (results_files(d) or (d / PROFILES_DIR).is_dir()):
            raise HarnessError(f"{d}: not a results directory (no results*.jsonl, no {PROFILES_DIR}/)")
    merged = read_results(dirs)
    frame = without_short_energy(pd.DataFrame([r.flat() for r in merged.records]))
    profiles = [p for d in dirs for p in read_profiles(d)]
    frame, shares = assign_devices(frame, profile_rows(profiles))
    shares = one_profile_each(shares, profiles)
    if not frame.empty:
        flagged = frame["contended"].notna()
        contended, frame = frame[flagged].reset_index(drop=True), frame[~flagged].reset_index(drop=True)
    else:
        contended = pd.DataFrame()
    return Measured(frame, contended, profiles, shares, merged.warnings())


def without_short_energy(frame: pd.DataFrame) -> pd.DataFrame:
    """The records' energy figures blanked where the window was too short for its energy to be evidence
    (``energy.window_too_short`` says why); their latency and memory stay."""
    if frame.empty or "energy.window_too_short" not in frame:
        return frame
    short = frame["energy.window_too_short"].notna()
    figures = [c for c in frame.columns if c.startswith("energy.") and c != "energy.window_too_short"]
    frame.loc[short, figures] = np.nan
    return frame


#: which capture speaks for a network on a setup when there are several: the one that times kernels as they
#: run (nsys, then the PyTorch profiler) before ncu, which replays each kernel alone, then nvprof's
TOOL_PREFERENCE = ("nsys", "torch", "ncu", "nvprof")


def one_profile_each(shares: pd.DataFrame, profiles: Sequence[ProfileRecord]) -> pd.DataFrame:
    """The family rows of one profile per (setup, network): by :data:`TOOL_PREFERENCE`, then the newest.
    Shares of several captures of one network must never add up (the same directory read twice, or an
    ncu capture beside an nsys one)."""
    if shares.empty:
        return shares
    rank = {tool: i for i, tool in enumerate(TOOL_PREFERENCE)}
    heads = shares.drop_duplicates("profile")
    def preference(i: int) -> tuple[int, str]:  # the higher the better
        return -rank.get(profiles[i].tool, len(rank)), profiles[i].created_at or ""

    chosen = [max(group["profile"], key=preference) for _, group in heads.groupby(["setup", "network"], sort=False)]
    return shares[shares["profile"].isin(chosen)].reset_index(drop=True)


def profile_rows(profiles: Sequence[ProfileRecord]) -> pd.DataFrame:
    """One row per (profile, family) with its % of GPU kernel time, laid out with the columns device
    assignment reads (a profile of the GPU a bench ran on lands in the bench's column group). A profile
    without GPU kernels (a CPU run) gives one row with family None, so it is still listed."""
    rows = []
    for i, p in enumerate(profiles):
        c = p.config
        base = {"profile": i, "network": c.network, "backend": c.backend, "device": c.device, "mode": c.mode,
                "batch": c.batch, "hardware": c.hardware, "placement.host": p.host,
                "placement.gpu_uuid": p.gpu_uuid, "tool": p.tool, "iterations": p.iterations,
                "gpu_kernels": p.gpu_kernels, "key": c.key(), "synthetic": p.synthetic}
        pct = p.family_pct()
        rows += [{**base, "family": f, "pct": v} for f, v in pct.items()] or [{**base, "family": None, "pct": np.nan}]
    return pd.DataFrame(rows)


def _column(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first non-null value among ``names`` (columns that may be absent), row by row."""
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for name in reversed(names):
        if name in frame:
            out = frame[name].where(frame[name].notna(), out)
    return out


def _device_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Device kind, name, host and identity key of every row. The name is the record's hardware (schema 2)
    or, for older records, the recorded GPU or CPU model; the host and GPU UUID come from the placement."""
    gpu = frame["device"].astype(str).str.startswith("cuda")
    host = _column(frame, "placement.host", "meta.host").fillna("unknown host").astype(str)
    frame = frame.copy()
    frame["device_kind"] = np.where(gpu, "gpu", "cpu")
    name = _column(frame, "hardware", "meta.gpu_name").where(gpu, _column(frame, "hardware", "meta.cpu"))
    frame["device_name"] = name.fillna(pd.Series(np.where(gpu, "unknown GPU", "unknown CPU"), index=frame.index))
    frame["device_host"] = host
    # GPUs are told apart by UUID where recorded (two identical cards in one host are two devices).
    uuid = _column(frame, "placement.gpu_uuid", "meta.gpu_uuid").fillna("").astype(str)
    frame["device_key"] = frame["device_kind"] + "|" + frame["device_name"].astype(str) + "|" + host + "|" + \
        np.where(gpu, uuid, "")
    return frame


def assign_devices(*frames: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """Add device columns and one shared short id per device (D1, D2, ...; GPUs first) to every frame, and
    the setup label "<device id> <backend>[/<mode>]" that names a column group."""
    frames = tuple(_device_columns(f) if not f.empty else f for f in frames)
    keys = sorted({k for f in frames if not f.empty for k in f["device_key"]},
                  key=lambda k: (not k.startswith("gpu"), k))
    ids = {key: f"D{i + 1}" for i, key in enumerate(keys)}
    out = []
    for f in frames:
        if not f.empty:
            f["device_id"] = f["device_key"].map(ids)
            mode = f["mode"].fillna("default").astype(str) if "mode" in f else pd.Series("default", index=f.index)
            # the mode as recorded: a label must not depend on which backends the host building the report has
            f["setup"] = f["device_id"] + " " + f["backend"].astype(str) + np.where(mode == "default", "", "/" + mode)
        out.append(f)
    return tuple(out)


def devices(frame: pd.DataFrame) -> list[Device]:
    """The device groups present, GPUs first."""
    out = []
    for device_id, rows in frame.groupby("device_id", sort=True):
        first = rows.iloc[0]
        gpu = first["device_kind"] == "gpu"
        memory = _column(rows, "meta.memory_total_bytes").dropna() if gpu else pd.Series(dtype=float)
        out.append(Device(str(device_id), str(first["device_kind"]), str(first["device_name"]),
                          str(first["device_host"]), int(memory.iloc[0]) if len(memory) else None))
    return out


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def measured_oom(frame: pd.DataFrame) -> pd.Series:
    """True where a configuration really ran out of memory (not inferred from a smaller batch's OOM)."""
    inferred = frame["inferred_from"].notna() if "inferred_from" in frame else False
    return (frame["status"] == "oom") & ~inferred


def _figure(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype(float) if column in frame else pd.Series(np.nan, index=frame.index)


#: The memory footprint the report uses: on a GPU the whole-device peak as nvidia-smi shows it (the paper's
#: quantity); on a CPU the process's peak resident set (a different quantity, labelled as such).
FOOTPRINT = {"gpu": "memory.device_used_peak_bytes", "cpu": "memory.host_rss_peak_bytes"}


def footprint_bytes(frame: pd.DataFrame) -> pd.Series:
    """The footprint (:data:`FOOTPRINT`) of every row."""
    gpu = frame["device_kind"] == "gpu"
    return pd.Series(np.where(gpu, _figure(frame, FOOTPRINT["gpu"]), _figure(frame, FOOTPRINT["cpu"])),
                     index=frame.index, dtype=float)


def footprint_of(row: pd.Series) -> float:
    """The footprint (:data:`FOOTPRINT`) of one row; NaN where not measured."""
    value = row.get(FOOTPRINT[row["device_kind"]])
    return float("nan") if value is None else float(value)


def per_network(frame: pd.DataFrame, batch: int | None, value: pd.Series) -> pd.DataFrame:
    """A network x setup table of ``value`` over ok records at ``batch`` (None: every batch, max kept)."""
    rows = ok(frame) if batch is None else ok(frame)[ok(frame)["batch"] == batch]
    data = pd.DataFrame({"network": rows["network"], "setup": rows["setup"], "value": value.loc[rows.index]})
    data = data.dropna(subset=["value"])
    if data.empty:
        return pd.DataFrame()
    return data.pivot_table(index="network", columns="setup", values="value", aggfunc="max")


def latency_ms(frame: pd.DataFrame) -> pd.Series:
    return _figure(frame, "latency.median_s") * 1e3


def throughput_fps(frame: pd.DataFrame) -> pd.Series:
    return _figure(frame, "latency.throughput_fps")


def energy_efficiency(frame: pd.DataFrame) -> pd.Series:
    return _figure(frame, "energy.gmacs_per_joule")


def best_throughput_batch(frame: pd.DataFrame) -> pd.DataFrame:
    """Per network and setup: the highest measured throughput, the batch that gave it, and its record."""
    rows = ok(frame).assign(fps=throughput_fps(frame)).dropna(subset=["fps"])
    if rows.empty:
        return pd.DataFrame(columns=["network", "setup", "fps", "batch", "key"])
    best = rows.loc[rows.groupby(["network", "setup"])["fps"].idxmax()]
    return best[["network", "setup", "fps", "batch", "key"]].reset_index(drop=True)
