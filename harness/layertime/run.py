"""The parent side of per-layer timing: one fresh worker per configuration (job kind ``layers``), planned
as a sweep is planned, each profile stored as soon as it exists, finished ones skipped on a rerun. The
workers start as every sweep's do (:func:`harness.worker_start.sweep_workers`): forked from warm parents
that have imported their framework, or spawned with ``HARNESS_FORK_SERVER=0``.

Layer profiles run one after another on this machine (the local executor's way): per-layer timing is for
understanding where a network's time goes, configuration by configuration, not for spreading a sweep over
GPUs or a cluster.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.executors.base import SweepRequest, make_job, placement_for, plan_here
from harness.layertime.record import LayerProfile
from harness.layertime.store import LayerProfileStore
from harness.measure.sweep import SweepSpec
from harness.results.records import Config
from harness.worker import spawn_and_store
from harness.worker_start import sweep_workers

#: the timing protocol of a layer profile where the user sets none (``--set`` overrides): more passes than
#: a CPU timing run, since a row's median needs them and per-layer rows are short
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    "cpu": {"warmup_iters": 2, "warmup_s": 0.0, "min_iters": 10, "min_s": 1.0, "max_s": 30.0},
    "cuda": {"warmup_iters": 20, "warmup_s": 2.0, "min_iters": 50, "min_s": 3.0, "max_s": 60.0},
}


@dataclass
class LayerRun:
    """What one call ran: the profiles it made, the configurations an earlier profile stands for, notes."""

    profiles: list[LayerProfile]
    skipped: list[Config]
    notes: list[str]


def layer_spec(spec: SweepSpec, device_kind: str) -> SweepSpec:
    """``spec`` with the layer-profile protocol under the user's own settings."""
    return replace(spec, settings={**DEFAULT_SETTINGS[device_kind], **spec.settings})


def run_profiles(spec: SweepSpec, results_dir: Path, force: bool = False,
                 on_start: Callable[[Config], None] | None = None,
                 on_done: Callable[[LayerProfile | None, Config], None] | None = None) -> LayerRun:
    """Profile every configuration of ``spec`` that has no final layer profile in ``results_dir`` (all of
    them with ``force``), each in a fresh worker on this machine. The notes: planning's, then what befell the
    warm parents (one replaced, a backend's workers spawned)."""
    store = LayerProfileStore(results_dir)
    finished = set() if force else store.read().finished()
    host = socket.gethostname()
    started: list[str] = []  # what befell the warm parents
    with sweep_workers(spec.backends, started.append) as workers:
        plan = plan_here(spec, probe=workers.probe)
        run = LayerRun([], [], list(plan.notes))
        configs = [c for series in plan.series for c in series]
        workers.ready([c for c in configs if c.key() not in finished])
        for config in configs:
            if config.key() in finished:
                run.skipped.append(config)
                if on_done is not None:
                    on_done(None, config)
                continue
            identity = plan.identities[config.device]
            request = SweepRequest(layer_spec(spec, config.device_kind), results_dir)
            job = replace(make_job(config, request, identity, placement_for("local", host, identity)), kind="layers")
            if on_start is not None:
                on_start(config)
            profile = spawn_and_store(job)
            run.profiles.append(profile)
            if on_done is not None:
                on_done(profile, config)
    run.notes.extend(started)
    return run
