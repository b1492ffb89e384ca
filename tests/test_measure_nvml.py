"""The NVML poller. This machine (CI too) has no NVIDIA GPU: nvidia-ml-py imports but NVML cannot
initialise, which must give one clear "no NVIDIA GPU/driver" error everywhere. With a GPU, a real
50 Hz poll is checked instead."""

from __future__ import annotations

import pytest

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py (the gpu extra) is not installed")

from harness.measure.nvml_poller import NvmlPoller, NvmlUnavailable, nvml_index, nvml_init  # noqa: E402
from harness.measure.window import MeasurementWindow, WindowSettings  # noqa: E402


def gpu_present() -> bool:
    try:
        nvml_init()
    except NvmlUnavailable:
        return False
    return pynvml.nvmlDeviceGetCount() > 0


HAS_GPU = gpu_present()
no_gpu_only = pytest.mark.skipif(HAS_GPU, reason="an NVIDIA GPU is present: the no-driver path cannot be shown")


@no_gpu_only
def test_init_without_driver_says_so() -> None:
    with pytest.raises(NvmlUnavailable, match="no NVIDIA GPU/driver"):
        nvml_init()


@no_gpu_only
def test_poller_process_reports_missing_driver() -> None:
    poller = NvmlPoller("cuda:0", rate_hz=50)
    with pytest.raises(NvmlUnavailable, match="no NVIDIA GPU/driver"):
        poller.start()
    with pytest.raises(RuntimeError):
        poller.stop()


@no_gpu_only
def test_gpu_window_without_driver_fails_before_running() -> None:
    with pytest.raises(NvmlUnavailable, match="no NVIDIA GPU/driver"):
        MeasurementWindow("cuda:0", WindowSettings(idle_s=0.0)).begin()


def test_device_index(monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert nvml_index("cuda:2") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert nvml_index("cuda:1") == 1 and nvml_index("cuda:0") == 3
    with pytest.raises(ValueError):
        nvml_index("cpu")
    with pytest.raises(ValueError):
        NvmlPoller("cuda:0", rate_hz=0)


@pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU and driver (none on this machine)")
def test_real_poll_at_50_hz() -> None:
    import time

    with NvmlPoller("cuda:0", rate_hz=50) as poller:
        time.sleep(2.0)
        data = poller.stop()
    assert poller.device_info["gpu_uuid"]
    assert 90 <= len(data["t"]) <= 110
    assert all(p > 0 for p in data["power_w"])
    assert len(data["memory_used_bytes"]) == len(data["t"])
