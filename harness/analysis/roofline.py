"""Roofline lower bounds on latency from the device peaks in ``harness/data/device_specs.yaml``.

A layer that performs FLOPs = 2 * MACs and moves B = (W + IA + OA) * bytes(dtype) bytes cannot finish
faster than ``max(FLOPs / peak[dtype], B / bandwidth)`` on that device: it is compute-bound when the first
term is the larger, bandwidth-bound otherwise. The network bound is the sum of its layers' bounds (layers
run one after another, unfused); the whole-network roofline ``max(sum FLOPs / peak, sum B / bandwidth)``
is also given, and is never larger. Both ignore caches (a blob re-read from L2 costs no DRAM traffic) and
launch overheads, so measured latencies lie above them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from harness.analysis.volume import DataVolume
from harness.errors import HarnessError

ROOFLINE_DTYPES = ("fp32", "fp16")


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    description: str
    peak_flops: dict[str, float]  # FLOP/s per dtype
    bandwidth: float  # bytes/s
    memory_bytes: float
    source: str

    def ridge_point(self, dtype: str) -> float:
        """FLOP per byte above which a kernel is compute-bound on this device."""
        return self.peak_flops[dtype] / self.bandwidth


@cache
def device_specs() -> dict[str, DeviceSpec]:
    text = resources.files("harness.data").joinpath("device_specs.yaml").read_text(encoding="utf-8")
    specs = {}
    for name, entry in yaml.safe_load(text).items():
        specs[name] = DeviceSpec(
            name=name, description=entry["description"],
            peak_flops={d: float(entry["peak_tflops"][d]) * 1e12 for d in ROOFLINE_DTYPES},
            bandwidth=float(entry["bandwidth_gb_s"]) * 1e9, memory_bytes=float(entry["memory_gb"]) * 1e9,
            source=entry["source"])
    return specs


def device_spec(name: str) -> DeviceSpec:
    try:
        return device_specs()[name]
    except KeyError:
        raise HarnessError(f"unknown device spec '{name}' (known: {', '.join(device_specs())})") from None


def layer_bound(v: DataVolume, device: DeviceSpec) -> dict[str, Any]:
    """Per-dtype compute time, memory time, their max (the bound) and which one binds."""
    row: dict[str, Any] = {"flops": 2 * v.macs}
    for dtype in ROOFLINE_DTYPES:
        t_compute = 2 * v.macs / device.peak_flops[dtype]
        t_memory = v.bytes(dtype) / device.bandwidth
        row[f"t_compute_{dtype}_s"] = t_compute
        row[f"t_memory_{dtype}_s"] = t_memory
        row[f"t_bound_{dtype}_s"] = max(t_compute, t_memory)
        row[f"bound_{dtype}"] = "compute" if t_compute > t_memory else "bandwidth"
    return row


def network_bound(layer_rows: list[dict[str, Any]], total: DataVolume, device: DeviceSpec,
                  memory_bytes: int) -> dict[str, Any]:
    """Sum of layer bounds, the looser whole-network roofline, and the share of the bound spent in
    compute-bound layers. ``memory_bytes`` (the analysis' fp32 footprint) is compared to the device's."""
    row: dict[str, Any] = {"device": device.name, "flops": 2 * total.macs,
                           "fits_in_device_memory": memory_bytes <= device.memory_bytes}
    for dtype in ROOFLINE_DTYPES:
        bound = sum(r[f"t_bound_{dtype}_s"] for r in layer_rows)
        compute = sum(r[f"t_bound_{dtype}_s"] for r in layer_rows if r[f"bound_{dtype}"] == "compute")
        t_compute = 2 * total.macs / device.peak_flops[dtype]
        t_memory = total.bytes(dtype) / device.bandwidth
        row[f"t_compute_{dtype}_s"] = t_compute
        row[f"t_memory_{dtype}_s"] = t_memory
        row[f"t_bound_{dtype}_s"] = bound
        row[f"t_roofline_net_{dtype}_s"] = max(t_compute, t_memory)
        row[f"bound_{dtype}"] = "compute" if t_compute > t_memory else "bandwidth"
        row[f"compute_bound_share_{dtype}"] = compute / bound if bound else None
    return row


COLUMN_LABELS: dict[str, str] = {
    "flops": "FLOPs (2*MACs)",
    **{f"t_compute_{d}_s": f"t compute {d} (s)" for d in ROOFLINE_DTYPES},
    **{f"t_memory_{d}_s": f"t memory {d} (s)" for d in ROOFLINE_DTYPES},
    **{f"t_bound_{d}_s": f"latency bound {d} (s)" for d in ROOFLINE_DTYPES},
    **{f"t_roofline_net_{d}_s": f"whole-net roofline {d} (s)" for d in ROOFLINE_DTYPES},
    **{f"bound_{d}": f"bound {d}" for d in ROOFLINE_DTYPES},
    **{f"compute_bound_share_{d}": f"compute-bound share {d}" for d in ROOFLINE_DTYPES},
    "device": "device",
    "fits_in_device_memory": "fits in memory (fp32)",
}
