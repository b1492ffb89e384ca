"""Sweeps: networks x backends x modes x batch sizes x devices, planned as batch series and run one
configuration per fresh worker (:mod:`harness.worker`), each record stored as soon as it exists.

A configuration that fails is recorded with its status and the sweep goes on. Each network/backend/
mode/device series runs in ascending batch order, so that an ``oom`` measured at one batch (the
paper's Inception-V2 at B=128 on a P100) stands for every larger batch of the series: those are
recorded ``oom`` without running, marked as inferred from the measured one (``Record.inferred_from``),
and the report's verdicts use measured OOMs only.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from harness.backends.base import BackendInfo, Session
from harness.errors import HarnessError
from harness.measure.settings import apply_overrides, default_settings
from harness.measure.window import WindowSettings
from harness.results.records import Config, Record, utc_now
from harness.results.store import FINAL, Merged, ResultsStore

#: The paper's batch sizes on the P100 (Table III at B=1, efficiency at B=4, memory growth up to 128).
PAPER_GPU_BATCHES = (1, 4, 8, 16, 32, 64, 128)
CPU_BATCHES = (1, 4)
#: ``--mode all``: every mode each backend offers on each device
ALL_MODES = "all"


@dataclass
class SweepSpec:
    networks: list[str]
    backends: list[str]
    batches: list[int]
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    #: requested modes; None: each backend's default mode; ["all"]: every mode of every backend
    modes: list[str] | None = None
    seed: int = 0
    #: overrides of WindowSettings / TimingProtocol fields (from YAML or --set), on top of the device default
    settings: dict[str, Any] = field(default_factory=dict)

    def configs(self, modes_of: Callable[[str, str], list[str]] | None = None) -> list[Config]:
        """Every configuration, as batch series: device, backend, network, mode, then ascending batch.
        ``modes_of(backend, device)`` gives a backend's modes on a device, default first (see
        :func:`backend_modes`); without it modes stay unresolved (None: the default). With no mode
        requested each backend runs its default mode, named."""
        out = []
        for device, backend, network in itertools.product(self.devices, self.backends, self.networks):
            modes: list[str | None]
            if modes_of is None:
                modes = [None]
            elif not self.modes:
                modes = [backend_default_mode(backend, device)]
            else:
                modes = list(select_modes(self.modes, modes_of(backend, device)))
            for mode in modes:
                out.extend(Config(network=network, backend=backend, batch=b, device=device, mode=mode, seed=self.seed)
                           for b in sorted(set(self.batches)))
        return out

    def window_settings(self, device: str) -> WindowSettings:
        return apply_overrides(default_settings(device), self.settings)


def gpu_present() -> bool:
    """Whether CUDA sees a GPU here (CUDA_VISIBLE_DEVICES respected)."""
    from harness.measure.devices import visible_gpus

    return bool(visible_gpus().uuids)


#: a backend's probe by name (``Backend.probe`` here, or a warm parent's: harness.worker_start)
Probe = Callable[[str], BackendInfo]


def probe_here(name: str) -> BackendInfo:
    from harness.backends.base import get_backend

    return type(get_backend(name)).probe()


def available_backends(device: str, probe: Probe | None = None) -> list[str]:
    """Backends whose probe says they run on ``device`` on this host."""
    from harness.backends.base import BACKENDS, runs_on
    from harness.errors import BackendUnavailable

    names = []
    for name in sorted(BACKENDS):
        try:
            info = (probe or probe_here)(name)
        except BackendUnavailable:
            continue
        if runs_on(info, device):
            names.append(name)
    return names


def left_out_on_gpus(spec: SweepSpec, probe: Probe | None = None) -> list[str]:
    """One line per backend installed here that the sweep's GPUs run without, for a sweep whose backends
    were left open (:func:`resolve_here` takes only those that run on a device): a CPU-only Caffe build
    would otherwise drop the paper's baseline from a ``cuda:N`` sweep without a word. ``probe`` as there."""
    from harness.backends.base import BACKENDS, runs_on
    from harness.backends.caffe.backend import GPU_BUILD_HINT
    from harness.errors import BackendUnavailable

    gpus = [d for d in spec.devices if d.startswith("cuda")]
    lines: list[str] = []
    for name in sorted(set(BACKENDS) - set(spec.backends)) if gpus else []:
        try:
            info = (probe or probe_here)(name)
        except BackendUnavailable:
            continue
        missing = [d for d in gpus if not runs_on(info, d)]
        if not info.available or not missing:
            continue
        if name == "caffe":
            lines.append(f"caffe: {info.details.get('caffe_root')} is a CPU-only build, so {', '.join(missing)} "
                         f"run(s) without Caffe, the paper's baseline; {GPU_BUILD_HINT}")
        else:
            lines.append(f"{name}: installed for {', '.join(info.devices)} only, so {', '.join(missing)} run(s) "
                         "without it")
    return lines


