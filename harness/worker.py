"""The one way to run a configuration: a fresh worker process that loads, measures and records it.

``python -m harness.worker`` reads one :class:`Job` (JSON on stdin), loads the network in the backend,
measures it in one window and appends the record to the results directory itself; it also sends the
record back on its stdout. Every configuration of every backend gets a fresh worker, so no cached
allocator pool, CUDA context, cuDNN autotuning, dynamo cache or crashed state of one configuration
can reach the next one's measurement. A job's kind says what it measures, with which record and store:
``timing`` (here) or ``layers`` (per-layer times, :mod:`harness.layertime.measure`).

The parent side is :func:`spawn_worker`, which executors (``harness.executors``: local, multi-GPU,
Slurm) call wherever they decide a worker runs. It starts the worker under the interpreter the
backend names (:meth:`Backend.worker_python`: pycaffe's for Caffe, this one otherwise), pinned to one
GPU by UUID (the worker then sees ``cuda:0``), and turns a worker that dies - Caffe's CHECK failure
aborts its process, an allocator can be killed - or hangs into a record, never a dead sweep. How the
worker's process starts - spawned, or forked from a warm parent that has imported its framework
already - is :mod:`harness.worker_start`'s business; the worker is the same either way.

This module is imported under pycaffe's interpreter too: standard library and numpy only at the top.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness import jsonout
from harness.backends.base import RunTarget, Session, get_backend
from harness.convert.weights import INPUT_DISTRIBUTION
from harness.errors import (
    BackendUnavailable,
    DeviceOutOfMemory,
    HarnessError,
    LayerTimingUnsupported,
    UnsupportedLayer,
)
from harness.ir.graph import Graph
from harness.measure.contention import WORKER_PROCESS_NAME, ContentionPolicy
from harness.measure.timer import TimingProtocol
from harness.measure.window import GpuTarget, MeasurementWindow, WindowResult, WindowSettings
from harness.process_group import kill_group
from harness.results.metadata import host_metadata, run_metadata
from harness.results.records import Config, LatencyFigures, Placement, Record, utc_now
from harness.results.store import ResultsStore, StoreWriteError
from harness.worker_start import WorkerProcess, exit_unknown, how_started, log_tail, start_worker

#: a worker that has not replied by then is stuck: killed and recorded (``worker_timeout_s`` setting)
BASE_TIMEOUT_S = 600.0
#: exit status of a worker whose record could not be appended (it is in the fallback file it names)
EXIT_NOT_STORED = 3
#: the worker's process name (``ps -e``, /proc/PID/comm), however it started
PROCESS_NAME = WORKER_PROCESS_NAME.encode()


@dataclass
class Job:
    """Everything one worker needs, as JSON: what to run, how to measure, where to record it."""

    config: Config
    settings: WindowSettings
    results_dir: str
    writer: str | None = None  # the store's shard (None: results.jsonl)
    device: str | None = None  # the device as the worker sees it (cuda:0 when pinned); None: config.device
    gpu_uuid: str | None = None
    poller_python: str | None = None  # the interpreter with nvidia-ml-py, for the NVML poller
    placement: Placement | None = None
    contention: ContentionPolicy | None = None  # None: flagged windows are kept (warn)
    kind: str = "timing"  # what the job measures: "timing" or a key of JOB_KINDS

    def to_json(self) -> str:
        return json.dumps({**asdict(replace(self, settings=WindowSettings())), "settings": self.settings.as_dict()})

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        settings = dict(data["settings"])
        settings["protocol"] = TimingProtocol(**settings["protocol"])
        placement, contention = data.get("placement"), data.get("contention")
        return cls(**{**data, "config": Config(**data["config"]), "settings": WindowSettings(**settings),
                      "placement": Placement(**placement) if placement else None,
                      "contention": ContentionPolicy(**contention) if contention else None})


@dataclass(frozen=True)
class JobKind:
    """What a job measures: the function that measures a configuration in the worker (as :func:`run_config`:
    every failure becomes a record), the record type it makes (with ``from_dict``, ``to_dict``, ``key``
    and the fields ``config``, ``status``, ``message``, ``started_at``, ``finished_at``, ``metadata``,
    ``contended``, ``placement``) and the store that keeps such records in a results directory."""

    measure: Callable[[Config, WindowSettings, str | None, GpuTarget | None], Any]
    record: Any  # the record class
    store: Callable[[str, str | None], Any]  # (results dir, writer) -> a store with .append(record) and .path


#: job kinds besides "timing" (:data:`TIMING`): name -> "module:attribute" of its JobKind, imported when a
#: job of that kind runs
JOB_KINDS = {"layers": "harness.layertime.measure:LAYERS"}


def job_kind(name: str) -> JobKind:
    if name == "timing":
        return TIMING
    module, attribute = JOB_KINDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


# ---- in the worker ------------------------------------------------------------------------------

#: resolves a network name (zoo name or prototxt path) to a Graph
GraphResolver = Callable[[str], Graph]
#: loads a configuration into a session: (backend name, target) -> Session
SessionLoader = Callable[[str, RunTarget], Session]


def resolve_network(name: str) -> Graph:
    from harness import zoo

    return zoo.resolve(name)  # a zoo name or a prototxt path


def load_session(backend: str, target: RunTarget) -> Session:
    return get_backend(backend).load_in_worker(target)


def run_config(config: Config, settings: WindowSettings, device: str | None = None, gpu: GpuTarget | None = None,
               resolve: GraphResolver = resolve_network, load: SessionLoader = load_session) -> Record:
    """Measure one configuration in this process; every failure becomes a record with its status,
    never an exception (KeyboardInterrupt excepted). ``device``: the device as this process sees it."""
    from harness.analysis.analyzer import analysis_of

    record = Record(config=config, status="ok", started_at=utc_now())
    settings_dict = settings.as_dict()
    window = None
    try:
        graph = resolve(config.network)
        record.macs_per_forward = analysis_of(graph, "paper", batch=config.batch, network=config.network).totals.macs
        window = MeasurementWindow(config.device, settings, gpu)
        window.begin()
        target = RunTarget(graph=graph, network=config.network, batch=config.batch, device=device or config.device,
                           mode=config.mode, seed=config.seed)
        with load(config.backend, target) as session:
            result = window.measure(session, config.batch, record.macs_per_forward)
            info = dict(session.info)
        window = None
        _fill(record, result)
        record.metadata = run_metadata(info, result.device_info, settings_dict)
        record.metadata["input_distribution"] = INPUT_DISTRIBUTION
        record.metadata["weights"] = (f"caffemodel {target.weights}" if target.weights else
                                      f"deterministic set of harness.convert.weights, seed {config.seed}")
        if result.notes:
            record.metadata["notes"] = result.notes
        if result.contention is not None:  # what the guard saw, flagged or not
            record.metadata["contention"] = result.contention.observed
    except Exception as exc:  # every failure becomes the record's status (KeyboardInterrupt is no Exception)
        record_failure(record, exc)
    finally:
        if window is not None:
            window.abort()
    record.finished_at = utc_now()
    return record


def _fill(record: Record, result: WindowResult) -> None:
    t = result.timing
    record.latency = LatencyFigures(**t.summary(), throughput_fps=t.throughput(record.config.batch))
    record.latencies_s = list(t.latencies_s)
    record.memory = result.memory
    record.energy = result.energy
    record.poller = result.poller
    record.timeline = result.timeline
    if result.contention is not None:
        record.contended = result.contention.flag()


def record_failure(record: Any, exc: Exception) -> None:
    """The status and one-line message of a configuration that failed with ``exc``, in its record (a timing
    record or any record of a job kind)."""
    if isinstance(exc, DeviceOutOfMemory):
        _fail(record, "oom", exc)
    elif isinstance(exc, MemoryError):  # host memory ran out outside a backend's own mapping (weights, input)
        _fail(record, "oom", HarnessError(f"out of host memory: {type(exc).__name__} {exc}".strip()))
    elif isinstance(exc, UnsupportedLayer | LayerTimingUnsupported):
        _fail(record, "unsupported", exc)
    elif isinstance(exc, BackendUnavailable):
        _fail(record, "unavailable", exc)
    elif isinstance(exc, HarnessError):
        _fail(record, "failed", exc)
    else:  # a backend bug must not end the sweep: record where it happened
        _fail(record, "failed", exc, detail="".join(traceback.format_exception(exc)[-3:]))


def _fail(record: Any, status: str, exc: BaseException, detail: str | None = None) -> None:
    record.status = status  # type: ignore[assignment]  # one of STATUSES by construction
    record.message = one_line(str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}")
    if detail:
        record.metadata["traceback"] = detail
    record.metadata = {**host_metadata(), **record.metadata}


def one_line(text: str, limit: int = 500) -> str:
    """A message as one line of at most ``limit`` characters (records and consoles show it as is)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def run_job(job: Job, started: dict[str, Any] | None = None) -> Any:
    """The worker's whole life: limits, measurement, placement, the record (or layer profile) appended to the
    store. ``started``: how this process started (recorded; :mod:`harness.forkserver` says it forked it)."""
    limit = job.settings.worker_address_space_bytes
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    gpu = GpuTarget(job.gpu_uuid, job.poller_python) if job.gpu_uuid else None
    kind = job_kind(job.kind)
    record = kind.measure(job.config, job.settings, job.device, gpu)
    if job.contention is not None and job.contention.earlier:
        record.metadata["contention_attempts"] = job.contention.earlier  # what disturbed discarded attempts
    record.metadata["worker_start"] = started or {"how": "spawned"}
    placement = job.placement or Placement(executor="direct", host=socket.gethostname())
    shard = kind.store(job.results_dir, job.writer).path.name
    record.placement = replace(placement, worker_pid=os.getpid(), shard=shard)
    return record


