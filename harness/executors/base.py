"""What every executor gets, and what it shares: the sweep, where its records go, the contention policy,
progress callbacks."""

from __future__ import annotations

import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError
from harness.measure.contention import ContentionPolicy
from harness.measure.devices import DeviceIdentity
from harness.measure.sweep import SweepSpec, resolve_here
from harness.results.records import Config, Placement, Record
from harness.worker import Job


@dataclass
class SweepRequest:
    spec: SweepSpec
    results_dir: Path
    force: bool = False
    on_start: Callable[[Config], None] | None = None
    #: called once per configuration: its new record, or None when an earlier final record stands
    on_done: Callable[[Record | None, Config], None] | None = None
    notes: list[str] = field(default_factory=list)
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


class Executor(ABC):
    name: ClassVar[str]
    #: whether backend probes, the default device and batches are decided where the workers run (a Slurm
    #: compute node) rather than by ``harness bench`` on this host
    plans_remotely: ClassVar[bool] = False

    @classmethod
    def configure(cls, options: dict[str, Any], where: str) -> Executor:
        """An executor with its own options (only Slurm has any); ``where`` names their source in errors."""
        if options:
            raise HarnessError(f"{where}: {', '.join(sorted(options))} apply to --executor slurm, not {cls.name}")
        return cls()

    def resolve(self, spec: SweepSpec) -> SweepSpec:
        """The sweep with what the user left open decided on this host (see :func:`resolve_here`)."""
        return resolve_here(spec)

    @abstractmethod
    def run(self, request: SweepRequest) -> list[Record]:
        """Run every configuration of the sweep that has no final record (all with ``force``); return the
        records made by this run."""


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
