"""The measurement validity guard (harness.measure.contention), for real on this machine: a window measured
beside two busy processes is flagged; a quiet one is not, and our own CPU work is never counted as a
neighbour's; another process on the GPU (synthetic NVML, the one GPU stand-in the tests have) is flagged;
``--contention retry`` measures again in a fresh worker and keeps the flag when the disturbance stays.

The machine the tests run on may be shared (CI, other builds): the flagged case is asserted strictly (two
busy loops are a disturbance whatever else runs), the quiet case against thresholds set above what the
machine's other work used just before the window.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_measure_nvml import QUICK_GPU, UUID_A, SleepSession, synthetic_nvml  # noqa: F401  (a fixture)
from test_worker import QUICK, needs, tiny_nets

from harness.cli.main import main
from harness.executors import SweepRequest, get_executor
from harness.measure import contention
from harness.measure.contention import ContentionGuard, ContentionPolicy
from harness.measure.sweep import SweepSpec
from harness.measure.window import GpuTarget, MeasurementWindow
from harness.results.store import ResultsStore

#: a timed phase long enough for several of the guard's samples and many clock ticks
WINDOW = {**QUICK, "min_s": 1.0, "min_window_s": 1.0}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


@contextlib.contextmanager
def busy_loops(count: int = 2) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)  # running before the window begins
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def others_now(seconds: float = 1.0) -> tuple[float, float]:
    """What the rest of the machine uses while this test sleeps: (CPU cores busy, runnable tasks)."""
    cpus = sorted(os.sched_getaffinity(0))
    start = contention.cpu_ticks(cpus)
    runnable = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        runnable.append(contention.procs_running() or 0)
        time.sleep(0.1)
    end = contention.cpu_ticks(cpus)
    assert start is not None and end is not None
    busy = (end.busy - start.busy + end.steal - start.steal) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
    return busy, sum(runnable) / len(runnable)


def measure_one(tmp_path: Path, settings: dict, policy: ContentionPolicy | None = None):
    (net,) = tiny_nets(tmp_path, 1)
    spec = SweepSpec(networks=[net], backends=["pytorch"], batches=[1], settings=settings)
    request = SweepRequest(spec, tmp_path / "res", contention=policy)
    (record,) = get_executor("local")().run(request)
    assert record.status == "ok", record.message
    return record


def test_a_window_beside_two_busy_processes_is_flagged(tmp_path: Path, capsys) -> None:
    needs("torch")
    (net,) = tiny_nets(tmp_path, 1)
    settings = [arg for key, value in WINDOW.items() for arg in ("--set", f"{key}={value}")]
    with busy_loops(2):
        assert main(["bench", net, "--backend", "pytorch", "--batch", "1", "--out", str(tmp_path / "res"),
                     *settings]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps lines at its width
    assert "1 measured while other processes used the GPU or CPU (flagged contended" in err
    (record,) = ResultsStore(tmp_path / "res").records()
    assert record.status == "ok" and record.contended is not None, record.metadata["contention"]
    assert any("other processes used" in reason for reason in record.contended["reasons"]), record.contended
    seen = record.contended
    assert seen["cpu_others_cores"] > 0.25 * seen["cpus"] and seen["runnable_samples"] >= 3
    assert record.flat()["contended"].startswith("other processes used")
    assert record.latency is not None  # a flag, not a status: the figures stay


def test_a_quiet_window_is_not_flagged_and_our_own_work_is_ours(tmp_path: Path) -> None:
    """Thresholds one core and two tasks above what the rest of the machine used just before: only our
    own work counted as a neighbour's (or a burst of more than a core) could flag the window."""
    needs("torch")
    cpus = len(os.sched_getaffinity(0))
    busy, runnable = others_now()
    settings = {**WINDOW, "contention_cpu_share": (busy + 1.0) / cpus,
                "contention_runnable_share": (runnable + 2.0) / (os.cpu_count() or cpus)}
    record = measure_one(tmp_path, settings)
    seen = record.metadata["contention"]
    assert record.contended is None, seen
    # the benchmark's CPU time is attributed to us, not to the others (who used about `busy` cores before)
    assert seen["cpu_ours_cores"] > 0.1 and seen["cpu_ours_cores"] > seen["cpu_others_cores"]
    assert seen["thresholds"]["cpu_share"] == pytest.approx(settings["contention_cpu_share"])


def test_retry_measures_again_in_a_fresh_worker_then_keeps_the_flag(tmp_path: Path) -> None:
    needs("torch")
    with busy_loops(2):
        record = measure_one(tmp_path, WINDOW, ContentionPolicy("retry", retries=1, wait_s=0.2))
    assert record.contended is not None
    (earlier,) = record.metadata["contention_attempts"]
    assert earlier["reasons"] and earlier["cpu_others_cores"] > 0
    merged = ResultsStore(tmp_path / "res").read()
    assert [r.key for r in merged.records] == [record.key] and not merged.superseded  # the retry replaced it


def _gpu_window():
    window = MeasurementWindow("cuda:0", QUICK_GPU, GpuTarget(UUID_A))
    window.begin()
    return window.measure(SleepSession(), batch=1, macs_per_forward=10**9)  # type: ignore[arg-type]


def test_another_process_on_the_gpu_is_flagged(synthetic_nvml) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}], processes=[[424242, 2**30]])
    report = _gpu_window().contention
    assert report.observed["gpu_other_pids"] == [424242]
    assert "other process(es) on the GPU: pid 424242" in report.reasons


def test_a_gpu_to_ourselves_has_no_gpu_reason(synthetic_nvml) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}])
    report = _gpu_window().contention
    assert report.observed["gpu_other_pids"] == []
    assert not any("GPU" in reason for reason in report.reasons)


def test_gpu_processes_are_told_apart_from_ours() -> None:
    """NVML lists host PIDs. Our own PID listed: everything else is another's. None of ours ever listed
    (a container): one PID that appeared after the window began is our own context."""
    ours = os.getpid()
    guard = ContentionGuard(1.0, 1.0, gpu=True)
    guard.begin([[111, 5]])
    assert guard.end([[111, 5], [ours, 9], [999, 1]], [[[111, 5]], [[111, 5], [ours, 9]]]).observed[
        "gpu_other_pids"] == [111, 999]
    guard = ContentionGuard(1.0, 1.0, gpu=True)
    guard.begin([[111, 5]])
    assert guard.end([[111, 5], [999, 9]], [[[111, 5], [999, 9]]]).observed["gpu_other_pids"] == [111]
    guard = ContentionGuard(1.0, 1.0, gpu=True)
    guard.begin([])
    assert guard.end([[999, 9], [555, 1]], None).observed["gpu_other_pids"] == [555]


def test_policy_and_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="contention mode"):
        ContentionPolicy("ignore")
    policy = ContentionPolicy("retry", retries=2)
    assert policy.wants_retry({"reasons": ["x"]}) and not policy.wants_retry(None)
    assert not ContentionPolicy("warn", retries=2).wants_retry({"reasons": ["x"]})
    assert not ContentionPolicy("retry", retries=1, earlier=[{}]).wants_retry({"reasons": ["x"]})
