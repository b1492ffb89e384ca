"""NVML sampling of power, memory, clocks, temperature, utilisation and throttle reasons.

The poller runs in its OWN process (multiprocessing "spawn"), so a benchmark that keeps the
interpreter busy (or holds the GIL in a framework call) cannot delay its samples. It samples on an
absolute schedule at ``rate_hz`` (default 50 Hz, the rate of the paper's nvidia-smi recording) and
returns the whole timeline column-wise when stopped. Fields a GPU does not support are probed once
at start and left out (recorded in ``device_info["unsupported"]``) rather than failing every sample.

Uses nvidia-ml-py (``import pynvml``), the ``gpu`` extra.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from types import ModuleType
from typing import Any

from harness.errors import BackendUnavailable

DEFAULT_RATE_HZ = 50.0
READY_TIMEOUT_S = 60.0


class NvmlUnavailable(BackendUnavailable):
    """No NVIDIA GPU, driver or nvidia-ml-py: GPU power and memory cannot be measured."""


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable("no NVML: nvidia-ml-py is not installed (pip install 'harness[gpu]')") from None
    return pynvml


def nvml_init() -> ModuleType:
    """Import and initialise NVML, or raise NvmlUnavailable saying why (no GPU/driver is the usual case)."""
    pynvml = _import_pynvml()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"no NVIDIA GPU/driver: NVML cannot initialise ({exc})") from None
    return pynvml


def nvml_index(device: str) -> int:
    """NVML device index for ``cuda:N``: the Nth entry of CUDA_VISIBLE_DEVICES when that lists indices."""
    if not device.startswith("cuda"):
        raise ValueError(f"not a CUDA device: {device}")
    n = int(device.partition(":")[2] or 0)
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and all(v.isdigit() for v in visible) and n < len(visible):
        return int(visible[n])
    return n


def _optional(fn: Callable[[], Any]) -> Any:
    """The value of an NVML query, or None where this GPU/driver does not support it."""
    try:
        return fn()
    except Exception:  # NVMLError_NotSupported, NoPermission, FunctionNotFound (old driver)...
        return None


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def device_info(pynvml: ModuleType, handle: Any) -> dict[str, Any]:
    """Static facts recorded with every GPU result."""
    clocks = pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM
    return {
        "gpu_name": _text(_optional(lambda: pynvml.nvmlDeviceGetName(handle))),
        "gpu_uuid": _text(_optional(lambda: pynvml.nvmlDeviceGetUUID(handle))),
        "driver": _text(_optional(pynvml.nvmlSystemGetDriverVersion)),
        "cuda_driver": _optional(pynvml.nvmlSystemGetCudaDriverVersion),
        "power_limit_w": _milli(_optional(lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle))),
        "memory_total_bytes": _optional(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        "max_sm_clock_mhz": _optional(lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, clocks[0])),
        "max_mem_clock_mhz": _optional(lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, clocks[1])),
        "app_sm_clock_mhz": _optional(lambda: pynvml.nvmlDeviceGetApplicationsClock(handle, clocks[0])),
        "app_mem_clock_mhz": _optional(lambda: pynvml.nvmlDeviceGetApplicationsClock(handle, clocks[1])),
        "persistence_mode": _optional(lambda: pynvml.nvmlDeviceGetPersistenceMode(handle)),
    }


def _milli(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


def read_energy_j(pynvml: ModuleType, handle: Any) -> float | None:
    """The device's cumulative energy counter (J since driver load), None where unsupported (pre-Volta)."""
    mj = _optional(lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    return None if mj is None else mj / 1000.0


def _samplers(pynvml: ModuleType, handle: Any) -> tuple[dict[str, Callable[[], Any]], list[str]]:
    """Column name -> zero-argument reader, keeping only those this GPU answers."""
    throttle = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    field_ids = [pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_FI_DEV_POWER_AVERAGE]

    def power_fields() -> list[float | None]:
        values = pynvml.nvmlDeviceGetFieldValues(handle, field_ids)
        return [v.value.uiVal / 1000.0 if v.nvmlReturn == pynvml.NVML_SUCCESS else None for v in values]

    def processes() -> list[list[int]]:
        return [[p.pid, p.usedGpuMemory or 0] for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]

    candidates: dict[str, Callable[[], Any]] = {
        "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "power_fields_w": power_fields,  # [instant, average] where supported (Ampere+ drivers)
        "memory_used_bytes": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used,
        "memory_used_v2_bytes": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2).used,
        "process_memory": processes,  # [[pid, bytes], ...]
        "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
        "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
        "utilization": lambda: [(u := pynvml.nvmlDeviceGetUtilizationRates(handle)).gpu, u.memory],
        "throttle_reasons": lambda: throttle(handle),
    }
    supported, unsupported = {}, []
    for name, read in candidates.items():
        value = _optional(read)
        if value is None or (name == "power_fields_w" and all(v is None for v in value)):
            unsupported.append(name)
        else:
            supported[name] = read
    return supported, unsupported


