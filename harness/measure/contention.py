"""Measurement validity guard: did anything besides us use the GPU or the CPU while a window measured?

A record measured beside another job looks as valid as any other (on a busy 2-core machine PyTorch's CPU
latency grows tenfold), so every window watches its neighbours and says when they disturbed it. What it
reads, all of it cheap (Linux ``/proc`` and ``/sys``; the GPU's process list comes from the NVML poller
process, so the worker needs no NVML):

- **Other GPU processes** (GPU windows): NVML's list of processes on our GPU before the window, sampled
  during it (the poller's ``process_memory`` column) and after it. Any process that is not ours flags
  the window: a second CUDA context time-slices the GPU and shares its memory, power and clocks. Except
  the desktop's own: a process NVML lists as graphics-only (no compute context: type ``G``), or one of
  :data:`DESKTOP_PROCESSES` (display servers and compositors, which some drivers list with a compute
  context too), is recorded (``gpu_desktop_processes``) but does not flag the window: on a workstation
  they are always there, draw only when the screen changes, and flagging them would flag every window.
  (A memory floor, "small processes cannot hold a CUDA context", is not used: the floor would have to be
  measured per driver and GPU, and no GPU was available to measure it.)
- **CPU time of others** over the timed phase: busy time of the CPUs we may run on (``/proc/stat``,
  per CPU) minus the CPU time of our own process tree (``/proc/PID/stat`` of the worker and its
  descendants: the poller, a Caffe net process, compile workers) and of our sweep's other lanes
  (``--executor multi-gpu``: the harness processes that share our worker's parent, and their trees;
  recorded as ``cpu_lanes_cores``, not judged, since the user asked for lanes side by side: one lane's
  compile does not flag the others), plus hypervisor steal. As an average
  number of cores, flagged above ``contention_cpu_share`` x our CPUs (default 0.25). Why a quarter:
  an idle system's daemons use a few hundredths of a core, while a framework runs one intra-op thread
  per core and waits at every barrier for the slowest one, so a neighbour that holds a quarter of the
  cores already stalls most barriers.
- **Runnable tasks beside ours**, sampled at :data:`SAMPLE_HZ` during the timed phase and at its edges:
  ``procs_running`` of ``/proc/stat`` minus our own threads in state R. Flagged when the mean exceeds
  ``contention_runnable_share`` x the machine's CPUs (default 0.5, the level the issue set: that many
  tasks queue for the cores our threads need).
- **Load average** (``/proc/loadavg``) before and after, and **CPU frequency**
  (``/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq``) before, during and after, where readable.
  Both are recorded, not judged: the load average is a one-minute mean that includes ourselves, and
  governors change the frequency with load by design.

What it cannot see is in docs/cluster.md (processes in other containers or on other GPUs of a shared
board, neighbours' heat, network filesystem latency). The result is a flag, not a status: a flagged
record keeps its figures, and the report leaves it out of verdicts. ``--contention retry`` measures a
flagged configuration again in a fresh worker (:class:`ContentionPolicy`).

Standard library only: this module runs in workers under pycaffe's interpreter too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: how often the sampler thread reads the runnable count and the CPU frequency during a window (each
#: sample reads /proc/stat and our threads' stat files: tens of microseconds)
SAMPLE_HZ = 10.0
CONTENTION_MODES = ("warn", "retry")
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


#: how many times ``retry`` measures a flagged configuration again (``--contention-retries``)
DEFAULT_RETRIES = 2
#: display servers and compositors that hold a GPU context to draw a desktop (NVML's process name, its
#: basename): X.Org, Xwayland, GNOME, KDE, Cinnamon, MATE, Xfce, Compiz and the wlroots/Weston compositors
DESKTOP_PROCESSES = frozenset({"Xorg", "X", "Xwayland", "gnome-shell", "mutter", "kwin", "kwin_x11", "kwin_wayland",
                               "plasmashell", "cinnamon", "muffin", "marco", "xfwm4", "compiz", "sway", "Hyprland",
                               "weston", "gamescope"})


@dataclass
class ContentionPolicy:
    """What a worker does with a flagged window: ``warn`` keeps the flagged record; ``retry`` discards
    it (the worker does not store it) and the parent measures again in a fresh worker after
    ``wait_s``, at most ``retries`` times, then keeps the flag. ``earlier``: what disturbed the
    discarded attempts, recorded with the kept one."""

    mode: str = "warn"
    retries: int = DEFAULT_RETRIES
    wait_s: float = 10.0
    earlier: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in CONTENTION_MODES:
            raise ValueError(f"contention mode must be one of {CONTENTION_MODES}, got {self.mode!r}")

    def wants_retry(self, contended: dict[str, Any] | None) -> bool:
        return bool(contended) and self.mode == "retry" and len(self.earlier) < self.retries


@dataclass
class ContentionReport:
    """What the guard saw (``observed``, recorded with every record) and why it flags the window
    (``reasons``, empty when it was not disturbed beyond the thresholds)."""

    reasons: list[str]
    observed: dict[str, Any]

    def flag(self) -> dict[str, Any] | None:
        """The record's ``contended`` value: None, or the reasons with what was observed."""
        return {"reasons": list(self.reasons), **self.observed} if self.reasons else None