def name_process(name: bytes) -> None:
    """Name this process (Linux ``prctl(PR_SET_NAME)``; elsewhere nothing), so that ``ps`` and ``top`` tell a
    worker from the interpreter or warm parent it came from."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # 15: PR_SET_NAME


def main(started: dict[str, Any] | None = None) -> int:
    name_process(PROCESS_NAME)
    # The protocol owns the original stdout; anything a framework prints goes to stderr, the log.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    job = Job.from_json(sys.stdin.read())
    record = run_job(job, started)
    reply: dict[str, Any] = {"record": record.to_dict()}
    status = 0
    if job.contention is not None and job.contention.wants_retry(record.contended):
        reply["retry"] = True  # disturbed: not stored, the parent measures again in a fresh worker
    else:
        try:
            job_kind(job.kind).store(job.results_dir, job.writer).append(record)
        except StoreWriteError as exc:
            print(f"harness worker: {exc}", file=sys.stderr)
            reply["not_stored"] = str(exc)
            status = EXIT_NOT_STORED
    replies.write(jsonout.dumps(reply) + "\n")  # as the store writes it: the parent reads it back typed
    replies.flush()
    return status


# ---- in the parent ------------------------------------------------------------------------------

def worker_timeout_s(settings: WindowSettings) -> float:
    """How long a worker may take before it counts as stuck: loading and compiling, the idle baseline and
    cooldown, warmup and the timed phase, with room to spare."""
    if settings.worker_timeout_s is not None:
        return settings.worker_timeout_s
    p = settings.protocol
    timed = max(p.min_s, settings.min_window_s, p.max_s or 0.0)
    cooldown = settings.cooldown_timeout_s if settings.cooldown_to_c is not None else 0.0
    return BASE_TIMEOUT_S + settings.idle_s + cooldown + 2.0 * (p.warmup_s + timed)


@dataclass
class WorkerOutcome:
    """What the parent learned: the record, and whether the parent must store it (the worker died
    before it could, or could not write it)."""

    record: Record
    stored: bool
    log_tail: list[str] = field(default_factory=list)
    retry: bool = False  # a disturbed window the contention policy measures again (not stored)


def spawn_worker(job: Job, env_extra: dict[str, str] | None = None) -> WorkerOutcome:
    """Run ``job`` in a fresh worker and wait for it; a death or hang becomes a ``failed`` (or ``oom``)
    record that the parent stores, since the worker could not."""
    config = job.config
    try:
        backend = get_backend(config.backend)
        python, python_env = backend.worker_python()
    except BackendUnavailable as exc:
        return _parent_record(job, "unavailable", str(exc))
    env = {**os.environ, **python_env, **backend.worker_env(config.device, config.mode), **(env_extra or {})}
    if job.gpu_uuid:
        env.update(CUDA_VISIBLE_DEVICES=job.gpu_uuid, CUDA_DEVICE_ORDER="PCI_BUS_ID")
    deadline = worker_timeout_s(job.settings)
    with tempfile.TemporaryFile(prefix="harness-worker-") as log:
        try:
            proc = start_worker(python, config.backend, env, log.fileno())
        except OSError as exc:
            return _parent_record(job, "failed", f"cannot start a worker with {python}: {exc.strerror}")
        try:
            reply, timed_out = _exchange(proc, job.to_json().encode(), deadline)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM from a scheduler): the worker must not outlive us
            kill_group(proc)
            raise
        log.seek(0)
        text = log.read().decode(errors="replace")
    tail = log_tail(text)
    if reply is not None and "record" in reply:
        record = job_kind(job.kind).record.from_dict(reply["record"])
        retry = bool(reply.get("retry"))
        return WorkerOutcome(record, stored="not_stored" not in reply and not retry, log_tail=tail, retry=retry)
    started = how_started(proc)
    if timed_out:
        return _parent_record(job, "failed", f"worker stuck: no result within {deadline:.0f} s; killed it "
                                             "(the worker_timeout_s setting sets the limit)", tail, started)
    explained = type(backend).explain_death(text)
    if explained is not None:
        status, message = explained
        return _parent_record(job, status, message, tail, started)
    return _parent_record(job, "failed", describe_exit(proc.returncode, tail, exit_unknown(proc)), tail, started)


def _exchange(proc: WorkerProcess, job: bytes, timeout_s: float) -> tuple[dict[str, Any] | None, bool]:
    """Send the job, wait for the reply line and the exit; (reply or None, timed out)."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except OSError:
        pass  # died at once: its exit status and log say why
    deadline = time.monotonic() + timeout_s
    out = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                kill_group(proc)
                return None, True
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            out += chunk
    proc.stdout.close()
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill_group(proc)
    try:
        reply = json.loads(out.splitlines()[-1]) if out.strip() else None
    except ValueError:
        reply = None
    return (reply if isinstance(reply, dict) else None), False


