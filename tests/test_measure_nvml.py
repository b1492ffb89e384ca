"""The NVML poller, device identity and GPU measurement windows.

This machine (CI too) has no NVIDIA GPU: nvidia-ml-py imports but NVML cannot initialise, which must
give one clear "no NVIDIA GPU/driver" error everywhere. The GPU code paths themselves run against
tests/data/synthetic_nvml/pynvml.py, a SYNTHETIC stand-in for nvidia-ml-py put first on the poller's
PYTHONPATH (made-up GPUs, documented NVML semantics, unsupported fields and failing reads on demand):
nothing from it is a measurement, it shows what the harness does with what NVML answers. With a real
GPU, a real 50 Hz poll is checked instead (and benchmarks/gpu_acceptance.sh runs everything there).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from harness import cuda_driver
from harness.errors import HarnessError
from harness.measure import devices, energy
from harness.measure.energy import Span
from harness.measure.nvml_poller import NvmlPoller, NvmlUnavailable, nvml_init, sample_loop
from harness.measure.timer import TimingProtocol
from harness.measure.window import GpuTarget, MeasurementWindow, WindowSettings

SYNTHETIC_NVML = Path(__file__).parent / "data" / "synthetic_nvml"
UUID_A = "GPU-5e000000-0000-4000-8000-00000000000a"
UUID_B = "GPU-5e000000-0000-4000-8000-00000000000b"


def gpu_present() -> bool:
    try:
        pynvml = nvml_init()
    except NvmlUnavailable:
        return False
    return pynvml.nvmlDeviceGetCount() > 0


HAS_GPU = gpu_present() if os.environ.get("HARNESS_SYNTHETIC_NVML") is None else False
no_gpu_only = pytest.mark.skipif(HAS_GPU, reason="an NVIDIA GPU is present: the no-driver path cannot be shown")


@pytest.fixture
def synthetic_nvml(monkeypatch: pytest.MonkeyPatch):
    """Point the poller processes (and this one) at the synthetic pynvml with the given behaviour."""
    import sys

    def use(**spec: object) -> None:
        monkeypatch.setenv("HARNESS_SYNTHETIC_NVML", json.dumps(spec))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SYNTHETIC_NVML), os.environ.get("PYTHONPATH", "")]))

    monkeypatch.syspath_prepend(str(SYNTHETIC_NVML))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    return use


@no_gpu_only
def test_init_without_driver_says_so() -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py (the gpu extra) is not installed")
    with pytest.raises(NvmlUnavailable, match="no NVIDIA GPU/driver"):
        nvml_init()


@no_gpu_only
def test_poller_process_reports_missing_driver() -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py (the gpu extra) is not installed")
    poller = NvmlPoller(UUID_A, rate_hz=50)
    with pytest.raises(NvmlUnavailable, match="no NVIDIA GPU/driver"):
        poller.start()
    with pytest.raises(RuntimeError):
        poller.stop()


@no_gpu_only
def test_cuda_device_without_driver_is_one_clear_error() -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py (the gpu extra) is not installed")
    with pytest.raises(HarnessError, match="cuda:0: no NVIDIA GPU/driver"):
        devices.identify("cuda:0")


def test_device_names() -> None:
    assert devices.parse_device("cpu") == ("cpu", None) and devices.parse_device("cuda:12") == ("cuda", 12)
    for bad in ("gpu0", "cuda", "cuda:-1", "cuda:٣", "cuda:1:2"):
        with pytest.raises(HarnessError, match="unknown device"):
            devices.parse_device(bad)
    with pytest.raises(ValueError):
        NvmlPoller(UUID_A, rate_hz=0)


def test_cuda_visible_devices_map_to_uuids() -> None:
    """CUDA's rules: indices (PCI order here), GPU- UUIDs or unique prefixes; the list stops at the first
    entry that names no GPU (or repeats one); unset means every GPU."""
    nvml = ["GPU-aaaa-1", "GPU-bbbb-2", "GPU-abcd-3"]
    assert devices.visible_uuids(None, nvml) == nvml
    assert devices.visible_uuids("2,0", nvml) == ["GPU-abcd-3", "GPU-aaaa-1"]
    assert devices.visible_uuids("GPU-bbbb-2,1", nvml) == ["GPU-bbbb-2"]  # a repeat ends the list
    assert devices.visible_uuids("bbbb", nvml) == ["GPU-bbbb-2"]
    assert devices.visible_uuids("a,1", nvml) == []  # 'a' is ambiguous: nothing is visible
    assert devices.visible_uuids("1,7,0", nvml) == ["GPU-bbbb-2"]
    assert devices.visible_uuids("", nvml) == []
    assert cuda_driver.format_uuid(bytes(range(16))) == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"


def test_identity_through_nvml_follows_cuda_visible_devices(synthetic_nvml, monkeypatch) -> None:
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}, {"uuid": UUID_B, "name": "Synthetic B"}])
    monkeypatch.setattr(devices, "cuda_driver_uuids", lambda: None)  # no libcuda here: the NVML route
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    ident = devices.identify("cuda:0")
    assert (ident.uuid, ident.model, ident.nvml_index, ident.mapping) == (
        UUID_B, "Synthetic B", 1, "CUDA_VISIBLE_DEVICES+nvml")
    with pytest.raises(HarnessError, match=r"cuda:1: no such GPU here \(1 visible to CUDA, CUDA_VISIBLE_DEVICES=1\)"):
        devices.identify("cuda:1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert devices.identify("cuda:1").uuid == UUID_B
    assert devices.identify("cpu").uuid is None


def test_sampling_survives_failing_reads() -> None:
    calls = {"n": 0}

    def flaky() -> float:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("NVML_ERROR_UNKNOWN")
        return 42.0

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    data = sample_loop({"power_average_w": flaky}, rate_hz=100.0, stop=stop)
    assert len(data["t"]) == len(data["power_average_w"]) >= 10
    assert None in data["power_average_w"] and 42.0 in data["power_average_w"]


QUICK_GPU = WindowSettings(protocol=TimingProtocol(warmup_iters=1, warmup_s=0, min_iters=3, min_s=0.5),
                           min_window_s=0.5, idle_s=0.5, poll_hz=100.0)


class SleepSession:
    """A 'network' that takes 10 ms: enough for a window to have a timed phase."""

    def __init__(self) -> None:
        self.info: dict = {}

    def forward(self) -> None:
        time.sleep(0.01)

    def run_timed(self, protocol: TimingProtocol):
        return protocol.run(self.forward)

    def framework_memory_bytes(self) -> None:
        return None


def _measure(window: MeasurementWindow):
    window.begin()
    return window.measure(SleepSession(), batch=1, macs_per_forward=10**9)  # type: ignore[arg-type]


def test_gpu_window_with_instant_power_and_the_averaged_series(synthetic_nvml) -> None:
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A", "cc": [9, 0]}], power_w=150.0)
    result = _measure(MeasurementWindow("cuda:0", QUICK_GPU, GpuTarget(UUID_A)))
    e = result.energy
    assert e.power_source == "nvml-instant" and e.energy_source == "counter"
    assert e.idle_power_w == pytest.approx(150.0) and e.avg_power_w == pytest.approx(150.0)
    assert e.avg_power_averaged_w == pytest.approx(150.0) and e.energy_integrated_averaged_j is not None
    # the synthetic counter grows at exactly 150 W; its two readings are requests to the poller process,
    # each some milliseconds from the timed phase's edges: 20 ms at 150 W is 3 J
    assert e.energy_counter_j == pytest.approx(150.0 * e.duration_s, abs=3.0)
    assert e.energy_integrated_j == pytest.approx(e.energy_counter_j, rel=0.02)
    assert result.device_info["power_usage_is_1s_average"] is True and result.device_info["gpu_uuid"] == UUID_A
    assert result.memory.device_used_start_bytes == 500 * 2**20 and result.memory.process_device_start_bytes is None
    assert result.poller.achieved_hz > 20


def test_gpu_window_with_unsupported_fields_and_missing_samples(synthetic_nvml) -> None:
    """No instant field, no energy counter, every 4th power read failing, a pre-Ampere GPU: the window
    still gives figures, from the power reading it has, and says what was missing."""
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Old", "cc": [7, 0]}], instant=False, energy=False,
                   missing_every=4, power_w=80.0, processes=[[424242, 2**30]])
    result = _measure(MeasurementWindow("cuda:0", QUICK_GPU, GpuTarget(UUID_A)))
    e = result.energy
    assert e.power_source == "nvml-power-usage-instant" and e.energy_source == "integrated"
    assert e.energy_counter_j is None and e.avg_power_w == pytest.approx(80.0)
    assert e.avg_power_averaged_w is None
    assert "power_instant_w" in result.device_info["unsupported"]
    assert any("unreadable, left out" in note for note in result.notes)
    assert None in result.timeline["power_average_w"]
    assert result.memory.device_used_peak_bytes == 500 * 2**20 + 2**30  # another process's memory is seen
    assert result.memory.process_device_peak_bytes is None  # none of it is ours


def test_no_readable_power_at_all_leaves_power_unmeasured_not_zero() -> None:
    t = list(np.arange(0.0, 2.0, 0.1))
    timeline = {"t": t, "power_average_w": [None] * len(t)}
    figures, notes = energy.timeline_energy(timeline, Span(0.0, 0.9), Span(1.0, 1.9), 10, 10**9, None, True)
    assert figures is None and any("not measured" in n for n in notes)
    counter = energy.counter_figures_without_idle(90.0, Span(1.0, 1.9), 10, 10**9)
    assert counter.energy_j == 90.0 and counter.idle_power_w is None and counter.gmacs_per_joule == pytest.approx(
        10 / 90.0)


@pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU and driver (none on this machine)")
def test_real_poll_at_50_hz() -> None:
    uuid = devices.identify("cuda:0").uuid
    with NvmlPoller(uuid, rate_hz=50) as poller:
        time.sleep(2.0)
        data = poller.stop()
    assert poller.device_info["gpu_uuid"] == uuid
    assert 90 <= len(data["t"]) <= 110
    assert all(p is None or p > 0 for p in data["power_average_w"])
    assert len(data["memory_used_bytes"]) == len(data["t"])