# ---- readings -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpuTicks:
    """Cumulative clock ticks of the CPUs we may run on (busy: user+nice+system+irq+softirq; steal)."""

    busy: int
    steal: int


def cpu_ticks(cpus: Iterable[int]) -> CpuTicks | None:
    """Busy and steal ticks summed over ``cpus`` (``cpuN`` lines of /proc/stat); None if unreadable."""
    wanted = {f"cpu{n}" for n in cpus}
    busy = steal = 0
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(" ")
        if name in wanted:
            f = [int(x) for x in rest.split()]
            busy += f[0] + f[1] + f[2] + f[5] + f[6]
            steal += f[7] if len(f) > 7 else 0
    return CpuTicks(busy, steal)


def procs_running() -> int | None:
    """Tasks (threads) in state R on the whole machine right now, ours included."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_mhz() -> list[float] | None:
    """Current frequency of every CPU in MHz (cpufreq's scaling_cur_freq), None where not exposed (many
    virtual machines and containers)."""
    values = []
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            values.append(int(path.read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    return values or None


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may contain spaces): [state, ppid, ...]."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


@dataclass(frozen=True)
class ProcessTable:
    """Every process now: pid -> parent pid, pid -> CPU ticks used (utime+stime, plus cutime+cstime: the
    time of children it reaped), and pid -> its own ticks (utime+stime)."""

    parent: dict[int, int]
    ticks: dict[int, int]
    own: dict[int, int] = field(default_factory=dict)

    @classmethod
    def read(cls) -> ProcessTable:
        parent: dict[int, int] = {}
        ticks: dict[int, int] = {}
        own: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            f = _stat_fields(entry.name)
            if f is None or len(f) < 15:
                continue
            pid = int(entry.name)
            parent[pid] = int(f[1])
            own[pid] = int(f[11]) + int(f[12])
            ticks[pid] = own[pid] + int(f[13]) + int(f[14])
        return cls(parent, ticks, own)

    def tree(self, root: int) -> dict[int, int]:
        """``root`` and all its descendants: pid -> CPU ticks."""
        children: dict[int, list[int]] = {}
        for pid, ppid in self.parent.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = {}, [root]
        while todo:
            pid = todo.pop()
            if pid in self.ticks and pid not in tree:
                tree[pid] = self.ticks[pid]
                todo.extend(children.get(pid, []))
        return tree

    def lanes(self, root: int, is_harness: Callable[[int], bool],
              is_warm_parent: Callable[[int], bool] = lambda pid: False) -> dict[int, int]:
        """The harness processes beside ``root`` under the same sweep, with their trees: the other lanes'
        workers of a multi-GPU sweep. A spawned worker's sweep is its parent; a forked worker's parent is a
        warm parent (``is_warm_parent``) and its sweep the one above that, so that the workers forked by the
        warm parents of other backends (another lane running another backend) are lanes too, not others.
        A warm parent counts with its own ticks only: a worker it reaps during a window would otherwise
        bring its whole life's CPU time into that window."""
        parent = self.parent.get(root)
        if parent is None or parent <= 1:
            return {}
        sweep = parent
        if is_warm_parent(parent) and self.parent.get(parent, 0) > 1:
            sweep = self.parent[parent]
        ours = self.tree(root)
        out: dict[int, int] = {}
        for pid, ppid in self.parent.items():
            if ppid == sweep and pid != root and is_harness(pid):
                out.update((p, t) for p, t in self.tree(pid).items() if p not in ours)
        return {p: self.own.get(p, t) if is_warm_parent(p) else t for p, t in out.items()}


