"""NVML sampling of power, memory, clocks, temperature, utilisation, throttle reasons and GPU processes.

The poller is a process of its OWN (``python -m harness.measure.nvml_poller``), for two reasons: a
benchmark that keeps its interpreter busy (or holds the GIL in a framework call) cannot delay the
samples, and the interpreter that runs a network need not have NVML at all - a Caffe worker runs
under the interpreter that has pycaffe, and the poller under the harness's own (``python`` argument).
The two talk over pipes in JSON lines: the poller prints ``{"ready": device facts}`` (or
``{"error": why}``) and samples on an absolute schedule at ``rate_hz`` (default 50 Hz, the rate of the
paper's nvidia-smi recording). Meanwhile it answers requests, one line each: ``energy`` (the energy
counter now, for the edges of a timed phase), ``now`` (memory, GPU processes and temperature now, for
a window's start and a cooldown); ``stop`` (or end of input) ends sampling and brings
``{"samples": columns}``. So the process measuring a network needs no NVML of its own.

The GPU is opened by UUID (:mod:`harness.measure.devices` maps ``cuda:N`` to it). Power comes as two
series: ``power_instant_w`` (the field NVML_FI_DEV_POWER_INSTANT, where the driver has it) and
``power_average_w`` (nvmlDeviceGetPowerUsage, which NVIDIA documents as a 1-second average on Ampere
and newer GPUs except GA100, and as instantaneous before). Fields a GPU does not answer are probed
once at start and left out (``device_info["unsupported"]``); a sample that fails later is ``None``.

Uses nvidia-ml-py (``import pynvml``), the ``gpu`` extra.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import IO, Any

from harness.errors import BackendUnavailable

DEFAULT_RATE_HZ = 50.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
#: nvmlDeviceGetPowerUsage averages over 1 s from this compute capability on (GA100, 8.0, is instant)
AVERAGED_POWER_FROM_CC = (8, 6)


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


def optional(fn: Callable[[], Any]) -> Any:
    """The value of an NVML query, or None where this GPU/driver does not support it."""
    try:
        return fn()
    except Exception:  # NVMLError_NotSupported, NoPermission, FunctionNotFound (old driver)...
        return None


def decoded(value: Any) -> Any:
    """NVML's text answers are bytes in older nvidia-ml-py releases, str in newer ones."""
    return value.decode() if isinstance(value, bytes) else value


def _milli(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


def averaged_power_usage(compute_capability: tuple[int, int] | None) -> bool | None:
    """Whether nvmlDeviceGetPowerUsage is a 1-second average on a GPU of this compute capability."""
    return None if compute_capability is None else tuple(compute_capability) >= AVERAGED_POWER_FROM_CC


def device_info(pynvml: ModuleType, handle: Any) -> dict[str, Any]:
    """Static facts recorded with every GPU result."""
    clocks = pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM
    cc = optional(lambda: tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)))
    return {
        "gpu_name": decoded(optional(lambda: pynvml.nvmlDeviceGetName(handle))),
        "gpu_uuid": decoded(optional(lambda: pynvml.nvmlDeviceGetUUID(handle))),
        "compute_capability": None if cc is None else f"{cc[0]}.{cc[1]}",
        "power_usage_is_1s_average": averaged_power_usage(cc),
        "driver": decoded(optional(pynvml.nvmlSystemGetDriverVersion)),
        "cuda_driver": optional(pynvml.nvmlSystemGetCudaDriverVersion),
        "power_limit_w": _milli(optional(lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle))),
        "memory_total_bytes": optional(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        "max_sm_clock_mhz": optional(lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, clocks[0])),
        "max_mem_clock_mhz": optional(lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, clocks[1])),
        "app_sm_clock_mhz": optional(lambda: pynvml.nvmlDeviceGetApplicationsClock(handle, clocks[0])),
        "app_mem_clock_mhz": optional(lambda: pynvml.nvmlDeviceGetApplicationsClock(handle, clocks[1])),
        "persistence_mode": optional(lambda: pynvml.nvmlDeviceGetPersistenceMode(handle)),
    }


def handle_by_uuid(pynvml: ModuleType, uuid: str) -> Any:
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(uuid)
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML has no GPU {uuid} ({exc})") from None


