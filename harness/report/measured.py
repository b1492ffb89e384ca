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

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError, one_line
from harness.kernels.profile_record import PROFILES_DIR, ProfileRecord, read_profiles
from harness.layertime.record import LayerProfile
from harness.layertime.store import PROFILES_GLOB, read_layer_profiles

MIB = 2**20
# The paper's batches: Table II and inference time at B=1, energy efficiency at B=4.
LATENCY_BATCH = 1
MEMORY_BATCH = 1
ENERGY_BATCH = 4


#: NVIDIA GPU generations, oldest first: the report's column groups put GPUs in this order (the paper's P100,
#: a Pascal, first), each with the compute capabilities and the product names that identify it
GPU_GENERATIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Kepler", ("3.",), r"\bK(10|20|40|80)\b|GTX 7\d\d"),
    ("Maxwell", ("5.",), r"\bM(4|6|10|40|60)\b|GTX 9\d\d"),
    ("Pascal", ("6.",), r"\bP(4|6|40|100)\b|P100-|GTX 10\d\d|TITAN Xp"),
    ("Volta", ("7.0", "7.2"), r"V100|TITAN V\b"),
    ("Turing", ("7.5",), r"\bT4\b|RTX 20\d\d|Quadro RTX|TITAN RTX"),
    ("Ampere", ("8.0", "8.6", "8.7"), r"\bA(2|10|16|30|40|100)\b|A100-|RTX 30\d\d|RTX A\d{4}"),
    ("Ada Lovelace", ("8.9",), r"\bL(4|20|40S?)\b|RTX 40\d\d|RTX \d{4} Ada"),
    ("Hopper", ("9.",), r"\bH(20|100|200|800)\b|GH200"),
    ("Blackwell", ("10.", "11.", "12."), r"\bB(100|200|300)\b|GB200|RTX 50\d\d|Blackwell"),
)


def gpu_generation(name: str, compute_capability: str | None = None) -> str | None:
    """The generation of a GPU, from its recorded compute capability, else its product name; None if unknown."""
    if compute_capability:
        for generation, prefixes, _ in GPU_GENERATIONS:
            if any(str(compute_capability).startswith(p) for p in prefixes):
                return generation
    for generation, _, pattern in GPU_GENERATIONS:
        if re.search(pattern, name, re.IGNORECASE):
            return generation
    return None


def _generation_rank(generation: str | None) -> int:
    names = [g for g, _, _ in GPU_GENERATIONS]
    return names.index(generation) if generation in names else len(names)


@dataclass(frozen=True)
class Device:
    """One physical device of one machine: a column group of the report."""

    id: str  # short label used in column names: D1, D2, ...
    kind: str  # "gpu" or "cpu"
    name: str  # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    host: str
    memory_bytes: int | None  # device (GPU) or host memory size, if recorded
    generation: str | None = None  # GPUs: Pascal, Volta, ... where known
    synthetic: bool = False  # its records are made up (tests/data/synthetic-*): never a measurement

    @property
    def label(self) -> str:
        kind = self.kind.upper() + (f", {self.generation}" if self.generation else "")
        return f"{self.id}: {self.name} ({kind}, host {self.host})" + (" [SYNTHETIC]" if self.synthetic else "")


@dataclass
class Measured:
    """Everything the report reads from its results directories."""

    frame: pd.DataFrame  # one row per merged record (Record.flat columns + device/setup), contended ones out
    contended: pd.DataFrame  # the records left out because their window was disturbed
    profiles: list[ProfileRecord]
    shares: pd.DataFrame  # one row per (profile, kernel family): setup, network, family, pct, device_kind, tool
    warnings: list[str] = field(default_factory=list)  # the store's merge warnings (duplicates, bad lines)
    #: the layer profiles (``harness layers --out``), and one row per profile with its key, setup and device
    layer_profiles: list[LayerProfile] = field(default_factory=list)
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)


def load(dirs: Sequence[Path]) -> Measured:
    """Every record of every results directory, merged by the store's one rule, and every kernel profile."""
    from harness.results.store import read_results, results_files

    for d in map(Path, dirs):
        if not d.is_dir() or not (results_files(d) or (d / PROFILES_DIR).is_dir() or any(d.glob(PROFILES_GLOB))):
            raise HarnessError(f"{d}: not a results directory (no results*.jsonl, no {PROFILES_DIR}/, no "
                               f"{PROFILES_GLOB})")
    merged = read_results(dirs)
    frame = without_short_energy(pd.DataFrame([r.flat() for r in merged.records]))
    if not frame.empty:  # made-up records (tests/data/synthetic-*) say so in their metadata
        frame["synthetic"] = _column(frame, "meta.synthetic").fillna(False).astype(bool)
    skipped: list[str] = []  # damaged kernel-profile records: named, left out, kept on disk
    profiles = [p for d in dirs for p in read_profiles(d, skipped)]
    layered = read_layer_profiles(dirs)
    if skipped and not profiles and not merged.records and not layered.records:
        # nothing left to report: the first reason is the error
        raise HarnessError(skipped[0] + (f" (and {len(skipped) - 1} more such file(s))" if len(skipped) > 1 else ""))
    frame, shares, layers = assign_devices(frame, profile_rows(profiles), layer_rows(layered.records))
    shares = one_profile_each(shares, profiles)
    if not frame.empty:
        flagged = frame["contended"].notna()
        contended, frame = frame[flagged].reset_index(drop=True), frame[~flagged].reset_index(drop=True)
    else:
        contended = pd.DataFrame()
    warnings = merged.warnings() + layered.warnings() + [one_line(f"warning: {why}; left out, kept on disk")
                                                         for why in skipped]
    return Measured(frame, contended, profiles, shares, warnings, layered.records, layers)