def describe_exit(code: int | None, tail: list[str], unknown: str | None = None) -> str:
    if code is None and unknown:
        what = f"worker ended before recording; {unknown}"
    elif code is not None and code < 0:
        what = f"worker killed by signal {signal.Signals(-code).name}"
        if -code == signal.SIGKILL:
            what += " (the kernel's OOM killer, a scheduler or a user)"
    else:
        what = f"worker exited with status {code} before recording"
    return one_line(what + (": " + " | ".join(tail) if tail else ""))


def _parent_record(job: Job, status: str, message: str, tail: list[str] | None = None,
                   started: dict[str, Any] | None = None) -> WorkerOutcome:
    """The record of a configuration whose worker could not record it: it crashed or hung (``started``: how
    that worker had started, as its own record would say), or none could start."""
    now = utc_now()
    kind = job_kind(job.kind)
    record = kind.record(config=job.config, status=status, message=one_line(message), started_at=now,
                         finished_at=now, metadata={**host_metadata(), "recorded_by": "parent"})
    if started is not None:
        record.metadata["worker_start"] = started
    if tail:
        record.metadata["worker_log_tail"] = tail
    placement = job.placement or Placement(executor="direct", host=socket.gethostname())
    record.placement = replace(placement, shard=kind.store(job.results_dir, job.writer).path.name)
    return WorkerOutcome(record, stored=False, log_tail=tail or [])


def spawn_and_store(job: Job, env_extra: dict[str, str] | None = None) -> Record:
    """:func:`spawn_worker`, then store the record if the worker could not (the same shard). A window the
    contention policy wants measured again is, after its wait, in a fresh worker that is told what
    disturbed the earlier attempts."""
    outcome = spawn_worker(job, env_extra)
    while outcome.retry and job.contention is not None:
        earlier = [*job.contention.earlier, outcome.record.contended or {}]
        job = replace(job, contention=replace(job.contention, earlier=earlier))
        time.sleep(job.contention.wait_s)
        outcome = spawn_worker(job, env_extra)
    if not outcome.stored:
        job_kind(job.kind).store(job.results_dir, job.writer).append(outcome.record)
    return outcome.record


#: the harness's own measurement: latency, throughput, memory, power and energy in one window
TIMING = JobKind(measure=run_config, record=Record, store=ResultsStore)

if __name__ == "__main__":
    sys.exit(main())