def read_energy_j(pynvml: ModuleType, handle: Any) -> float | None:
    """The device's cumulative energy counter (J since driver load), None where unsupported (pre-Volta)."""
    mj = optional(lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    return None if mj is None else mj / 1000.0


#: pid -> process name, as NVML names it (looked up once per pid in a poller's life)
_PROCESS_NAMES: dict[int, str | None] = {}


def process_name(pynvml: ModuleType, pid: int) -> str | None:
    """The name NVML gives a process on the GPU (its executable's path; NVML sees host PIDs, which a
    container's /proc does not), None where it cannot say."""
    if pid not in _PROCESS_NAMES:
        _PROCESS_NAMES[pid] = decoded(optional(lambda: pynvml.nvmlSystemGetProcessName(pid)))
    return _PROCESS_NAMES[pid]


def gpu_processes(pynvml: ModuleType, handle: Any) -> list[list[Any]]:
    """[[pid, bytes, type, name], ...] of the processes on the GPU: bytes 0 where NVML hides them; type as
    nvidia-smi's column says it, ``C`` (a compute context), ``G`` (graphics only: a display server or a
    compositor drawing the desktop) or ``C+G``; name as :func:`process_name`."""
    seen: dict[int, list[Any]] = {}
    for query, kind in (("nvmlDeviceGetComputeRunningProcesses", "C"), ("nvmlDeviceGetGraphicsRunningProcesses", "G")):
        for p in optional(lambda q=query: getattr(pynvml, q)(handle)) or []:
            entry = seen.setdefault(int(p.pid), [int(p.pid), 0, ""])
            entry[1] = max(entry[1], int(p.usedGpuMemory or 0))
            entry[2] = kind if entry[2] in ("", kind) else "C+G"
    return [[pid, used, kind, process_name(pynvml, pid)] for pid, used, kind in seen.values()]


def _samplers(pynvml: ModuleType, handle: Any) -> tuple[dict[str, Callable[[], Any]], list[str]]:
    """Column name -> zero-argument reader, keeping only those this GPU answers."""
    throttle = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    instant_field = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", None)

    def instant_power() -> float | None:
        (value,) = pynvml.nvmlDeviceGetFieldValues(handle, [instant_field])
        return value.value.uiVal / 1000.0 if value.nvmlReturn == pynvml.NVML_SUCCESS else None

    candidates: dict[str, Callable[[], Any]] = {
        "power_average_w": lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "memory_used_bytes": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used,
        "process_memory": lambda: gpu_processes(pynvml, handle),  # [[pid, bytes, type, name], ...]
        "energy_j": lambda: read_energy_j(pynvml, handle),  # the counter's own refresh (edges of a window)
        "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
        "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
        "utilization": lambda: [(u := pynvml.nvmlDeviceGetUtilizationRates(handle)).gpu, u.memory],
        "throttle_reasons": lambda: throttle(handle),
    }
    if instant_field is not None:
        candidates["power_instant_w"] = instant_power
    supported, unsupported = {}, [] if instant_field is not None else ["power_instant_w"]
    for name, read in candidates.items():
        if optional(read) is None:
            unsupported.append(name)
        else:
            supported[name] = read
    return supported, unsupported


def sample_loop(readers: dict[str, Callable[[], Any]], rate_hz: float, stop: threading.Event,
                clock: Callable[[], float] = time.time) -> dict[str, list[Any]]:
    """Sample every reader on an absolute schedule until ``stop``; a failed read is None, never fatal."""
    data: dict[str, list[Any]] = {"t": [], **{k: [] for k in readers}}
    period = 1.0 / rate_hz
    next_tick = time.perf_counter()
    while not stop.is_set():
        data["t"].append(clock())
        for name, read in readers.items():
            data[name].append(optional(read))
        next_tick += period
        delay = next_tick - time.perf_counter()
        if delay > 0:
            stop.wait(delay)
        elif delay < -period:  # fell behind (a slow query): resume the schedule from now, no burst
            next_tick = time.perf_counter()
    return data


def poller_main(argv: list[str]) -> int:
    """The poller process: ``--uuid UUID --rate HZ [--columns a,b]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m harness.measure.nvml_poller")
    p.add_argument("--uuid", required=True)
    p.add_argument("--rate", type=float, default=DEFAULT_RATE_HZ)
    p.add_argument("--columns", default=None, help="comma-separated columns (power is always sampled)")
    args = p.parse_args(argv)
    out = sys.stdout

    lock = threading.Lock()  # the request thread and the main thread both write

    def emit(message: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(message) + "\n")
            out.flush()

    try:
        pynvml = nvml_init()
        handle = handle_by_uuid(pynvml, args.uuid)
        readers, unsupported = _samplers(pynvml, handle)
        if args.columns is not None:
            keep = {c for c in args.columns.split(",") if c} | {"power_instant_w", "power_average_w"}
            readers = {k: v for k, v in readers.items() if k in keep}
        info = {**device_info(pynvml, handle), "unsupported": unsupported}
    except Exception as exc:  # reported to the parent as one line, which raises NvmlUnavailable
        emit({"error": str(exc)})
        return 1
    stop = threading.Event()
    emit({"ready": info})
    threading.Thread(target=serve_requests, args=(pynvml, handle, emit, stop), daemon=True).start()
    data = sample_loop(readers, args.rate, stop)
    emit({"samples": data})
    pynvml.nvmlShutdown()
    return 0


def snapshot(pynvml: ModuleType, handle: Any) -> dict[str, Any]:
    """Memory used, GPU processes and temperature right now (None where unsupported)."""
    return {"t": time.time(),
            "memory_used_bytes": optional(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used),
            "processes": gpu_processes(pynvml, handle),
            "temperature_c": optional(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))}


def serve_requests(pynvml: ModuleType, handle: Any, emit: Callable[[dict[str, Any]], None],
                   stop: threading.Event) -> None:
    """Answer ``energy`` and ``now`` requests from stdin until ``stop`` or end of input (NVML is
    thread-safe, so this runs beside the sampling loop)."""
    for line in sys.stdin:
        request = line.strip()
        if request == "energy":
            emit({"t": time.time(), "energy_j": read_energy_j(pynvml, handle)})
        elif request == "now":
            emit(snapshot(pynvml, handle))
        elif request == "stop":
            break
        else:
            emit({"error": f"unknown request {request!r}"})
    stop.set()


class NvmlPoller:
    """Sample one GPU (by UUID) from a separate process between :meth:`start` and :meth:`stop`.

    ``columns``: restrict sampling to these (power is always sampled) - fewer NVML queries per sample
    allow higher rates. ``python``: the interpreter that has nvidia-ml-py (default: this one).
    """

    def __init__(self, uuid: str, rate_hz: float = DEFAULT_RATE_HZ, columns: list[str] | None = None,
                 python: str | None = None) -> None:
        if rate_hz <= 0:
            raise ValueError("poller rate must be > 0 Hz")
        self.uuid = uuid
        self.rate_hz = rate_hz
        self.columns = columns
        self.python = python or sys.executable
        self.device_info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: LineReader | None = None

    def start(self) -> NvmlPoller:
        cmd = [self.python, "-m", "harness.measure.nvml_poller", "--uuid", self.uuid, "--rate", str(self.rate_hz)]
        if self.columns is not None:
            cmd += ["--columns", ",".join(self.columns)]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=_poller_env())
        except OSError as exc:
            raise NvmlUnavailable(f"cannot start the NVML poller with {self.python}: {exc.strerror}") from None
        assert self._proc.stdout is not None
        self._reader = LineReader(self._proc.stdout)
        message = self._reader.message(READY_TIMEOUT_S)
        if message is None or "ready" not in message:
            why = (message or {}).get("error") or self._stderr_tail() or "no reply"
            self._kill()
            raise NvmlUnavailable(f"the NVML poller did not start: {why}")
        self.device_info = message["ready"]
        return self

    def request(self, what: str) -> dict[str, Any]:
        """The answer to ``energy`` or ``now`` (see the module docstring)."""
        proc, reader = self._proc, self._reader
        if proc is None or proc.stdin is None or reader is None:
            raise RuntimeError("poller not started")
        try:
            proc.stdin.write(what.encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            raise NvmlUnavailable("the NVML poller process died while sampling") from None
        message = reader.message(REQUEST_TIMEOUT_S)
        if message is None or "error" in message:
            why = (message or {}).get("error", "no reply")
            raise NvmlUnavailable(f"the NVML poller did not answer '{what}': {why}")
        return message

    def energy_j(self) -> float | None:
        """The GPU's energy counter now (J since driver load), None where it has none (pre-Volta)."""
        return self.energy_reading()[1]

    def energy_reading(self) -> tuple[float, float | None]:
        """(``time.time()`` when the poller read the counter, the counter then in J or None): a span whose
        edges are these times is the counter's own span, to the microsecond."""
        reply = self.request("energy")
        return float(reply["t"]), reply["energy_j"]

    def stop(self) -> dict[str, list[Any]]:
        """Stop sampling and return the timeline: {"t": [time.time(), ...], "power_average_w": [...], ...}."""
        proc, reader = self._proc, self._reader
        if proc is None or reader is None:
            raise RuntimeError("poller not started")
        self._proc = self._reader = None
        assert proc.stdin is not None and proc.stdout is not None
        try:
            with contextlib.suppress(BrokenPipeError, OSError):
                proc.stdin.write(b"stop\n")
                proc.stdin.close()
            message = reader.message(STOP_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
        if message is None or "samples" not in message:
            raise NvmlUnavailable("the NVML poller process died while sampling")
        return message["samples"]

    def _stderr_tail(self) -> str:
        if self._proc is None or self._proc.stderr is None or self._proc.poll() is None:
            return ""
        return " | ".join(self._proc.stderr.read().decode(errors="replace").strip().splitlines()[-2:])

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> NvmlPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self.stop()


def _poller_env() -> dict[str, str]:
    """The poller imports the harness from where this process does: put that on PYTHONPATH, after
    whatever is there (a worker's path shim for another interpreter is harmless to this one)."""
    import harness

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(harness.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


class LineReader:
    """JSON messages, one per line, read from a pipe with a deadline (the poller may be stuck)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.pending = b""

    def message(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message within ``timeout_s``, or None (end of input, timeout, not a JSON object)."""
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.stream, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.stream.fileno(), 1 << 20)
                if not chunk:
                    return None
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


if __name__ == "__main__":
    sys.exit(poller_main(sys.argv[1:]))