def layer_rows(profiles: Sequence[LayerProfile]) -> pd.DataFrame:
    """One row per layer profile, laid out with the columns device assignment reads (a profile of the device a
    bench ran on shares its device id)."""
    rows = [{"key": p.key, "network": p.config.network, "backend": p.config.backend, "device": p.config.device,
             "mode": p.config.mode, "batch": p.config.batch, "hardware": p.config.hardware, "status": p.status,
             "placement.host": p.placement.host if p.placement else (p.metadata.get("host") or None),
             "placement.gpu_uuid": p.placement.gpu_uuid if p.placement else None, "synthetic": False}
            for p in profiles]
    return pd.DataFrame(rows)


def without_short_energy(frame: pd.DataFrame) -> pd.DataFrame:
    """The records' energy figures blanked where the window was too short for its energy to be evidence
    (``energy.window_too_short`` says why); their latency and memory stay."""
    if frame.empty or "energy.window_too_short" not in frame:
        return frame
    short = frame["energy.window_too_short"].notna()
    figures = [c for c in frame.columns if c.startswith("energy.") and c != "energy.window_too_short"]
    frame.loc[short, figures] = np.nan
    return frame


def short_energy_windows(frame: pd.DataFrame) -> int:
    """How many records had their energy left out by :func:`without_short_energy` (the report says so)."""
    return int(frame["energy.window_too_short"].notna().sum()) if "energy.window_too_short" in frame else 0


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
    capability = _column(frame, "meta.compute_capability")
    frame["device_generation"] = [gpu_generation(str(n), c) if g else None
                                  for n, c, g in zip(frame["device_name"], capability, gpu, strict=True)]
    return frame


def assign_devices(*frames: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """Add device columns and one shared short id per device (D1, D2, ...) to every frame, and the setup label
    "<device id> <backend>[/<mode>]" that names a column group. GPUs come first, oldest generation first (the
    paper's P100 beside the paper), unknown generations after the known ones; then CPUs."""
    frames = tuple(_device_columns(f) if not f.empty else f for f in frames)
    generation: dict[str, str | None] = {}
    for f in frames:
        if not f.empty:
            for key, gen in zip(f["device_key"], f["device_generation"], strict=True):
                generation[key] = generation.get(key) or gen
    keys = sorted(generation, key=lambda k: (not k.startswith("gpu"), _generation_rank(generation[k]), k))
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


def devices(*frames: pd.DataFrame) -> list[Device]:
    """The device groups present in the records (and kernel profiles), in their id order (GPUs first)."""
    rows = pd.concat([f for f in frames if not f.empty and "device_id" in f], ignore_index=True) \
        if any(not f.empty for f in frames) else pd.DataFrame()
    out = []
    if rows.empty:
        return out
    for device_id, group in sorted(rows.groupby("device_id"), key=lambda kv: int(str(kv[0])[1:])):
        first = group.iloc[0]
        gpu = first["device_kind"] == "gpu"
        memory = _column(group, "meta.memory_total_bytes").dropna() if gpu else pd.Series(dtype=float)
        generations = group["device_generation"].dropna()
        synthetic = bool(group["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in group else False
        out.append(Device(str(device_id), str(first["device_kind"]), str(first["device_name"]),
                          str(first["device_host"]), int(memory.iloc[0]) if len(memory) else None,
                          str(generations.iloc[0]) if len(generations) else None, synthetic))
    return out


def synthetic_setups(*frames: pd.DataFrame) -> set[str]:
    """The setups with at least one synthetic record or profile."""
    out: set[str] = set()
    for f in frames:
        if not f.empty and "synthetic" in f:
            out |= set(f.loc[f["synthetic"].fillna(False).astype(bool), "setup"])
    return out


def setup_order(setups: object) -> list[str]:
    """Setup labels by device number (D2 before D10), then backend and mode."""
    def key(setup: str) -> tuple[int, str]:
        device, _, rest = setup.partition(" ")
        return (int(device[1:]) if device[1:].isdigit() else 0, rest)

    return sorted({str(s) for s in setups}, key=key)


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
