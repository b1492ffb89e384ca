"""The compute-node side of ``--executor slurm``: what one task of the job array does.

``harness bench --executor slurm`` pickles one :class:`TaskPlan` per task and submitit runs
:func:`run_task` with it on the node (``python -m submitit.core._submit``, under the submitting
interpreter, which must exist at the same path there). The task decides there what the submitter could
not: the backends whose probes pass on the node, the default device (``cuda:0`` where Slurm gave the
task a GPU, else cpu), the batches, the modes each backend offers, the hardware's model. It then runs
its batch series in ascending order, every configuration in a fresh worker (:mod:`harness.worker`),
writing its own shard ``results-slurm-<job>_<task>.jsonl`` and skipping what the merged results
directory already holds (the submitter's resume only knows configurations without their hardware).

Next to the results, ``slurm/<job>_<task>_harness.json`` says what the task planned and which
configuration it is running; the submitter reads it for its progress bar, for resume (a unit whose plan
is finished is not submitted again) and to record a configuration the scheduler killed hard.

Ends the scheduler forces: Slurm sends SIGTERM before SIGKILL on ``scancel``, a time limit or
preemption. The task records the configuration it was running as ``failed`` with the scheduler's reason
(the ``*** ... CANCELLED AT ... DUE TO ...`` line slurmstepd writes to the task's log) and stops: only
that configuration is lost, and resume measures it again. submitit's warning signal (``USR2``, 90 s
before the time limit; Slurm sends it to every process of the task) is blocked in the task's main
thread, so the workers it starts inherit the block instead of dying of it; the task notes it (handled
by another of its threads, or left pending) and starts no configuration after it - the one running
may finish.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from harness.errors import HarnessError
from harness.executors.base import Plan, SweepRequest, make_job, placement_for, plan_here, to_run
from harness.measure.contention import ContentionPolicy
from harness.measure.sweep import (
    Probe,
    SweepSpec,
    gpu_present,
    run_series,
)
from harness.results.metadata import host_metadata
from harness.results.records import Config, Placement, Record, utc_now
from harness.results.store import ResultsStore, file_records
from harness.worker import one_line, spawn_and_store
from harness.worker_start import sweep_workers

#: the folder of a results directory that holds submitit's files and the tasks' state files
SLURM_DIR = "slurm"
STATE_SUFFIX = "_harness.json"
#: how long the task looks for slurmstepd's line saying why the job ends (it is written as the signal goes)
REASON_WAIT_S = 1.0
#: what submitit asks Slurm to send 90 s before the time limit (``--signal=USR2@90``)
WARNING_SIGNAL = signal.SIGUSR2
STEPD_LINE = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT (\S+)(?: DUE TO ([A-Z][A-Z _]*?))? \*\*\*")


@dataclass(frozen=True)
class TaskPlan:
    """One array task: a network, with the backend and device where the user named them; everything
    else the sweep left open is decided on the node."""

    network: str
    backend: str | None
    device: str | None
    batches: tuple[int, ...]
    modes: tuple[str, ...] | None
    seed: int
    settings: dict[str, Any]
    results_dir: str
    force: bool = False
    contention: ContentionPolicy | None = None

    @property
    def unit(self) -> str:
        """What this task stands for across submissions (resume matches it): everything that decides
        which configurations it plans."""
        modes = ",".join(self.modes) if self.modes else "default"
        batches = ",".join(map(str, self.batches)) or "default"
        return f"{self.network}|{self.backend or '*'}|{self.device or '*'}|{modes}|{batches}|s{self.seed}"

    def spec(self) -> SweepSpec:
        return SweepSpec(networks=[self.network], backends=[self.backend] if self.backend else [],
                         batches=list(self.batches), devices=[self.device] if self.device else [],
                         modes=list(self.modes) if self.modes else None, seed=self.seed, settings=dict(self.settings))


class SchedulerInterrupt(BaseException):
    """Slurm is ending the task (SIGTERM). A BaseException, so that no ``except Exception`` keeps it from
    reaching :func:`run_task`; the running worker is killed on the way (:func:`harness.worker.spawn_worker`)."""


class _NoNewWork(Exception):
    """The time limit is near (the warning signal is pending): start nothing more."""


def state_path(results_dir: str | os.PathLike[str], job_id: str, task_id: str) -> Path:
    return Path(results_dir) / SLURM_DIR / f"{job_id}_{task_id}{STATE_SUFFIX}"


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the task's state file whole (a temporary file renamed over it): readers never see half."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(state, default=str))
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def array_ids() -> tuple[str, str]:
    """(job id, task id) of this array task (a job that is not an array: its id and task 0)."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if not job:
        raise HarnessError("not inside a Slurm job (no SLURM_JOB_ID)")
    return job, os.environ.get("SLURM_ARRAY_TASK_ID", "0")


