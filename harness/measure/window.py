"""One measurement window: latency, throughput, power, energy and memory of the same run.

In the style of Zeus's ``begin_window``/``end_window``::

    window = MeasurementWindow("cuda:0", settings, gpu=GpuTarget(uuid, poller_python))
    window.begin()                       # poller on, optional cooldown, idle baseline, RSS peak reset
    session = backend.load(target)       # loading is inside the window: its memory peak counts
    result = window.measure(session, batch=4, macs_per_forward=macs)   # warmup, timed phase, end

The timed phase is stretched to ``min_window_s`` so that a short run still spans many power-sensor
updates. Energy counters are read right before and after the timed phase (warmup excluded); a GPU's
energy figures, counter and integrated power alike, span the counter's two reads. Every
NVML reading goes through the poller process, so the process that runs the network (a Caffe worker
under pycaffe's interpreter, say) needs no NVML itself. A contention guard (:mod:`harness.measure.contention`)
watches other GPU processes and the CPU use of others before, during and after the window.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.backends.base import Session
from harness.measure import cpu_energy, energy
from harness.measure.contention import ContentionGuard, ContentionReport
from harness.measure.memory import peak_rss_bytes, reset_peak_rss
from harness.measure.nvml_poller import DEFAULT_RATE_HZ, NvmlPoller, NvmlUnavailable
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
    #: how long a worker may take before it counts as stuck (None: from the other settings)
    worker_timeout_s: float | None = None
    #: RLIMIT_AS of each worker in bytes (None: no limit): caps host memory, so a configuration that
    #: needs more ends as ``oom`` instead of swapping or meeting the kernel's OOM killer
    worker_address_space_bytes: float | None = None
    #: the window is flagged ``contended`` when others' CPU use over the timed phase exceeds this share of
    #: our CPUs, or the runnable tasks beside ours exceed this share of the machine's CPUs on average
    #: (harness.measure.contention says why these levels)
    contention_cpu_share: float = 0.25
    contention_runnable_share: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        """The settings as data (a job's JSON, a record's metadata): the protocol without its callable."""
        return {**asdict(replace(self, protocol=TimingProtocol())), "protocol": self.protocol.as_dict()}


@dataclass(frozen=True)
class GpuTarget:
    """The GPU a window samples: its UUID, and the interpreter that has nvidia-ml-py for the poller."""

    uuid: str
    poller_python: str | None = None


@dataclass
class WindowResult:
    timing: Timing
    memory: MemoryFigures
    energy: EnergyFigures | None
    poller: PollerFigures | None
    timeline: dict[str, list[Any]]
    device_info: dict[str, Any]
    notes: list[str]
    contention: ContentionReport | None = None


class MeasurementWindow:
    def __init__(self, device: str, settings: WindowSettings, gpu: GpuTarget | None = None) -> None:
        if device.startswith("cuda") and gpu is None:
            raise ValueError("a CUDA window needs the GPU's UUID (harness.measure.devices.identify)")
        self.device = device
        self.settings = settings
        self.gpu = gpu if device.startswith("cuda") else None
        self.notes: list[str] = []
        self._poller: NvmlPoller | None = None
        self._start: dict[str, Any] = {}
        self._rapl = cpu_energy.open_rapl() if device == "cpu" else None
        self._idle = energy.Span(0.0, 0.0)
        self._idle_rapl_j: float | None = None
        self._guard = ContentionGuard(settings.contention_cpu_share, settings.contention_runnable_share,
                                      gpu=self.gpu is not None)

    def begin(self) -> None:
        """Start sampling, cool down if asked, read memory at window start, then the idle baseline."""
        if self.gpu is not None:
            self._poller = NvmlPoller(self.gpu.uuid, self.settings.poll_hz, python=self.gpu.poller_python).start()
            self._cooldown()
            self._start = self._poller.request("now")
        self._guard.begin(self._start.get("processes"))
        reset_peak_rss()
        start = time.time()
        rapl_start = self._rapl.read() if self._rapl else None
        time.sleep(self.settings.idle_s)
        if self._rapl and rapl_start is not None:
            self._idle_rapl_j = self._rapl.joules_between(rapl_start, self._rapl.read())
        self._idle = energy.Span(start, time.time())

    def _cooldown(self) -> None:
        target = self.settings.cooldown_to_c
        if target is None or self._poller is None:
            return
        deadline = time.monotonic() + self.settings.cooldown_timeout_s
        temp = self._poller.request("now")["temperature_c"]
        while temp is not None and temp > target and time.monotonic() < deadline:
            time.sleep(1.0)
            temp = self._poller.request("now")["temperature_c"]
        if temp is None:
            self.notes.append("cooldown skipped: this GPU reports no temperature")
        elif temp > target:
            self.notes.append(f"cooldown to {target} C timed out at {temp} C")

    def abort(self) -> None:
        """Stop sampling after a failed configuration (nothing is derived)."""
        self._guard.stop()
        if self._poller is not None:
            poller, self._poller = self._poller, None
            try:
                poller.stop()
            except Exception:  # the poller's own failure must not hide the configuration's
                self.notes.append("the NVML poller could not be stopped cleanly")

    def measure(self, session: Session, batch: int, macs_per_forward: int | None) -> WindowResult:
        protocol = self.settings.protocol
        warmup = session.run_timed(protocol.warmup_only())
        self._guard.timed_start()
        counter_start = self._read_counter()
        timing = session.run_timed(protocol.timed_only(self.settings.min_window_s))
        counter_end = self._read_counter()
        self._guard.timed_end()
        timing.warmup_iters, timing.warmup_s = warmup.warmup_iters, warmup.warmup_s
        poller, self._poller = self._poller, None
        after = _processes_now(poller)
        timeline = poller.stop() if poller is not None else {}
        contention = self._guard.end(after, timeline.get("process_memory"))
        device_info = poller.device_info if poller is not None else {}

        pids = {os.getpid(), session.info.get("pid", os.getpid())}
        memory = MemoryFigures(host_rss_peak_bytes=peak_rss_bytes(session.info.get("pid")),
                               framework_bytes=session.framework_memory_bytes())
        timed = energy.Span(timing.wall_start, timing.wall_end)
        figures = poller_figures = None
        if self.gpu is not None:
            memory.device_used_start_bytes = self._start.get("memory_used_bytes")
            memory.process_device_start_bytes = _ours(self._start.get("processes"), pids)
            used = [v for v in timeline.get("memory_used_bytes", []) if v is not None]
            memory.device_used_peak_bytes = max(used, default=None)
            memory.process_device_peak_bytes = _process_peak(timeline.get("process_memory"), pids)
            counter = None
            if counter_start is not None and counter_end is not None and None not in (counter_start[1], counter_end[1]):
                counter = counter_end[1] - counter_start[1]
                # every source over one span: the counter's own (its reads bracket the timed phase by the
                # poller's reply time, milliseconds), so that counter and integrated power cannot differ by span
                timed = energy.Span(counter_start[0], counter_end[0])
            figures, notes = energy.timeline_energy(timeline, self._idle, timed, timing.iterations, macs_per_forward,
                                                    counter, device_info.get("power_usage_is_1s_average"))
            self.notes.extend(notes)
            if figures is None and counter is not None:
                figures = energy.counter_figures_without_idle(counter, timed, timing.iterations, macs_per_forward,
                                                              energy.counter_refresh(timeline, timed))
            if timeline.get("t"):
                primary = next((timeline[c] for c, _ in energy.POWER_SERIES if timeline.get(c)), [])
                poller_figures = energy.poller_figures(timeline["t"], primary, self.settings.poll_hz)
        elif self._rapl is not None and self._idle_rapl_j is not None and counter_start is not None:
            timed_j = self._rapl.joules_between(counter_start, counter_end)
            figures = energy.counter_figures(self._idle_rapl_j, self._idle, timed_j, timed, timing.iterations,
                                             macs_per_forward, RAPL_RESOLUTION_J, "rapl")
        else:
            self.notes.append("CPU power/energy unavailable: RAPL (/sys/class/powercap) is not readable here")
        return WindowResult(timing, memory, figures, poller_figures, timeline, device_info, self.notes, contention)

    def _read_counter(self) -> Any:
        """(time read, energy so far in J or None) on a GPU, raw RAPL readings on a CPU; None where there is
        no counter."""
        if self._poller is not None:
            return self._poller.energy_reading()
        if self._rapl is not None:
            return self._rapl.read()
        return None


def _processes_now(poller: NvmlPoller | None) -> list[list[Any]] | None:
    """The GPU's processes right after the timed phase, for the contention guard (None where the poller
    cannot say: its failure must not cost the measurement)."""
    if poller is None:
        return None
    try:
        return poller.request("now")["processes"]
    except NvmlUnavailable:
        return None


def _ours(processes: list[list[Any]] | None, pids: set[int]) -> int | None:
    """Device memory NVML attributes to ``pids`` in one reading ([[pid, bytes, ...], ...]); None when it lists
    none of them."""
    if not processes:
        return None
    mine = [entry[1] for entry in processes if entry[0] in pids]
    return sum(mine) if mine else None


def _process_peak(samples: list[list[list[Any]] | None] | None, pids: set[int]) -> int | None:
    """Peak over samples of the device memory NVML attributes to ``pids`` (None if never seen: NVML
    reports host PIDs, which differ from ours inside a container)."""
    totals = [t for t in (_ours(sample, pids) for sample in samples or []) if t is not None]
    return max(totals) if totals and max(totals) > 0 else None