def _poll(conn: Connection, stop: Event, index: int, rate_hz: float, columns: list[str] | None) -> None:
    """The poller process: report ready (or why not), sample until stopped, send the columns back."""
    try:
        pynvml = nvml_init()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        readers, unsupported = _samplers(pynvml, handle)
        if columns is not None:
            readers = {k: v for k, v in readers.items() if k in columns or k == "power_w"}
        info = {**device_info(pynvml, handle), "nvml_index": index, "unsupported": unsupported}
    except Exception as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", info))
    data: dict[str, list[Any]] = {"t": [], **{k: [] for k in readers}}
    period = 1.0 / rate_hz
    next_tick = time.perf_counter()
    while not stop.is_set():
        data["t"].append(time.time())
        for name, read in readers.items():
            data[name].append(_optional(read))
        next_tick += period
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:  # fell behind (a slow query): resume the schedule from now, no burst
            next_tick = time.perf_counter()
    conn.send(("samples", data))
    pynvml.nvmlShutdown()


class NvmlPoller:
    """Sample one GPU from a separate process between :meth:`start` and :meth:`stop`.

    ``columns``: restrict sampling to these columns (power is always sampled) - fewer NVML queries per
    sample allow higher rates.
    """

    def __init__(self, device: str = "cuda:0", rate_hz: float = DEFAULT_RATE_HZ,
                 columns: list[str] | None = None) -> None:
        if rate_hz <= 0:
            raise ValueError("poller rate must be > 0 Hz")
        self.index = nvml_index(device)
        self.rate_hz = rate_hz
        self.columns = columns
        self.device_info: dict[str, Any] = {}
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._stop: Event | None = None

    def start(self) -> NvmlPoller:
        parent, child = self._ctx.Pipe(duplex=False)
        self._stop = self._ctx.Event()
        self._proc = self._ctx.Process(target=_poll, args=(child, self._stop, self.index, self.rate_hz,
                                                            self.columns), daemon=True, name="nvml-poller")
        self._proc.start()
        child.close()
        if not parent.poll(READY_TIMEOUT_S):
            self._kill()
            parent.close()
            raise NvmlUnavailable(f"the NVML poller did not start within {READY_TIMEOUT_S:.0f} s")
        kind, payload = parent.recv()
        if kind == "error":
            self._proc.join()
            parent.close()
            raise NvmlUnavailable(payload)
        self._conn = parent
        self.device_info = payload
        return self

    def stop(self) -> dict[str, list[Any]]:
        """Stop sampling and return the timeline: {"t": [time.time(), ...], "power_w": [...], ...}."""
        if self._conn is None or self._stop is None:
            raise RuntimeError("poller not started")
        self._stop.set()
        try:
            _, data = self._conn.recv()
        except EOFError:
            raise NvmlUnavailable("the NVML poller process died while sampling") from None
        finally:
            self._conn.close()
            self._conn = None
            self._proc.join()
        return data

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    def __enter__(self) -> NvmlPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self.stop()
