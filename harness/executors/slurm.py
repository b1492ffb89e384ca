"""``--executor slurm``: the sweep as one Slurm job array, submitted through submitit (no sbatch script).

One array task per network (x backend x device where the user named them), running that network's batch
series in ascending order, so the OOM rule of :func:`harness.measure.sweep.run_series` applies inside the
task. What the user left open - backends, default device, batches, modes - is decided on the compute node
(:mod:`harness.executors.slurm_task`): the submitting host needs neither the backends nor a GPU.

Results: every task writes its own shard (``results-slurm-<job>_<task>.jsonl``) into the results
directory, which must be on a filesystem the nodes share at the same path (as must the prototxts and
this interpreter). Nothing takes a lock; readers merge the shards with the store's one rule. submitit's
pickles and logs go to ``<results>/slurm/``.

Resume: ``harness bench`` again with the same options submits only the units whose configurations are not
all final. The submitter knows a configuration only without its hardware (the node decides), so it
matches the plan a unit's earlier task wrote (``Merged.finished_plans``); the task re-checks on its
node with full keys.

Waiting (the default) shows progress from the job's shards and, when the job ends, records any
configuration a task was running when the scheduler killed it without warning (SIGKILL, node failure),
with the scheduler's state (sacct's ``State``; ``scontrol show job`` where there is no accounting). The
same happens at the next submission for a job nobody waited for. ``--no-wait`` prints the job id.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError, control_characters
from harness.executors.base import Executor, SweepRequest
from harness.executors.slurm_task import (
    SLURM_DIR,
    STATE_SUFFIX,
    TaskPlan,
    interruption_record,
    read_state,
    recorded_since,
    run_task,
    state_path,
)
from harness.measure.sweep import SweepSpec
from harness.results.records import Config, Placement, Record
from harness.results.schema import shown
from harness.results.store import Merged, ResultsStore, parse_lines, read_results

DEFAULT_TIME_MIN = 60
#: how often the submitter looks at the shards and state files, and asks the scheduler
POLL_S = 2.0
SCHEDULER_POLL_S = 10.0
#: Slurm job states of a job that may still run (anything else has ended)
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                           "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED"})
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
#: a Slurm partition or account name as the harness passes it on to sbatch: submitit writes it into a
#: "#SBATCH" line of the batch script, where a line break would end the directive and run what follows as
#: shell commands. Partitions may be a comma-separated list.
SLURM_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
#: characters a path must not hold where submitit writes it into the batch script ("#SBATCH --output=...")
#: and srun's options: a line break ends the directive, and Slurm reads "%" as a file-name pattern (%j, %A)
#: and "\" as an escape (Debian's Slurm 22.05 wrote no log for a folder with either; spaces, ";", "$()",
#: quotes and "#" reach it quoted and are taken as they are: tests/test_slurm.py runs a job in such a folder)
SCRIPT_PATH_FORBIDDEN = "%\\"


def parse_time(text: str, where: str) -> int:
    """A Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in whole minutes."""
    m = _TIME.match(str(text).strip())
    if not m or str(text).strip() in ("", "0"):
        raise HarnessError(f"{where}: '{text}' is not a Slurm time limit (minutes, MM:SS, HH:MM:SS or "
                           "D-HH[:MM[:SS]])")
    days, a, b, c = m.groups()
    a_i, b_i, c_i = int(a), int(b or 0), int(c or 0)
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + a_i * 3600 + b_i * 60 + c_i
    elif c is not None:  # HH:MM:SS
        seconds = a_i * 3600 + b_i * 60 + c_i
    elif b is not None:  # MM:SS
        seconds = a_i * 60 + b_i
    else:  # minutes
        seconds = a_i * 60
    if seconds <= 0:
        raise HarnessError(f"{where}: the time limit must be positive, got '{text}'")
    return -(-seconds // 60)


@dataclass(frozen=True)
class SlurmOptions:
    """What ``--slurm-*`` and the sweep file's ``slurm:`` set."""

    partition: str | None = None
    account: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    gpus_per_task: int | None = None  # None: 1 when a cuda device is named, else none
    exclusive: bool = False

    @classmethod
    def parse(cls, options: dict[str, Any], where: str) -> SlurmOptions:
        known = ("partition", "account", "time", "gpus_per_task", "exclusive")
        unknown = set(options) - set(known)
        if unknown:
            raise HarnessError(f"{where}: unknown Slurm option(s) {', '.join(sorted(map(str, unknown)))} "
                               f"(known: {', '.join(known)})")
        for key in ("partition", "account"):
            value = options.get(key)
            if value is not None and (not isinstance(value, str)
                                      or not all(map(SLURM_NAME.fullmatch, value.split(",") if key == "partition"
                                                     else [value]))):
                listed = ", comma-separated" if key == "partition" else ""
                raise HarnessError(f"{where}: {key} must be a Slurm name (letters, digits, '_', '.', '+', '-'"
                                   f"{listed}), got {shown(value)}")
        gpus = options.get("gpus_per_task")
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
            raise HarnessError(f"{where}: gpus_per_task must be an integer >= 0, got {gpus!r}")
        exclusive = options.get("exclusive", False)
        if not isinstance(exclusive, bool):
            raise HarnessError(f"{where}: exclusive must be true or false, got {exclusive!r}")
        time_min = DEFAULT_TIME_MIN if options.get("time") is None else parse_time(options["time"], f"{where}: time")
        return cls(options.get("partition"), options.get("account"), time_min, gpus, exclusive)

    def sbatch_parameters(self, spec: SweepSpec, tasks: int) -> dict[str, Any]:
        """submitit's parameters for the array: every task at once (array_parallelism), a GPU per task
        where the sweep names a cuda device (``--gres gpu:N``), whole nodes for energy runs."""
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 1 if any(d.startswith("cuda") for d in spec.devices) else 0
        params: dict[str, Any] = {"job_name": "harness", "time": self.time_min, "array_parallelism": tasks,
                                  "partition": self.partition, "account": self.account,
                                  "gres": f"gpu:{gpus}" if gpus else None,
                                  "exclusive": True if self.exclusive else None}
        return {k: v for k, v in params.items() if v is not None}


