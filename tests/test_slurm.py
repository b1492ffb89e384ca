"""``--executor slurm`` through a real single-node Slurm (tests/slurm_cluster.py: Debian's slurmctld, slurmd and
munge on localhost; skipped, saying why, where it cannot run). Real sweeps on the CPU: a submitter that
cannot import any backend submits, the node decides devices and modes, and the merged shards hold what a
local run holds; a task cancelled by ``scancel`` and one killed outright lose only the configuration each was
running, recorded with the scheduler's reason; resume submits only what is missing, and nothing is lost or
duplicated. The scheduler's words (sacct, scontrol) are parsed from lines this cluster printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, cluster_fixture
from test_worker import BLOCKER, QUICK, needs, tiny_nets

from harness.cli.bench import executor_options
from harness.cli.main import build_parser, main
from harness.errors import HarnessError
from harness.executors import SweepRequest
from harness.executors.slurm import (
    ShardFollower,
    SlurmOptions,
    ended,
    finished_units,
    parse_sacct,
    parse_scontrol,
    parse_time,
    plan_tasks,
    scheduler_states,
)
from harness.executors.slurm_task import STEPD_LINE, read_state, state_path, stepd_reason
from harness.measure.sweep import SweepSpec
from harness.measure.sweep_file import load_sweep_yaml
from harness.results.store import read_results

QUICK_FLAGS = [arg for key, value in QUICK.items() for arg in ("--set", f"{key}={value}")]
#: the submitter of one test runs with no backend and no NVML importable (test_worker's import blocker)
NO_BACKENDS = re.sub(r"BLOCKED = \{[^}]*\}", 'BLOCKED = {"torch", "onnx", "onnxruntime", "cv2", "caffe", "pynvml"}',
                     BLOCKER)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    yield from cluster_fixture(tmp_path_factory)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def bench(*args: str) -> list[str]:
    # the quick settings first, so that a test's own --set (e.g. a 3 s window to act in) overrides them
    return ["bench", "--executor", "slurm", "--slurm-time", "10", *QUICK_FLAGS, *args]


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_a_sweep_through_slurm_holds_what_a_local_run_holds(slurm: SlurmCluster, tmp_path: Path) -> None:
    """3 networks x 2 backends: 6 tasks, planned on the node by a submitter that cannot import torch,
    onnxruntime, OpenCV or NVML; no --device, so the node chose cpu (it was given no GPU)."""
    needs("torch")
    needs("onnxruntime")
    nets = tiny_nets(tmp_path, 3)
    argv = bench(*nets, "--backend", "pytorch,onnxruntime", "--batch", "1", "--out", str(tmp_path / "slurm"))
    code = f"{NO_BACKENDS}\nfrom harness.cli.main import main\nsys.exit(main({argv!r}))"
    submitter = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert submitter.returncode == 0, submitter.stderr[-3000:]
    assert "6 configurations" in submitter.stderr and "6 ok" in submitter.stderr
    job = re.search(r"submitted Slurm job (\d+): 6 task\(s\)", submitter.stderr)
    assert job, submitter.stderr[-2000:]

    assert main(["bench", *nets, "--backend", "pytorch,onnxruntime", "--batch", "1",
                 "--out", str(tmp_path / "local"), *QUICK_FLAGS]) == 0
    remote = read_results([tmp_path / "slurm"])
    local = read_results([tmp_path / "local"])
    assert sorted((r.key, r.status) for r in remote.records) == sorted((r.key, r.status) for r in local.records)
    assert not remote.superseded and not remote.unreadable
    shards = set()
    for record in remote.records:
        p = record.placement
        assert (p.executor, p.job_id, p.host) == ("slurm", job.group(1), slurm.node)
        assert p.shard == f"results-slurm-{p.job_id}_{p.task_id}.jsonl" and record.config.device == "cpu"
        shards.add(p.shard)
    assert len(shards) == 6  # one task (and shard) per network's series


def test_a_sweep_whose_every_task_fails_is_one_line_and_exit_2(slurm: SlurmCluster, tmp_path: Path, capsys) -> None:
    """As a local sweep that cannot start: the node has no GPU for --device cuda:0, every task says so, and
    `harness bench` ends with one line naming a task and why, status 2."""
    (net,) = tiny_nets(tmp_path, 1)
    assert main(bench(net, "--backend", "pytorch", "--device", "cuda:0", "--slurm-gpus-per-task", "0",
                      "--batch", "1", "--out", str(tmp_path / "res"))) == 2
    err = capsys.readouterr().err
    assert "no task measured anything: task" in err and "cuda:0" in err and "Traceback" not in err


def _submit_no_wait(args: list[str], capsys) -> str:
    assert main([*args, "--no-wait"]) == 0
    err = capsys.readouterr().err
    found = re.search(r"submitted Slurm job (\d+)", err)
    assert found, err
    return found.group(1)


def _running(out: Path, job: str, task: int) -> dict | None:
    state = read_state(state_path(out, job, str(task))) or {}
    return state.get("running")


def kill_task_outright(job: str, task: int) -> list[int]:
    """SIGKILL to a task's processes (the submitit task, its worker, and the warm parents its workers are forked
    from, whose command line a forked worker keeps), as the kernel's OOM killer or a dying node would: no
    handler runs. (``scancel --signal=KILL`` is a plain cancel: SIGTERM first.)"""
    killed = []
    for entry in Path("/proc").iterdir():
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ours = f"SLURM_ARRAY_JOB_ID={job}".encode() in env and f"SLURM_ARRAY_TASK_ID={task}".encode() in env
        if ours and any(name in cmdline for name in (b"submitit.core._submit", b"harness.worker",
                                                       b"harness.forkserver")):
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
    return killed


def test_cancelled_and_killed_tasks_lose_only_their_running_configuration(slurm: SlurmCluster, tmp_path: Path,
                                                                          capsys) -> None:
    """Task 0 gets `scancel` (SIGTERM, then SIGKILL): it records its running configuration with slurmstepd's
    reason. Task 1 and its worker get SIGKILL: the next submission records its running configuration with
    the scheduler's state. Resume submits only those two tasks' units and completes them."""
    needs("torch")
    nets = tiny_nets(tmp_path, 2)
    out = tmp_path / "res"
    args = bench(*nets, "--backend", "pytorch", "--batch", "1,2", "--out", str(out),
                 "--set", "min_s=3", "--set", "min_window_s=3")
    job = _submit_no_wait(args, capsys)
    for task in (0, 1):
        wait_for(lambda task=task: _running(out, job, task), 120, f"task {task} to start a configuration")
    time.sleep(1.5)  # the workers are measuring
    cancelled, killed = _running(out, job, 0), _running(out, job, 1)
    slurm.run("scancel", f"{job}_0")
    assert len(kill_task_outright(job, 1)) >= 2
    wait_for(lambda: all(ended(s) for s in (scheduler_states(job) or {0: "PENDING"}).values()), 120, "the job to end")

    merged = read_results([out])
    not_ok = [r for r in merged.records if r.status != "ok"]
    assert len(not_ok) == 1, [(r.key, r.status, r.message, r.placement) for r in merged.records]
    (interrupted,) = not_ok
    assert interrupted.config.network == cancelled["config"]["network"]
    assert interrupted.config.batch == cancelled["config"]["batch"]
    assert interrupted.status == "failed" and interrupted.message.startswith("interrupted by Slurm (cancelled at ")
    assert interrupted.metadata["recorded_by"] == "slurm task"
    assert (interrupted.placement.job_id, interrupted.placement.task_id) == (job, "0")
    assert not [r for r in merged.records if r.config.network == nets[1] and r.config.batch > killed["config"]["batch"]]

    assert main(args) == 0  # resume
    err = capsys.readouterr().err
    assert re.search(rf"interrupted by Slurm \(job {job}_1 ended [A-Z_]+\)", err), err  # recorded by the submitter
    assert "submitted Slurm job" in err and ": 2 task(s)" in err
    final = read_results([out])
    assert sorted((r.config.network, r.config.batch, r.status) for r in final.records) == sorted(
        (n, b, "ok") for n in nets for b in (1, 2))
    oks = [r for r in [*final.records, *final.superseded] if r.status == "ok"]
    assert len(oks) == 4  # nothing measured twice
    failed = sorted((r.metadata["recorded_by"], r.placement.task_id) for r in final.superseded)
    assert failed == [("slurm submitter", "1"), ("slurm task", "0")]  # each interruption recorded once

    assert main(args) == 0  # resume once more: everything is final, nothing is submitted
    assert "2 task(s) not submitted" in capsys.readouterr().err


def test_the_time_limit_warning_lets_the_running_configuration_finish_and_starts_no_other(
        slurm: SlurmCluster, tmp_path: Path, capsys) -> None:
    """submitit has Slurm send USR2 90 s before the time limit, to every process of the task: the worker
    measuring must survive it, and the task must start nothing after it."""
    needs("torch")
    (net,) = tiny_nets(tmp_path, 1)
    out = tmp_path / "res"
    args = bench(net, "--backend", "pytorch", "--batch", "1,2", "--out", str(out), "--set", "min_s=3",
                 "--set", "min_window_s=3")
    job = _submit_no_wait(args, capsys)
    wait_for(lambda: _running(out, job, 0), 120, "the task to start a configuration")
    time.sleep(1.5)
    slurm.run("scancel", "--signal=USR2", job)  # one task: submitit submits it as a plain job, not an array
    wait_for(lambda: ended((scheduler_states(job) or {}).get(0, "PENDING")), 120, "the task to end")
    (record,) = read_results([out]).records
    assert (record.config.batch, record.status) == (1, "ok"), record.message
    state = read_state(state_path(out, job, "0"))
    assert state["ended"]["how"] == "stopped" and state["ended"]["reason"].startswith("SIGUSR2")

    assert main(args) == 0  # resume, waiting for a one-task job (submitted as a plain job, not an array)
    assert [(r.config.batch, r.status) for r in read_results([out]).records] == [(1, "ok"), (2, "ok")]


def test_ctrl_c_stops_waiting_not_the_job(slurm: SlurmCluster, tmp_path: Path) -> None:
    needs("torch")
    (net,) = tiny_nets(tmp_path, 1)
    out = tmp_path / "res"
    argv = bench(net, "--backend", "pytorch", "--batch", "1", "--out", str(out), "--set", "min_s=2")
    # SIGINT as a terminal delivers it: a shell that starts a script in the background (as a CI runner may)
    # leaves its commands ignoring SIGINT, and the submitter would inherit that
    submitter = subprocess.Popen([sys.executable, "-m", "harness", *argv], stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: list((out / "slurm").glob("*_harness.json")), 120, "the task to start")
    submitter.send_signal(signal.SIGINT)
    _, err = submitter.communicate(timeout=60)
    assert submitter.returncode == 130, err
    job = re.search(r"stopped waiting; Slurm job (\d+) goes on", err)
    assert job, err
    wait_for(lambda: ended((scheduler_states(job.group(1)) or {}).get(0, "PENDING")), 120, "the job to end")
    assert [r.status for r in read_results([out]).records] == ["ok"]


def test_sweep_file_slurm_options_reach_sbatch_and_the_command_line_wins(slurm: SlurmCluster, tmp_path: Path,
                                                                          capsys) -> None:
    (net,) = tiny_nets(tmp_path, 1)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"networks: [{net}]\nbackends: [pytorch]\nbatches: [1]\n"
                     "slurm: {partition: nosuchpartition, time: '5'}\n")
    base = ["bench", "--config", str(sweep), "--executor", "slurm", "--out", str(tmp_path / "res")]
    assert main(base) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "sbatch did not accept the job array" in err and "nosuchpartition" in err, err
    job = _submit_no_wait([*base, "--slurm-partition", "debug"], capsys)
    slurm.run("scancel", job)
    sweep.write_text(f"networks: [{net}]\nslurm: {{time: soon}}\n")
    assert main(base) == 2
    assert f"{sweep}: 'slurm' / --slurm-*: time: 'soon' is not a Slurm time limit" in capsys.readouterr().err
    local = build_parser("bench").parse_args(["bench", "--config", str(sweep)])
    assert executor_options(local, load_sweep_yaml(sweep)) == ({}, "--slurm-*")  # other executors ignore it


def test_hostile_characters_never_run_in_the_batch_script(slurm: SlurmCluster, tmp_path: Path, capsys) -> None:
    """A partition with a line break (submitit would write the next line into the batch script as a shell
    command) is refused in one line before anything is submitted; a results folder with a space, ';',
    '$()', backticks, quotes and '#' runs for real: sbatch and srun take the quoted path as it is (the logs
    and the records land there) and nothing in it is executed."""
    (net,) = tiny_nets(tmp_path, 1)
    marker = tmp_path / "INJECTED"
    assert main(bench(net, "--backend", "pytorch", "--batch", "1", "--out", str(tmp_path / "refused"),
                      "--slurm-partition", f"debug\ntouch {marker}")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "partition must be a Slurm name" in err and "\\n" in err
    assert not list((tmp_path / "refused").glob("slurm/*"))  # nothing was submitted
    out = tmp_path / f"res ;touch {marker.name};$(touch {marker})`touch {marker}`'\"#x"
    assert main(bench(net, "--backend", "pytorch", "--batch", "1", "--out", str(out))) == 0, capsys.readouterr().err
    assert [r.status for r in read_results([out]).records] == ["ok"]
    assert list((out / "slurm").glob("*_0_log.out")) and list((out / "slurm").glob("*_0_log.err"))
    assert not marker.exists() and not (Path.cwd() / marker.name).exists()


def test_options_and_planning_without_a_cluster(tmp_path: Path) -> None:
    assert parse_time("90", "t") == 90 and parse_time("1:30", "t") == 2 and parse_time("2:00:00", "t") == 120
    assert parse_time("1-0", "t") == 1440 and parse_time("1-2:30", "t") == 1590
    for bad in ("", "0", "1h", "-5", "1:2:3:4"):
        with pytest.raises(HarnessError, match=r"Slurm time limit|must be positive"):
            parse_time(bad, "--slurm-time")
    with pytest.raises(HarnessError, match="unknown Slurm option"):
        SlurmOptions.parse({"nodes": 2}, "sweep.yaml: slurm.")
    with pytest.raises(HarnessError, match="gpus_per_task must be an integer"):
        SlurmOptions.parse({"gpus_per_task": True}, "x")
    with pytest.raises(HarnessError, match="exclusive must be true or false"):
        SlurmOptions.parse({"exclusive": "yes"}, "x")

    gpu = SweepSpec(networks=["a", "b"], backends=[], batches=[4, 1], devices=["cuda:0"])
    params = SlurmOptions.parse({"partition": "gpu", "exclusive": True, "time": "30"}, "x").sbatch_parameters(gpu, 2)
    assert params == {"job_name": "harness", "time": 30, "array_parallelism": 2, "partition": "gpu",
                      "gres": "gpu:1", "exclusive": True}
    cpu = SweepSpec(networks=["a"], backends=["pytorch"], batches=[1], devices=[])
    assert "gres" not in SlurmOptions().sbatch_parameters(cpu, 1)
    assert SlurmOptions.parse({"gpus_per_task": 2}, "x").sbatch_parameters(cpu, 1)["gres"] == "gpu:2"

    plans = plan_tasks(SweepRequest(gpu, tmp_path))
    assert [(p.network, p.backend, p.device, p.batches) for p in plans] == [
        ("a", None, "cuda:0", (1, 4)), ("b", None, "cuda:0", (1, 4))]  # backends left to the node
    assert plans[0].unit == "a|*|cuda:0|default|1,4|s0"


def test_resume_skips_units_whose_plan_is_final(tmp_path: Path) -> None:
    from harness.results.records import Config, Record
    from harness.results.store import ResultsStore

    (tmp_path / "slurm").mkdir()
    done = Config("a", "pytorch", 1, "cpu", "eager-fp32", hardware="CPU X")
    open_ = Config("b", "pytorch", 1, "cpu", "eager-fp32", hardware="CPU X")
    for name, config in (("1_0", done), ("1_1", open_)):
        state = {"unit": f"{config.network}|u", "started_at": "2026-01-01T00:00:00", "planned": [config.plan_key()]}
        (tmp_path / "slurm" / f"{name}_harness.json").write_text(json.dumps(state))
    store = ResultsStore(tmp_path, "slurm-1_0")
    store.append(Record(config=done, status="ok", finished_at="2026-01-01T00:01:00"))
    store.append(Record(config=open_, status="failed", finished_at="2026-01-01T00:01:00"))
    assert finished_units(tmp_path, read_results([tmp_path])) == {"a|u"}


def test_the_submitter_follows_only_its_jobs_shards_line_by_line(tmp_path: Path) -> None:
    from harness.results.records import Config, Record
    from harness.results.store import ResultsStore

    def record(network: str) -> Record:
        return Record(config=Config(network, "pytorch", 1), status="ok", finished_at="2026-01-01T00:00:00")

    ResultsStore(tmp_path, "slurm-1_0").append(record("a"))
    ResultsStore(tmp_path, "slurm-12_0").append(record("other job"))
    ResultsStore(tmp_path, "slurm-1-submitter").append(record("b"))
    follower = ShardFollower(tmp_path, "1")
    assert sorted(r.config.network for r in follower.new_records()) == ["a", "b"]
    shard = ResultsStore(tmp_path, "slurm-1_0")
    shard.append(record("c"))
    with shard.path.open("ab") as fh:
        fh.write(b'{"half a line')  # a writer mid-line: not read until its line is complete
    assert [r.config.network for r in follower.new_records()] == ["c"]
    assert list(follower.new_records()) == []


def test_the_schedulers_words() -> None:
    """scontrol's and slurmstepd's lines as the test cluster printed them; sacct's (the test cluster has no
    accounting) in the form ``sacct --parsable2`` documents."""
    assert parse_sacct("12_0|COMPLETED\n12_1|CANCELLED by 0\n12_[2-4%2]|PENDING\n13_0|RUNNING\n", "12") == {
        0: "COMPLETED", 1: "CANCELLED", 2: "PENDING", 3: "PENDING", 4: "PENDING"}
    scontrol = ("JobId=6 ArrayJobId=6 ArrayTaskId=2-5%2 JobName=wrap JobState=PENDING Reason=JobArrayTaskLimit\n"
                "JobId=8 ArrayJobId=6 ArrayTaskId=1 JobName=wrap JobState=RUNNING Reason=None\n"
                "JobId=7 ArrayJobId=6 ArrayTaskId=0 JobName=wrap JobState=CANCELLED Reason=None\n")
    assert parse_scontrol(scontrol, "6") == {0: "CANCELLED", 1: "RUNNING", 2: "PENDING", 3: "PENDING",
                                             4: "PENDING", 5: "PENDING"}
    plain = "JobId=9 JobName=harness UserId=root(0) JobState=RUNNING Reason=None\n"
    assert parse_scontrol(plain, "9") == {0: "RUNNING"} and parse_sacct("9|TIMEOUT\n", "9") == {0: "TIMEOUT"}
    assert ended("CANCELLED") and ended("TIMEOUT") and ended("UNKNOWN") and not ended("COMPLETING")
    line = "slurmstepd-vm: error: *** STEP 3.0 ON vm CANCELLED AT 2026-11-29T18:18:35 DUE TO TIME LIMIT ***"
    assert STEPD_LINE.search(line).groups() == ("2026-11-29T18:18:35", "TIME LIMIT")


def test_stepd_reason_reads_the_task_log(tmp_path: Path) -> None:
    log = tmp_path / "1_0_0_log.err"
    log.write_text("srun: forcing job termination\n"
                   "slurmstepd-vm: error: *** JOB 2 ON vm CANCELLED AT 2026-11-29T18:17:13 ***\n")
    assert stepd_reason(log) == "cancelled at 2026-11-29T18:17:13"
    log.write_text("slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-11-29T18:18:35 DUE TO PREEMPTION ***\n")
    assert stepd_reason(log) == "cancelled at 2026-11-29T18:18:35 due to preemption"


def test_slurm_options_belong_to_the_slurm_executor(tmp_path: Path, capsys) -> None:
    (net,) = tiny_nets(tmp_path, 1)
    base = ["bench", net, "--backend", "pytorch", "--out", str(tmp_path / "res")]
    assert main([*base, "--slurm-partition", "gpu"]) == 2
    assert "partition apply to --executor slurm, not local" in capsys.readouterr().err
    assert main([*base, "--executor", "slurm", "--slurm-time", "soon"]) == 2
    assert "'soon' is not a Slurm time limit" in capsys.readouterr().err
    assert main([*base, "--contention-retries", "-1"]) == 2
    assert "--contention-retries must be >= 0" in capsys.readouterr().err