def _argv_head(pid: int) -> list[bytes]:
    """The first words of ``pid``'s command line (the interpreter, ``-m``, the module), [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:4]
    except OSError:
        return []


def is_harness_process(pid: int) -> bool:
    """Whether ``pid`` runs the harness (a worker, a profile worker, a fork server): its command line
    names a ``harness`` module or script."""
    return any(b"harness" in arg for arg in _argv_head(pid))


#: the name a worker gives its process (harness.worker.PROCESS_NAME is this, encoded; a forked worker keeps its
#: warm parent's command line, so the name tells them apart)
WORKER_PROCESS_NAME = "harness-worker"


def is_warm_parent_process(pid: int) -> bool:
    """Whether ``pid`` is a warm parent (:mod:`harness.forkserver`), the parent of forked workers."""
    if b"harness.forkserver" not in _argv_head(pid):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() != WORKER_PROCESS_NAME
    except OSError:
        return False


def process_tree(root: int) -> dict[int, int]:
    """``root`` and all its descendants: pid -> CPU ticks used (see :class:`ProcessTable`)."""
    return ProcessTable.read().tree(root)


def running_threads(pids: Iterable[int]) -> int:
    """Threads of ``pids`` in state R (running or runnable) right now."""
    count = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            f = _stat_fields(f"{pid}/task/{task.name}")
            if f and f[0] == "R":
                count += 1
    return count


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


# ---- the guard ----------------------------------------------------------------------------------

@dataclass
class _Sample:
    t: float
    runnable_beside_ours: int | None
    mhz: list[float] | None


@dataclass
class _Edge:
    t: float
    cpu: CpuTicks | None
    ours: dict[int, int]
    lanes: dict[int, int] = field(default_factory=dict)


def _entry(process: list[Any]) -> tuple[int, str | None, str | None]:
    """(pid, type, name) of one NVML process entry: [pid, bytes, type, name], or [pid, bytes] as pollers
    before types and names recorded it."""
    pid = int(process[0])
    kind = process[2] if len(process) > 2 else None
    name = process[3] if len(process) > 3 else None
    return pid, kind, name


def is_desktop(kind: str | None, name: str | None) -> bool:
    """A graphics-only process, or a display server or compositor by name (see the module docstring)."""
    return kind == "G" or (name is not None and os.path.basename(name) in DESKTOP_PROCESSES)


class ContentionGuard:
    """Watches one window. ``begin`` before it (with the GPU's processes then, for GPU windows),
    ``timed_start``/``timed_end`` around the timed phase, ``end`` after it; ``stop`` after a failure."""

    def __init__(self, cpu_share: float, runnable_share: float, gpu: bool, root_pid: int | None = None) -> None:
        self.cpu_share = cpu_share
        self.runnable_share = runnable_share
        self.gpu = gpu
        self.root = root_pid or os.getpid()
        self.cpus = _cpus()
        self.machine_cpus = os.cpu_count() or len(self.cpus)
        self._ours: set[int] = {self.root}
        self._lanes: set[int] = set()
        self._samples: list[_Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._before: dict[str, Any] = {}
        self._gpu_before: list[tuple[int, str | None, str | None]] = []
        self._timed: list[_Edge] = []

    def begin(self, gpu_processes: list[list[Any]] | None = None) -> None:
        table = ProcessTable.read()
        self._ours = set(table.tree(self.root))
        self._lanes = set(table.lanes(self.root, is_harness_process, is_warm_parent_process))
        self._gpu_before = [_entry(p) for p in gpu_processes or []]
        self._before = {"load1": load_average(), "cpu_mhz": cpu_mhz()}
        self._thread = threading.Thread(target=self._sample_loop, name="contention-guard", daemon=True)
        self._thread.start()

    def _sample(self) -> _Sample:
        total = procs_running()
        beside = None if total is None else max(0, total - running_threads(self._ours | self._lanes))
        return _Sample(time.time(), beside, cpu_mhz())

    def _sample_loop(self) -> None:
        period = 1.0 / SAMPLE_HZ
        while not self._stop.wait(period):
            self._samples.append(self._sample())

    def _edge(self) -> _Edge:
        table = ProcessTable.read()
        tree = table.tree(self.root)
        lanes = table.lanes(self.root, is_harness_process, is_warm_parent_process)
        self._ours = set(tree)  # the network's own processes (Caffe's, compile workers) exist by now
        self._lanes = set(lanes)
        return _Edge(time.time(), cpu_ticks(self.cpus), tree, lanes)

    def timed_start(self) -> None:
        self._timed = [self._edge()]
        self._samples.append(self._sample())

    def timed_end(self) -> None:
        self._samples.append(self._sample())
        self._timed.append(self._edge())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def end(self, gpu_after: list[list[Any]] | None = None,
            gpu_timeline: list[list[list[Any]] | None] | None = None) -> ContentionReport:
        """Stop sampling and judge: GPU processes of others at any point, others' CPU time and the
        runnable tasks beside ours over the timed phase, against the thresholds."""
        self.stop()
        reasons: list[str] = []
        observed: dict[str, Any] = {"cpus": len(self.cpus), "machine_cpus": self.machine_cpus,
                                    "load1_before": self._before.get("load1"), "load1_after": load_average()}
        observed.update(self._cpu_figures())
        cpu = observed.get("cpu_others_cores")
        if cpu is not None and cpu > self.cpu_share * len(self.cpus):
            reasons.append(f"other processes used {cpu:.2f} of {len(self.cpus)} CPU cores during the timed phase "
                           f"(threshold {self.cpu_share:g} x cores)")
        runnable = observed.get("runnable_beside_ours_mean")
        if runnable is not None and runnable > self.runnable_share * self.machine_cpus:
            reasons.append(f"{runnable:.1f} runnable tasks beside ours on average during the timed phase "
                           f"({self.machine_cpus} CPUs; threshold {self.runnable_share:g} x CPUs)")
        observed.update(self._mhz_figures())
        if self.gpu:
            others, desktop = self._gpu_others(gpu_after, gpu_timeline)
            observed["gpu_other_pids"] = others
            observed["gpu_desktop_processes"] = desktop
            if others:
                reasons.append(f"other process(es) on the GPU: pid {', '.join(map(str, others))}")
        observed["thresholds"] = {"cpu_share": self.cpu_share, "runnable_share": self.runnable_share}
        return ContentionReport(reasons, observed)

    def _cpu_figures(self) -> dict[str, Any]:
        if len(self._timed) != 2:
            return {}
        start, end = self._timed
        out: dict[str, Any] = {"timed_s": round(end.t - start.t, 6)}
        samples = [s.runnable_beside_ours for s in self._samples
                   if start.t <= s.t <= end.t and s.runnable_beside_ours is not None]
        if samples:
            out.update(runnable_beside_ours_mean=round(sum(samples) / len(samples), 3),
                       runnable_beside_ours_max=max(samples), runnable_samples=len(samples))
        wall = end.t - start.t
        if start.cpu is None or end.cpu is None or wall <= 0:
            return out
        ours = _ticks_between(start.ours, end.ours)
        lanes = _ticks_between(start.lanes, end.lanes)
        busy = end.cpu.busy - start.cpu.busy
        steal = end.cpu.steal - start.cpu.steal
        out.update(cpu_ours_cores=round(ours * _TICK_S / wall, 3),
                   cpu_steal_cores=round(steal * _TICK_S / wall, 3),
                   cpu_others_cores=round(max(0, busy - ours - lanes + steal) * _TICK_S / wall, 3))
        if start.lanes or end.lanes:
            out["cpu_lanes_cores"] = round(lanes * _TICK_S / wall, 3)
        return out

    def _mhz_figures(self) -> dict[str, Any]:
        during = [min(s.mhz) for s in self._samples if s.mhz]
        before = self._before.get("cpu_mhz")
        if not during and not before:
            return {"cpu_mhz": None}
        return {"cpu_mhz": {"before": _span(before), "min_during": min(during, default=None),
                            "after": _span(cpu_mhz())}}

    def _gpu_others(self, after: list[list[Any]] | None,
                    timeline: list[list[list[Any]] | None] | None) -> tuple[list[int], list[dict[str, Any]]]:
        """PIDs on the GPU that are not ours and not the desktop's, before, during or after the window, and
        the desktop's processes seen (pid, type, name: recorded, not judged). NVML lists host PIDs: inside a
        container they differ from ours, so when none of our PIDs is ever listed, one compute PID that
        appeared after the window began is taken to be our own context (a fresh worker has none before)."""
        seen_during = [_entry(p) for sample in [*(timeline or []), after or []] if sample for p in sample]
        before = {pid for pid, _, _ in self._gpu_before}
        ours_visible = bool(self._ours & {pid for pid, _, _ in seen_during})
        entries: dict[int, tuple[str | None, str | None]] = {}
        for pid, kind, name in self._gpu_before + seen_during:
            if pid not in self._ours:
                entries[pid] = (kind or entries.get(pid, (None, None))[0], name or entries.get(pid, (None, None))[1])
        desktop = [{"pid": pid, "type": kind, "name": name} for pid, (kind, name) in entries.items()
                   if is_desktop(kind, name)]
        others = [pid for pid, (kind, name) in entries.items() if not is_desktop(kind, name)]
        if not ours_visible:
            appeared = [p for p in others if p not in before]
            if appeared:
                others.remove(appeared[0])
        return others, desktop


def _ticks_between(start: dict[int, int], end: dict[int, int]) -> int:
    """CPU ticks a set of processes used between two readings (processes gone by the end are not counted;
    new ones count from zero)."""
    return sum(end.values()) - sum(v for pid, v in start.items() if pid in end)


def _span(values: list[float] | None) -> list[float] | None:
    return None if not values else [min(values), max(values)]