def slurm_gave_gpus() -> bool:
    """Whether Slurm allocated GPUs to this task (gres): only then is a GPU the default device, so a task
    never measures on a GPU another job was given (a CUDA_VISIBLE_DEVICES exported from the submitting
    shell proves nothing)."""
    return any(os.environ.get(v) for v in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"))


def stepd_reason(log: Path | None) -> str | None:
    """Why slurmstepd is ending the job, from the line it writes to the task's log (e.g. "cancelled at
    2026-01-01T10:00:00 due to time limit"), or None."""
    if log is None:
        return None
    deadline = time.monotonic() + REASON_WAIT_S
    while True:
        try:
            with log.open("rb") as fh:
                fh.seek(max(0, log.stat().st_size - 65536))
                matches = STEPD_LINE.findall(fh.read().decode(errors="replace"))
        except OSError:
            matches = []
        if matches or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if not matches:
        return None
    when, why = matches[-1]
    return f"cancelled at {when}" + (f" due to {why.strip().lower()}" if why else "")


def _task_log() -> Path | None:
    try:
        import submitit

        return Path(submitit.JobEnvironment().paths.stderr)
    except Exception:  # not under submitit (a task run by hand): no log to read
        return None


def recorded_since(records: Iterable[Record], running: dict[str, Any], job_id: str, task_id: str) -> bool:
    """Whether the configuration a task was running (its state's ``running``) has a record that task's worker
    made after it started: then the interruption needs no record of its own."""
    key = Config(**running["config"]).key()
    return any(r.key == key and (r.started_at or "") >= running["since"] and r.placement is not None
               and (r.placement.job_id, r.placement.task_id) == (job_id, task_id) for r in records)


def interruption_record(config: Config, placement: Placement, started_at: str, reason: str,
                        recorded_by: str) -> Record:
    """The record of a configuration the scheduler ended: ``failed`` (so resume runs it again), why."""
    return Record(config=config, status="failed", started_at=started_at, finished_at=utc_now(),
                  message=one_line(f"interrupted by Slurm ({reason}); resume measures it again"),
                  metadata={**host_metadata(), "recorded_by": recorded_by, "scheduler_reason": reason},
                  placement=placement)


def run_task(plan: TaskPlan) -> dict[str, Any]:
    """Plan on this node, run the task's batch series, record an interruption; returns a summary the
    submitter reads (submitit's result)."""
    job_id, task_id = array_ids()
    host = socket.gethostname()
    writer = f"slurm-{job_id}_{task_id}"
    store = ResultsStore(plan.results_dir, writer)
    path = state_path(plan.results_dir, job_id, task_id)
    state: dict[str, Any] = {"unit": plan.unit, "job_id": job_id, "task_id": task_id, "host": host,
                             "started_at": utc_now(), "planned": [], "pending": None, "running": None, "ended": None}
    stopping: dict[str, Any] = {}

    def on_term(signum: int, frame: FrameType | None) -> None:
        if "signal" not in stopping:  # raise once: a second SIGTERM must not cut the recording short
            stopping["signal"] = signal.Signals(signum).name
            raise SchedulerInterrupt(signum)

    def on_warning(signum: int, frame: FrameType | None) -> None:
        stopping["warning"] = signal.Signals(signum).name  # replaces submitit's requeue-or-raise handler

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(WARNING_SIGNAL, on_warning)
    signal.pthread_sigmask(signal.SIG_BLOCK, {WARNING_SIGNAL})
    summary: dict[str, Any] = {"host": host, "unit": plan.unit, "planned": 0, "ran": 0, "notes": []}
    request = SweepRequest(plan.spec(), Path(plan.results_dir), force=plan.force, contention=plan.contention)

    plan_here_: dict[str, Plan] = {}

    def launch(config: Config) -> Record:
        if "warning" in stopping or WARNING_SIGNAL in signal.sigpending():
            raise _NoNewWork
        identity = plan_here_["plan"].identities[config.device]
        placement = placement_for("slurm", host, identity, job_id=job_id, task_id=task_id)
        state.update(running={"config": asdict(config), "since": utc_now(), "placement": asdict(placement)})
        write_state(path, state)
        record = spawn_and_store(make_job(config, request, identity, placement, writer=writer))
        state["running"] = None
        write_state(path, state)
        summary["ran"] += 1
        return record

    how, reason = "completed", None
    try:
        with sweep_workers(plan.spec().backends, summary["notes"].append) as workers:
            plan_here_["plan"] = planned = _plan(plan, summary["notes"], workers.probe)
            series = planned.series
            known = ResultsStore(plan.results_dir).read()
            configs = [c for one in series for c in one]
            pending = to_run(series, known, plan.force)
            state.update(planned=[c.plan_key() for c in configs], pending=len(pending))
            write_state(path, state)
            summary["planned"] = len(configs)
            workers.ready(pending)
            for one in series:
                run_series(one, store, launch, known, plan.force)
    except HarnessError as exc:  # nothing to run here (no backend, no such GPU): said once, for the submitter
        how, reason = "failed", str(exc)
        summary["error"] = str(exc)
    except _NoNewWork:
        how, reason = "stopped", f"{WARNING_SIGNAL.name}: the time limit or a preemption is near"
    except SchedulerInterrupt:
        how, reason = "interrupted", stepd_reason(_task_log()) or f"{stopping['signal']} from the scheduler"
        _record_interruption(state, store, reason)
    state["running"] = None
    state["ended"] = {"at": utc_now(), "how": how, "reason": reason}
    write_state(path, state)
    return {**summary, "ended": how, "reason": reason}


def _plan(plan: TaskPlan, notes: list[str], probe: Probe) -> Plan:
    """The task's plan, decided on this node (a GPU only where Slurm gave the task one)."""
    planned = plan_here(plan.spec(), gpu=slurm_gave_gpus() and gpu_present(), probe=probe)
    notes.extend(planned.notes)
    for note in notes:
        print(f"harness task: {note}", file=sys.stderr)
    return planned


def _record_interruption(state: dict[str, Any], store: ResultsStore, reason: str) -> None:
    """Record the configuration that was running, unless its worker stored a record before it died."""
    running = state.get("running")
    if not running:
        return
    config = Config(**running["config"])
    placement = Placement(**running["placement"])
    if recorded_since(file_records(store.path), running, state["job_id"], state["task_id"]):
        return
    record = interruption_record(config, replace(placement, shard=store.path.name), running["since"], reason,
                                 recorded_by="slurm task")
    store.append(record)