def check_script_path(path: str, what: str) -> None:
    """Refuse a path Slurm would not take literally in the batch script: one with a control character
    (a line break would start a shell command) or a character of :data:`SCRIPT_PATH_FORBIDDEN`."""
    bad = sorted({*control_characters(path), *(c for c in path if c in SCRIPT_PATH_FORBIDDEN)})
    if bad:
        raise HarnessError(f"--executor slurm: {what} {shown(path)} holds {', '.join(map(shown, bad))}, which "
                           "Slurm's batch script cannot carry as it is (a line break ends a '#SBATCH' line, "
                           "'%' is a file-name pattern, '\\' an escape): use a path without them")


def plan_tasks(request: SweepRequest) -> list[TaskPlan]:
    """One task per network (x backend x device where named), in the sweep's order."""
    spec = request.spec
    out = []
    for device in spec.devices or [None]:
        for backend in spec.backends or [None]:
            for network in spec.networks:
                out.append(TaskPlan(network=network, backend=backend, device=device,
                                    batches=tuple(sorted(set(spec.batches))),
                                    modes=tuple(spec.modes) if spec.modes else None, seed=spec.seed,
                                    settings=dict(spec.settings), results_dir=str(request.results_dir.resolve()),
                                    force=request.force, contention=request.contention))
    return out


def finished_units(results_dir: Path, merged: Merged) -> set[str]:
    """Units whose latest task planned configurations that all have a final record now."""
    latest: dict[str, dict[str, Any]] = {}
    for path in (results_dir / SLURM_DIR).glob(f"*{STATE_SUFFIX}"):
        state = read_state(path)
        if not state or not state.get("planned") or not isinstance(state.get("unit"), str):
            continue
        earlier = latest.get(state["unit"])
        if earlier is None or str(state.get("started_at")) > str(earlier.get("started_at")):
            latest[state["unit"]] = state
    done = merged.finished_plans()
    return {unit for unit, state in latest.items() if set(state["planned"]) <= done}


# ---- asking the scheduler -----------------------------------------------------------------------