def resolve_here(spec: SweepSpec, gpu: bool | None = None, probe: Probe | None = None) -> SweepSpec:
    """``spec`` with what the user left open decided on THIS host: devices (cuda:0 where there is a GPU -
    ``gpu``, else whether NVML sees one - otherwise cpu), backends (each one whose probe runs on a
    device), batches (the paper's GPU batches, or the CPU ones). ``harness bench`` does this before a
    local sweep; a Slurm task does it on its compute node. HarnessError when no backend is available.
    ``probe``: how a backend is probed (default: here, importing its framework)."""
    devices = spec.devices or (["cuda:0"] if (gpu_present() if gpu is None else gpu) else ["cpu"])
    batches = spec.batches or list(PAPER_GPU_BATCHES if any(d.startswith("cuda") for d in devices) else CPU_BATCHES)
    backends = spec.backends or sorted({b for d in devices for b in available_backends(d, probe)})
    if not backends:
        raise HarnessError(f"no backend is available on {', '.join(devices)} (see `harness doctor`)")
    return replace(spec, devices=list(devices), batches=list(batches), backends=list(backends))


@functools.cache
def backend_default_mode(backend: str, device: str) -> str:
    """The mode ``backend`` runs on ``device`` when none is asked for (cheap: see Backend.default_mode)."""
    from harness.backends.base import get_backend

    return get_backend(backend).default_mode(device)


@functools.cache
def backend_modes(backend: str, device: str) -> list[str]:
    """The modes ``backend`` offers on ``device``, its default first."""
    from harness.backends.base import get_backend

    return get_backend(backend).modes(device)


def select_modes(requested: list[str], offered: list[str]) -> list[str]:
    """Which of ``requested`` a backend runs: all it offers for ``all``, otherwise those of them it offers
    (possibly none: the backend then sits this sweep out)."""
    if ALL_MODES in requested:
        return list(offered)
    return [m for m in requested if m in offered]


def check_modes(spec: SweepSpec, modes_of: Callable[[str, str], list[str]]) -> list[str]:
    """Notes on backends that offer none of the requested modes; HarnessError when no backend offers
    any of them on any device (naming each backend's modes)."""
    if not spec.modes or ALL_MODES in spec.modes:
        return []
    offered = {(b, d): modes_of(b, d) for b in spec.backends for d in spec.devices}
    notes = [f"{b} on {d} offers none of {', '.join(spec.modes)} (its modes: {', '.join(m)}): not run"
             for (b, d), m in offered.items() if not set(spec.modes) & set(m)]
    if len(notes) == len(offered):
        listing = "; ".join(f"{b} on {d}: {', '.join(m)}" for (b, d), m in offered.items())
        raise HarnessError(f"no selected backend offers mode(s) {', '.join(spec.modes)} ({listing})")
    return notes


def series_key(config: Config) -> tuple[Any, ...]:
    return (config.network, config.backend, config.mode, config.device, config.seed, config.hardware)


def batch_series(configs: Iterable[Config]) -> list[list[Config]]:
    """Configurations grouped into series (all but the batch equal), each in ascending batch order."""
    series: dict[tuple[Any, ...], list[Config]] = {}
    for config in configs:
        series.setdefault(series_key(config), []).append(config)
    return [sorted(group, key=lambda c: c.batch) for group in series.values()]


def inferred_oom(config: Config, measured: Record, started_at: str) -> Record:
    """The record of a batch larger than one that ran out of memory: not run, inferred."""
    return Record(config=config, status="oom", started_at=started_at, finished_at=started_at,
                  message=f"not run: batch {measured.config.batch} of this series ran out of memory "
                          f"({measured.message})",
                  inferred_from=measured.key, metadata={"inferred": True}, placement=measured.placement)


#: runs one configuration in a fresh worker and returns its (stored) record
Launch = Callable[[Config], Record]


def run_series(series: list[Config], store: ResultsStore, launch: Launch, known: Merged, force: bool = False,
               on_start: Callable[[Config], None] | None = None,
               on_done: Callable[[Record | None, Config], None] | None = None) -> list[Record]:
    """One batch series in ascending order: finished configurations skipped (unless ``force``), the
    rest launched, larger batches after a measured ``oom`` recorded as inferred OOMs."""
    done: list[Record] = []
    known_records = {} if force else known.by_key()  # --force: earlier records neither skip nor infer
    oom: Record | None = None
    for config in series:
        previous = known_records.get(config.key())
        if previous is not None and previous.status == "oom" and previous.inferred_from is None:
            oom = oom or previous
        if previous is not None and previous.status in FINAL:
            if on_done:
                on_done(None, config)
            continue
        if oom is not None and config.batch > oom.config.batch:
            record = inferred_oom(config, oom, utc_now())
            store.append(record)
        else:
            if on_start:
                on_start(config)
            record = launch(config)
            if record.status == "oom" and record.inferred_from is None:
                oom = record
        done.append(record)
        if on_done:
            on_done(record, config)
    return done


def open_session(backend: str, network: str, batch: int, device: str = "cpu", mode: str | None = None) -> Session:
    """A loaded session for a zoo network or prototxt in THIS process (what the benchmarks/ scripts and
    verify use; measurements of a sweep run in fresh workers instead)."""
    from harness import zoo
    from harness.backends.base import RunTarget, get_backend

    target = RunTarget(graph=zoo.resolve(network), network=network, batch=batch, device=device, mode=mode)
    return get_backend(backend).load(target)


def with_hardware(configs: Iterable[Config], hardware: dict[str, str | None]) -> list[Config]:
    """Configurations with the model of the device each runs on (``hardware``: device -> model)."""
    return [replace(c, hardware=hardware.get(c.device)) for c in configs]
