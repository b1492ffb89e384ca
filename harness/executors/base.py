"""What every executor gets, and what it shares: the sweep, where its records go, the contention policy,
progress callbacks."""

from __future__ import annotations

import importlib.util
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError
from harness.measure.contention import ContentionPolicy
from harness.measure.devices import DeviceIdentity, identify
from harness.measure.sweep import (
    Probe,
    SweepSpec,
    backend_modes,
    batch_series,
    check_modes,
    left_out_on_gpus,
    resolve_here,
    with_hardware,
)
from harness.results.records import Config, Placement, Record
from harness.results.store import Merged
from harness.worker import Job


@dataclass
class SweepRequest:
    spec: SweepSpec
    results_dir: Path
    force: bool = False
    on_start: Callable[[Config], None] | None = None
    #: called once per configuration: its new record, or None when an earlier final record stands
    on_done: Callable[[Record | None, Config], None] | None = None
    #: what a worker does with a window the contention guard flags (None: keep it, flagged)
    contention: ContentionPolicy | None = None
    #: False: an executor that hands the sweep to a scheduler returns once it is submitted
    wait: bool = True
    #: messages for the user (a job id, what a scheduler said); the number of configurations, where an
    #: executor learns it only as the sweep runs (a Slurm task plans its own on its node)
    on_note: Callable[[str], None] | None = None
    on_total: Callable[[int], None] | None = None

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    def total(self, n: int) -> None:
        if self.on_total is not None:
            self.on_total(n)


class Executor(ABC):
    name: ClassVar[str]
    #: whether it can hand the sweep to a scheduler and return (``--no-wait``)
    detaches: ClassVar[bool] = False

    @classmethod
    def configure(cls, options: dict[str, Any], where: str) -> Executor:
        """An executor with its own options (only Slurm has any); ``where`` names their source in errors."""
        if options:
            raise HarnessError(f"{where}: {', '.join(sorted(options))} apply to --executor slurm, not {cls.name}")
        return cls()

    @abstractmethod
    def run(self, request: SweepRequest) -> list[Record]:
        """Decide what the user left open where the workers run (:func:`plan_here`), say how many
        configurations that is (``request.total``), and run every one without a final record (all with
        ``force``); return the records made by this run."""


@dataclass
class Plan:
    """A sweep as it runs on this host: each device's identity, and the batch series (with the devices'
    models in their configurations)."""

    identities: dict[str, DeviceIdentity]
    series: list[list[Config]]
    notes: list[str] = field(default_factory=list)  # backends that offer none of the requested modes

    @property
    def size(self) -> int:
        return sum(len(s) for s in self.series)


def plan_here(spec: SweepSpec, gpu: bool | None = None, probe: Probe | None = None) -> Plan:
    """The one planning every executor does where its workers run: what the user left open decided here
    (:func:`resolve_here`; ``gpu`` and ``probe`` as there: a sweep's warm parents probe their backends,
    :meth:`harness.worker_start.SweepStart.probe`), modes checked, devices identified, configurations as
    batch series. HarnessError before anything runs when nothing can."""
    backends_left_open = not spec.backends
    spec = resolve_here(spec, gpu, probe)
    notes = check_modes(spec, backend_modes) + (left_out_on_gpus(spec, probe) if backends_left_open else [])
    identities = {device: identify(device) for device in spec.devices}
    configs = with_hardware(spec.configs(backend_modes), {d: i.model for d, i in identities.items()})
    return Plan(identities, batch_series(configs), notes)


def to_run(series: list[list[Config]], known: Merged, force: bool) -> list[Config]:
    """The configurations of ``series`` that will run (all with ``force``; else those without a final
    record): what a sweep's warm parents and shared artefacts are prepared for
    (:func:`harness.worker_start.sweep_workers`)."""
    finished = set() if force else known.finished()
    return [c for one in series for c in one if c.key() not in finished]


def placement_for(executor: str, host: str, identity: DeviceIdentity, **scheduler: str | None) -> Placement:
    """Where a configuration runs: the executor, the host, the GPU by UUID (its pin), and a scheduler's
    job and task ids."""
    return Placement(executor=executor, host=host, gpu_uuid=identity.uuid, gpu_index=identity.nvml_index,
                     cuda_visible_devices=identity.uuid or os.environ.get("CUDA_VISIBLE_DEVICES"), **scheduler)


def poller_python() -> str | None:
    """This interpreter when it has nvidia-ml-py (the poller's), else None (GPU windows then say so)."""
    return sys.executable if importlib.util.find_spec("pynvml") is not None else None


def make_job(config: Config, request: SweepRequest, identity: DeviceIdentity, placement: Placement,
             writer: str | None = None) -> Job:
    """The job of one configuration on the device ``identity`` names; a GPU worker is pinned to it by UUID
    and sees it as ``cuda:0``."""
    pinned = identity.uuid is not None
    return Job(config=config, settings=request.spec.window_settings(config.device),
               results_dir=str(request.results_dir), writer=writer, device="cuda:0" if pinned else config.device,
               gpu_uuid=identity.uuid, poller_python=poller_python() if pinned else None, placement=placement,
               contention=request.contention)