def _task_indices(text: str) -> list[int]:
    """Array indices in Slurm's notation: ``4``, ``2-5%2``, ``1,3,5-7``, ``[0-9:2]``."""
    out: list[int] = []
    for part in text.strip("[]").split("%")[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        if first.isdigit():
            out.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return out


def parse_sacct(text: str, job_id: str) -> dict[int, str]:
    """``sacct -X -n -P -o JobID,State`` lines -> task index -> state (``CANCELLED by 0`` -> CANCELLED). A
    job that is not an array (submitit submits a single task as a plain job) is task 0."""
    states: dict[int, str] = {}
    for line in text.splitlines():
        jid, _, state = line.partition("|")
        head, _, tasks = jid.partition("_")
        if head == job_id and state:
            for index in _task_indices(tasks) if tasks else [0]:
                states[index] = state.split()[0]
    return states


def parse_scontrol(text: str, job_id: str) -> dict[int, str]:
    """``scontrol -o show job`` lines -> task index -> JobState (a job that is not an array: task 0)."""
    states: dict[int, str] = {}
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "JobState" not in fields:
            continue
        if fields.get("ArrayJobId") == job_id and "ArrayTaskId" in fields:
            for index in _task_indices(fields["ArrayTaskId"]):
                states[index] = fields["JobState"]
        elif fields.get("JobId") == job_id and "ArrayTaskId" not in fields:
            states[0] = fields["JobState"]
    return states


def scheduler_states(job_id: str) -> dict[int, str] | None:
    """Each task's state as the scheduler tells it: sacct where accounting is on, else scontrol (which
    forgets a job MinJobAge after it ends: then every task is ``UNKNOWN``, and certainly over). None
    when neither could be asked."""
    try:
        done = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "JobID,State"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            states = parse_sacct(done.stdout, job_id)
            if states:
                return states
        done = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode == 0:
        return parse_scontrol(done.stdout, job_id)
    return {} if "Invalid job id" in done.stderr else None


def ended(state: str | None) -> bool:
    return state is not None and state not in ACTIVE_STATES


# ---- following the job's shards -----------------------------------------------------------------

class ShardFollower:
    """New records appended to the shards of one job, read incrementally (complete lines only)."""

    def __init__(self, results_dir: Path, job_id: str) -> None:
        self.dir = results_dir
        self.patterns = (f"results-slurm-{job_id}_*.jsonl", f"results-slurm-{job_id}-submitter.jsonl")
        self.offsets: dict[Path, int] = {}

    def new_records(self) -> Iterator[Record]:
        for path in sorted(p for pattern in self.patterns for p in self.dir.glob(pattern)):
            offset = self.offsets.get(path, 0)
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except OSError:
                continue
            complete = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(complete)
            # unreadable lines are left to every reader of the directory, which counts them
            yield from parse_lines(path, enumerate(complete.splitlines(keepends=True), start=1))[0]


# ---- the executor -------------------------------------------------------------------------------

class SlurmExecutor(Executor):
    name = "slurm"
    detaches: ClassVar[bool] = True

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options or SlurmOptions()

    @classmethod
    def configure(cls, options: dict[str, Any], where: str) -> SlurmExecutor:
        return cls(SlurmOptions.parse(options, where))

    def run(self, request: SweepRequest) -> list[Record]:
        results = request.results_dir.resolve()
        check_script_path(str(results), "the results directory")
        check_script_path(sys.executable, "this Python interpreter's path")
        submitit = _submitit()
        folder = results / SLURM_DIR
        folder.mkdir(parents=True, exist_ok=True)
        merged = read_results([results])
        self._record_earlier_kills(results, merged, request)
        plans = plan_tasks(replace(request, results_dir=results))
        if not request.force:
            finished = finished_units(results, merged)
            skipped = [p for p in plans if p.unit in finished]
            plans = [p for p in plans if p.unit not in finished]
            if skipped:
                request.note(f"{len(skipped)} task(s) not submitted: every configuration they planned has a final "
                             "record")
        if not plans:
            request.note("nothing to submit")
            return []
        executor = submitit.SlurmExecutor(folder=str(folder))
        executor.update_parameters(**self.options.sbatch_parameters(request.spec, len(plans)))
        try:
            jobs = executor.map_array(run_task, plans)
        except Exception as exc:  # sbatch refused (partition, account, gres...): its own words, one line
            raise HarnessError(f"sbatch did not accept the job array: {' '.join(str(exc).split())[-400:]}") from None
        job_id = jobs[0].job_id.split("_")[0]
        request.note(f"submitted Slurm job {job_id}: {len(plans)} task(s); logs in {folder}; "
                     f"`scancel {job_id}` stops it; the same `harness bench` command resumes")
        if not request.wait:
            return []
        return self._wait(request, results, job_id, jobs, plans)

    def _wait(self, request: SweepRequest, results: Path, job_id: str, jobs: list[Any],
              plans: list[TaskPlan]) -> list[Record]:
        follower = ShardFollower(results, job_id)
        records: list[Record] = []
        open_tasks = set(range(len(plans)))
        end_states: dict[int, str] = {}
        outcomes: dict[int, dict[str, Any]] = {}
        running: dict[int, str] = {}
        last_asked = 0.0
        try:
            while open_tasks:
                self._collect(follower, request, records)
                pending_total = 0
                for index in range(len(plans)):
                    state = read_state(state_path(results, job_id, str(index))) or {}
                    pending_total += state.get("pending") or 0
                    now_running = (state.get("running") or {}).get("config")
                    if now_running and running.get(index) != str(now_running):
                        running[index] = str(now_running)
                        if request.on_start:
                            request.on_start(Config(**now_running))
                if request.on_total and pending_total:
                    request.on_total(pending_total)
                for index in sorted(open_tasks):
                    if jobs[index].paths.result_pickle.exists():
                        outcomes[index] = _outcome(jobs[index])
                        open_tasks.discard(index)
                if open_tasks and time.monotonic() - last_asked >= SCHEDULER_POLL_S:
                    last_asked = time.monotonic()
                    states = scheduler_states(job_id)
                    for index in sorted(open_tasks):
                        state = "UNKNOWN" if states == {} else (states or {}).get(index)
                        if ended(state) and not jobs[index].paths.result_pickle.exists():
                            end_states[index] = state  # type: ignore[assignment]
                            open_tasks.discard(index)
                if open_tasks:
                    time.sleep(POLL_S)
        except KeyboardInterrupt:
            request.note(f"stopped waiting; Slurm job {job_id} goes on (`scancel {job_id}` stops it)")
            raise
        merged = read_results([results]) if end_states else None
        for index, state in end_states.items():
            killed = self._record_kill(results, job_id, str(index), state, merged)  # type: ignore[arg-type]
            if killed is not None:
                records.append(killed)
                if request.on_done:
                    request.on_done(killed, killed.config)
        self._collect(follower, request, records)
        failures = []
        for index, outcome in sorted(outcomes.items()):
            for text in outcome.get("notes") or []:
                request.note(f"task {job_id}_{index} ({plans[index].network}): {text}")
            if outcome.get("error") or outcome.get("ended") not in (None, "completed"):
                why = outcome.get("error") or f"{outcome.get('ended')}: {outcome.get('reason')}"
                failures.append(f"task {job_id}_{index} ({plans[index].network}) on {outcome.get('host')}: {why}")
        failures += [f"task {job_id}_{index} ({plans[index].network}) ended {state} (log: {jobs[index].paths.stderr})"
                     for index, state in sorted(end_states.items())]
        if failures and not records:  # as a local sweep that cannot start: one line, exit 2
            raise HarnessError(f"no task measured anything: {failures[0]}"
                               + (f" (and {len(failures) - 1} more task(s) like it)" if len(failures) > 1 else ""))
        for failure in failures:
            request.note(failure)
        return records

    @staticmethod
    def _collect(follower: ShardFollower, request: SweepRequest, records: list[Record]) -> None:
        for record in follower.new_records():
            records.append(record)
            if request.on_done:
                request.on_done(record, record.config)

    def _record_kill(self, results: Path, job_id: str, task_id: str, state: str, merged: Merged) -> Record | None:
        """Record the configuration a task was running when it ended without recording it (SIGKILL, node
        failure), with the scheduler's state; None when it ran nothing then or recorded it itself."""
        task_state = read_state(state_path(results, job_id, task_id))
        if not task_state or task_state.get("ended") or not task_state.get("running"):
            return None
        running = task_state["running"]
        if recorded_since([*merged.records, *merged.superseded], running, job_id, task_id):
            return None
        config = Config(**running["config"])
        store = ResultsStore(results, f"slurm-{job_id}-submitter")
        placement = replace(Placement(**running["placement"]), shard=store.path.name)
        reason = f"job {job_id}_{task_id} ended {state}"
        record = interruption_record(config, placement, running["since"], reason, recorded_by="slurm submitter")
        store.append(record)
        return record

    def _record_earlier_kills(self, results: Path, merged: Merged, request: SweepRequest) -> None:
        """Before a new submission: configurations that earlier jobs' tasks were running when killed
        hard, and that nobody recorded (a --no-wait submission, a submitter that stopped waiting)."""
        unsettled: dict[str, list[str]] = {}
        for path in (results / SLURM_DIR).glob(f"*{STATE_SUFFIX}"):
            state = read_state(path)
            if state and state.get("running") and not state.get("ended"):
                unsettled.setdefault(str(state.get("job_id")), []).append(str(state.get("task_id")))
        for job_id, task_ids in unsettled.items():
            states = scheduler_states(job_id)
            if states is None:
                continue
            for task_id in task_ids:
                state = "UNKNOWN" if states == {} else states.get(int(task_id))
                if ended(state):
                    record = self._record_kill(results, job_id, task_id, state, merged)  # type: ignore[arg-type]
                    if record is not None:
                        request.note(f"{record.key}: {record.message}")


def _outcome(job: Any) -> dict[str, Any]:
    """A finished task's summary (submitit's result), or its error in one line."""
    try:
        outcome = job.result()
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else type(exc).__name__}
    return outcome if isinstance(outcome, dict) else {"error": f"unexpected task result {outcome!r}"}


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise HarnessError("--executor slurm needs submitit: pip install 'harness[cluster]'") from None
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise HarnessError("--executor slurm: sbatch/srun not found (run it on a Slurm login node)")
    return submitit

