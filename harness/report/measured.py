"""Measured results as the report reads them: one row per record, grouped by device and by setup
(backend + mode), with the Table III quantities picked the way the paper defines them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError

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


def load(dirs: Sequence[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every record of every results directory (Record.flat columns, one row each) and every kernel
    attribution found beside them (see :func:`kernel_rows`), both with device and setup columns."""
    from harness.results.store import RESULTS_FILE, ResultsStore

    frames, kernels = [], []
    for d in map(Path, dirs):
        if not (d / RESULTS_FILE).is_file() and not (d / KERNELS_DIR).is_dir():
            raise HarnessError(f"{d}: not a results directory (no {RESULTS_FILE}, no {KERNELS_DIR}/)")
        if (d / RESULTS_FILE).is_file():
            frames.append(ResultsStore(d).dataframe())
        kernels.append(kernel_rows(d))
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame()
    shares = pd.concat([k for k in kernels if len(k)], ignore_index=True) if any(len(k) for k in kernels) \
        else pd.DataFrame()
    return assign_devices(frame, shares)


KERNELS_DIR = "kernels"


def kernel_rows(directory: Path) -> pd.DataFrame:
    """Kernel-family shares from ``DIR/kernels/*.json``: one file per profiled run, laid out like a record,
    ``{"config": {"network", "backend", "device", "mode"}, "metadata": {...},
    "attribution": Attribution.to_json()}``. One row per (run, family) with its % of GPU kernel time."""
    import json

    rows = []
    for path in sorted((directory / KERNELS_DIR).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            config, families = doc["config"], doc["attribution"]["families"]
            base = {"network": config["network"], "backend": config["backend"], "device": config["device"],
                    "mode": config.get("mode"), "source": path.name}
            base.update({f"meta.{k}": v for k, v in doc.get("metadata", {}).items()
                         if isinstance(v, (str, int, float, bool))})
            rows += [{**base, "family": f["family"], "pct": float(f["pct"])} for f in families]
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path}: not a kernel attribution file ({exc})") from None
    return pd.DataFrame(rows)


def _meta(frame: pd.DataFrame, name: str) -> pd.Series:
    """A metadata column (harness.results.metadata keys), all None where no record has it."""
    col = f"meta.{name}"
    return frame[col] if col in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _device_columns(frame: pd.DataFrame) -> pd.DataFrame:
    gpu = frame["device"].astype(str).str.startswith("cuda")
    host = _meta(frame, "host").fillna("unknown host").astype(str)
    frame = frame.copy()
    frame["device_kind"] = np.where(gpu, "gpu", "cpu")
    frame["device_name"] = np.where(gpu, _meta(frame, "gpu_name").fillna("unknown GPU").astype(str),
                                    _meta(frame, "cpu").fillna("unknown CPU").astype(str))
    frame["device_host"] = host
    # GPUs are told apart by UUID where recorded (two identical cards in one host are two devices).
    uuid = _meta(frame, "gpu_uuid").fillna("").astype(str)
    frame["device_key"] = frame["device_kind"] + "|" + frame["device_name"] + "|" + host + "|" + \
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
            f["setup"] = f["device_id"] + " " + f["backend"].astype(str) + np.where(mode == "default", "", "/" + mode)
        out.append(f)
    return tuple(out)


def devices(frame: pd.DataFrame) -> list[Device]:
    """The device groups present, GPUs first."""
    out = []
    for device_id, rows in frame.groupby("device_id", sort=True):
        first = rows.iloc[0]
        gpu = first["device_kind"] == "gpu"
        memory = _meta(rows, "memory_total_bytes").dropna() if gpu else pd.Series(dtype=float)
        out.append(Device(str(device_id), str(first["device_kind"]), str(first["device_name"]),
                          str(first["device_host"]), int(memory.iloc[0]) if len(memory) else None))
    return out


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def footprint_bytes(frame: pd.DataFrame) -> pd.Series:
    """The memory footprint the report uses: on a GPU the whole-device peak as nvidia-smi shows it (the paper's
    quantity); on a CPU the process's peak resident set (a different quantity, labelled as such)."""
    gpu = frame["device_kind"] == "gpu"
    device_peak = frame.get("memory.device_used_peak_bytes", pd.Series(np.nan, index=frame.index))
    rss = frame.get("memory.host_rss_peak_bytes", pd.Series(np.nan, index=frame.index))
    return pd.Series(np.where(gpu, device_peak, rss), index=frame.index, dtype=float)


def per_network(frame: pd.DataFrame, batch: int | None, value: pd.Series) -> pd.DataFrame:
    """A network x setup table of ``value`` over ok records at ``batch`` (None: every batch, max kept)."""
    rows = ok(frame) if batch is None else ok(frame)[ok(frame)["batch"] == batch]
    data = pd.DataFrame({"network": rows["network"], "setup": rows["setup"], "value": value.loc[rows.index]})
    data = data.dropna(subset=["value"])
    if data.empty:
        return pd.DataFrame()
    return data.pivot_table(index="network", columns="setup", values="value", aggfunc="max")


def latency_ms(frame: pd.DataFrame) -> pd.Series:
    return frame.get("latency.median_s", pd.Series(np.nan, index=frame.index)) * 1e3


def throughput_fps(frame: pd.DataFrame) -> pd.Series:
    return frame.get("latency.throughput_fps", pd.Series(np.nan, index=frame.index)).astype(float)


def energy_efficiency(frame: pd.DataFrame) -> pd.Series:
    return frame.get("energy.gmacs_per_joule", pd.Series(np.nan, index=frame.index)).astype(float)


def best_throughput_batch(frame: pd.DataFrame) -> pd.DataFrame:
    """Per network and setup: the highest measured throughput and the batch that gave it."""
    rows = ok(frame).assign(fps=throughput_fps(frame)).dropna(subset=["fps"])
    if rows.empty:
        return pd.DataFrame(columns=["network", "setup", "fps", "batch"])
    best = rows.loc[rows.groupby(["network", "setup"])["fps"].idxmax()]
    return best[["network", "setup", "fps", "batch"]].reset_index(drop=True)
