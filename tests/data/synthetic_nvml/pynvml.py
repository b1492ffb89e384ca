"""SYNTHETIC stand-in for nvidia-ml-py's ``pynvml`` (no NVIDIA GPU exists where the tests run).

Put this folder first on PYTHONPATH and the harness's NVML code (poller process, device identity,
doctor) talks to made-up GPUs instead of a driver. It implements only the calls the harness makes,
with the semantics NVML documents (milliwatts, millijoules, bytes, NVMLError on unsupported queries),
so the harness's own handling of unsupported fields and unreadable samples is exercised end to end.
Nothing it returns is a measurement. Behaviour comes from the JSON in ``HARNESS_SYNTHETIC_NVML``:

- ``gpus``: [{"uuid": "GPU-...", "name": "...", "cc": [9, 0]}] (default: one made-up GPU)
- ``power_w``: constant board power (default 100.0); the energy counter grows at exactly that rate
- ``instant``: whether the field NVML_FI_DEV_POWER_INSTANT is supported (default true)
- ``energy``: whether the energy counter is supported (default true)
- ``missing_every``: every Nth power reading fails (default 0: none)
- ``processes``: [[pid, bytes], ...] with a compute context on every GPU (default none)
- ``graphics``: [[pid, bytes], ...] with a graphics context on every GPU (default none; a pid in both lists
  has both, as nvidia-smi's type C+G)
- ``names``: {"pid": "name"} what nvmlSystemGetProcessName answers (default: NVMLError, as for a process
  NVML cannot name)
- ``energy_refresh_s``: the energy counter moves in steps this far apart (default 0: every read)
"""

from __future__ import annotations

import itertools
import json
import os
import time
from types import SimpleNamespace

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_TEMPERATURE_GPU = 0
NVML_FI_DEV_POWER_INSTANT = 186
NVML_FI_DEV_POWER_AVERAGE = 185
nvmlMemory_v2 = 33554472

_SPEC = json.loads(os.environ.get("HARNESS_SYNTHETIC_NVML") or "{}")
_GPUS = _SPEC.get("gpus") or [{"uuid": "GPU-5e000000-0000-4000-8000-000000000001", "name": "Synthetic GPU",
                               "cc": [9, 0]}]
_START = time.time()
_READS = itertools.count(1)


class NVMLError(Exception):
    def __init__(self, value: int = NVML_ERROR_NOT_SUPPORTED) -> None:
        self.value = value
        super().__init__("Not Supported" if value == NVML_ERROR_NOT_SUPPORTED else f"NVML error {value}")


class NVMLError_NotSupported(NVMLError):
    pass


def nvmlInit() -> None:
    pass


def nvmlShutdown() -> None:
    pass


def nvmlDeviceGetCount() -> int:
    return len(_GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> dict:
    if not 0 <= index < len(_GPUS):
        raise NVMLError(2)
    return _GPUS[index]


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> dict:
    text = uuid.decode() if isinstance(uuid, bytes) else uuid
    for gpu in _GPUS:
        if gpu["uuid"] == text:
            return gpu
    raise NVMLError(2)


def nvmlDeviceGetUUID(handle: dict) -> str:
    return handle["uuid"]


def nvmlDeviceGetName(handle: dict) -> str:
    return handle["name"]


def nvmlDeviceGetCudaComputeCapability(handle: dict) -> tuple[int, int]:
    return tuple(handle.get("cc", [9, 0]))


def nvmlSystemGetDriverVersion() -> str:
    return "synthetic"


def nvmlSystemGetCudaDriverVersion() -> int:
    raise NVMLError()


def nvmlDeviceGetEnforcedPowerLimit(handle: dict) -> int:
    return 700_000


def nvmlDeviceGetMemoryInfo(handle: dict, version: int | None = None) -> SimpleNamespace:
    used = 500 * 2**20 + sum(b for key in ("processes", "graphics") for _, b in _SPEC.get(key, []))
    return SimpleNamespace(total=80 * 2**30, used=used, free=80 * 2**30 - used)


def nvmlDeviceGetMaxClockInfo(handle: dict, clock: int) -> int:
    return 1980 if clock == NVML_CLOCK_SM else 2619


def nvmlDeviceGetApplicationsClock(handle: dict, clock: int) -> int:
    raise NVMLError()


def nvmlDeviceGetPersistenceMode(handle: dict) -> int:
    return 1


def _power_mw() -> int:
    every = int(_SPEC.get("missing_every", 0))
    if every and next(_READS) % every == 0:
        raise NVMLError(999)  # an unreadable sample (NVML_ERROR_UNKNOWN is 999)
    return int(float(_SPEC.get("power_w", 100.0)) * 1000)


def nvmlDeviceGetPowerUsage(handle: dict) -> int:
    return _power_mw()


def nvmlDeviceGetFieldValues(handle: dict, field_ids: list[int]) -> list[SimpleNamespace]:
    out = []
    for field in field_ids:
        if field == NVML_FI_DEV_POWER_INSTANT and _SPEC.get("instant", True):
            try:
                out.append(SimpleNamespace(nvmlReturn=NVML_SUCCESS, value=SimpleNamespace(uiVal=_power_mw())))
            except NVMLError:
                out.append(SimpleNamespace(nvmlReturn=999, value=SimpleNamespace(uiVal=0)))
        else:
            out.append(SimpleNamespace(nvmlReturn=NVML_ERROR_NOT_SUPPORTED, value=SimpleNamespace(uiVal=0)))
    return out


def nvmlDeviceGetTotalEnergyConsumption(handle: dict) -> int:
    if not _SPEC.get("energy", True):
        raise NVMLError()
    elapsed = time.time() - _START
    step = float(_SPEC.get("energy_refresh_s", 0.0))
    if step > 0:
        elapsed = (elapsed // step) * step
    return int(elapsed * float(_SPEC.get("power_w", 100.0)) * 1000)


def _processes(key: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in _SPEC.get(key, [])]


def nvmlDeviceGetComputeRunningProcesses(handle: dict) -> list[SimpleNamespace]:
    return _processes("processes")


def nvmlDeviceGetGraphicsRunningProcesses(handle: dict) -> list[SimpleNamespace]:
    return _processes("graphics")


def nvmlSystemGetProcessName(pid: int) -> str:
    name = _SPEC.get("names", {}).get(str(pid))
    if name is None:
        raise NVMLError(2)
    return name


def nvmlDeviceGetClockInfo(handle: dict, clock: int) -> int:
    return 1755 if clock == NVML_CLOCK_SM else 2619


def nvmlDeviceGetTemperature(handle: dict, sensor: int) -> int:
    return 40


def nvmlDeviceGetUtilizationRates(handle: dict) -> SimpleNamespace:
    raise NVMLError()


def nvmlDeviceGetCurrentClocksEventReasons(handle: dict) -> int:
    return 0
