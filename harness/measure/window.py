"""One measurement window: latency, throughput, power, energy and memory of the same run.

In the style of Zeus's ``begin_window``/``end_window``::

    window = MeasurementWindow("cuda:0", settings)
    window.begin()                       # poller on, optional cooldown, idle baseline, RSS peak reset
    session = backend.load(target)       # loading is inside the window: its memory peak counts
    result = window.measure(session, batch=4, macs_per_forward=macs)   # warmup, timed phase, end

The timed phase is stretched to ``min_window_s`` so that a short run still spans many power-sensor
updates. Energy counters are read right before and after the timed phase (warmup excluded).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import Session
from harness.measure import cpu_energy, energy
from harness.measure.memory import peak_rss_bytes, reset_peak_rss
from harness.measure.nvml_poller import DEFAULT_RATE_HZ, NvmlPoller, nvml_index, nvml_init, read_energy_j
from harness.measure.timer import Timing, TimingProtocol
from harness.results.records import EnergyFigures, MemoryFigures, PollerFigures

#: Coarsest common RAPL energy unit (2^-14 J); the sysfs counter is in uJ but moves in these steps.
RAPL_RESOLUTION_J = 2.0**-14


@dataclass(frozen=True)
class WindowSettings:
    protocol: TimingProtocol = field(default_factory=TimingProtocol)
    min_window_s: float = 5.0  # the timed phase lasts at least this long
    idle_s: float = 2.0  # idle baseline before the network runs
    cooldown_to_c: float | None = None  # wait until the GPU is at most this warm (None: no cooldown)
    cooldown_timeout_s: float = 300.0
    poll_hz: float = DEFAULT_RATE_HZ


@dataclass
class WindowResult:
    timing: Timing
    memory: MemoryFigures
    energy: EnergyFigures | None
    poller: PollerFigures | None
    timeline: dict[str, list[Any]]
    device_info: dict[str, Any]
    notes: list[str]


class MeasurementWindow:
    def __init__(self, device: str, settings: WindowSettings) -> None:
        self.device = device
        self.settings = settings
        self.notes: list[str] = []
        self._poller: NvmlPoller | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self._rapl = cpu_energy.open_rapl() if device == "cpu" else None
        self._idle = energy.Span(0.0, 0.0)
        self._idle_rapl_j: float | None = None

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")

    def begin(self) -> None:
        """Start sampling, cool down if asked, then measure the idle baseline."""
        if self.gpu:
            self._nvml = nvml_init()
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(nvml_index(self.device))
            self._cooldown()
            self._poller = NvmlPoller(self.device, self.settings.poll_hz).start()
        reset_peak_rss()
        start = time.time()
        rapl_start = self._rapl.read() if self._rapl else None
        time.sleep(self.settings.idle_s)
        if self._rapl and rapl_start is not None:
            self._idle_rapl_j = self._rapl.joules_between(rapl_start, self._rapl.read())
        self._idle = energy.Span(start, time.time())

    def _cooldown(self) -> None:
        target = self.settings.cooldown_to_c
        if target is None:
            return
        deadline = time.monotonic() + self.settings.cooldown_timeout_s
        temp = self._nvml.nvmlDeviceGetTemperature(self._handle, self._nvml.NVML_TEMPERATURE_GPU)
        while temp > target and time.monotonic() < deadline:
            time.sleep(1.0)
            temp = self._nvml.nvmlDeviceGetTemperature(self._handle, self._nvml.NVML_TEMPERATURE_GPU)
        if temp > target:
            self.notes.append(f"cooldown to {target} C timed out at {temp} C")

    def abort(self) -> None:
        """Stop sampling after a failed configuration (nothing is derived)."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def measure(self, session: Session, batch: int, macs_per_forward: int | None) -> WindowResult:
        protocol = self.settings.protocol
        warmup = session.run_timed(protocol.warmup_only())
        counter_start = self._read_counter()
        timing = session.run_timed(protocol.timed_only(self.settings.min_window_s))
        counter_end = self._read_counter()
        timing.warmup_iters, timing.warmup_s = warmup.warmup_iters, warmup.warmup_s
        timeline = self._poller.stop() if self._poller is not None else {}
        device_info = self._poller.device_info if self._poller is not None else {}
        self._poller = None

        pid = session.info.get("pid", os.getpid())
        memory = MemoryFigures(host_rss_peak_bytes=peak_rss_bytes(pid),
                               framework_bytes=session.framework_memory_bytes())
        timed = energy.Span(timing.wall_start, timing.wall_end)
        figures = poller = None
        if timeline.get("t"):
            memory.device_used_peak_bytes = max(timeline["memory_used_bytes"], default=None)
            memory.device_used_idle_bytes = timeline["memory_used_bytes"][0]
            memory.process_device_peak_bytes = _process_peak(timeline.get("process_memory"), {os.getpid(), pid})
            poller = energy.poller_figures(timeline["t"], timeline["power_w"], self.settings.poll_hz)
            counter = None if counter_start is None or counter_end is None else counter_end - counter_start
            figures = energy.energy_figures(timeline["t"], timeline["power_w"], self._idle, timed,
                                            timing.iterations, macs_per_forward, counter_j=counter)
        elif self._rapl is not None and self._idle_rapl_j is not None and counter_start is not None:
            timed_j = self._rapl.joules_between(counter_start, counter_end)
            figures = energy.counter_figures(self._idle_rapl_j, self._idle, timed_j, timed, timing.iterations,
                                             macs_per_forward, RAPL_RESOLUTION_J, "rapl")
        elif not self.gpu:
            self.notes.append("CPU power/energy unavailable: RAPL (/sys/class/powercap) is not readable here")
        return WindowResult(timing, memory, figures, poller, timeline, device_info, self.notes)

    def _read_counter(self) -> Any:
        """Energy so far in J (GPU) or raw RAPL readings (CPU); None where there is no counter."""
        if self.gpu:
            return read_energy_j(self._nvml, self._handle)
        if self._rapl is not None:
            return self._rapl.read()
        return None


def _process_peak(samples: list[list[list[int]]] | None, pids: set[int]) -> int | None:
    """Peak over samples of the device memory NVML attributes to ``pids`` (None if never seen: NVML
    reports host PIDs, which differ from ours inside a container)."""
    if not samples:
        return None
    totals = [sum(b for p, b in sample if p in pids) for sample in samples if sample]
    return max(totals) if totals and max(totals) > 0 else None
