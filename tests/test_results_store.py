"""The results store and sweeps that lose nothing: one-line appends, damaged lines counted and kept,
the one merge rule, resume after a kill, OOM inference, --force, a fallback for unwritable results.
Workload: a real numpy matmul session measured in this process (the worker's own tests run real
workers: tests/test_worker.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import RunTarget, Session
from harness.errors import BackendFailed, HarnessError, UnsupportedLayer
from harness.ir.build import load_graph
from harness.ir.graph import Graph
from harness.measure.settings import apply_overrides
from harness.measure.sweep import SweepSpec, batch_series, run_series
from harness.measure.sweep_file import load_sweep_yaml
from harness.measure.timer import TimingProtocol
from harness.measure.window import WindowSettings
from harness.results.median import median_interval
from harness.results.records import Config, Record
from harness.results.store import RESULTS_FILE, ResultsStore, StoreWriteError, merge, read_results
from harness.worker import run_config

TINY = ('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
        'layer { name: "c" type: "Convolution" bottom: "data" top: "c"'
        ' convolution_param { num_output: 4 kernel_size: 3 } }\n')
QUICK = WindowSettings(protocol=TimingProtocol(warmup_iters=1, warmup_s=0, min_iters=3, min_s=0), min_window_s=0.0,
                       idle_s=0.0)


def tiny(name: str) -> Graph:
    return load_graph(f"{name}.prototxt", TINY)


class MatmulSession(Session):
    def __init__(self, batch: int) -> None:
        rng = np.random.default_rng(batch)
        self.x = rng.standard_normal((batch * 8, 64)).astype(np.float32)
        self.w = rng.standard_normal((64, 64)).astype(np.float32)
        self.y = self.x
        self.info = {"framework": "numpy", "numpy": np.__version__}

    def forward(self) -> None:
        self.y = self.x @ self.w

    def output(self) -> np.ndarray:
        return self.y


def matmul_loader(backend: str, target: RunTarget) -> Session:
    return MatmulSession(target.batch)


def configs(n: int = 3, batches: tuple[int, ...] = (1,)) -> list[Config]:
    return SweepSpec(networks=[f"net{i}" for i in range(n)], backends=["numpy"], batches=list(batches)).configs()


def run_in_process(configs_: list[Config], store: ResultsStore, load=matmul_loader, force: bool = False,
                   launched: list[str] | None = None) -> list[Record]:
    """The sweep's series logic with each configuration measured in THIS process (run_config with a test
    loader) instead of a worker: what resume, merge and OOM inference do does not depend on where."""

    def launch(config: Config) -> Record:
        if launched is not None:
            launched.append(config.key())
        record = run_config(config, QUICK, resolve=tiny, load=load)
        store.append(record)
        return record

    known = store.read()
    return [r for series in batch_series(configs_) for r in run_series(series, store, launch, known, force)]


def test_record_round_trip_and_flat_row(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    record = run_config(configs(1)[0], QUICK, resolve=tiny, load=matmul_loader)
    assert record.status == "ok", record.message
    assert record.latency.iterations >= 3 and len(record.latencies_s) == record.latency.iterations
    assert record.latency.warmup_iters == 1  # the window's separate warmup phase is recorded
    assert record.energy is None  # CPU without RAPL: unavailable, not zero
    assert record.memory.host_rss_peak_bytes > 0
    assert record.macs_per_forward == 6 * 6 * 4 * 27  # analyzer, paper convention
    assert record.metadata["backend_framework"] == "numpy" and record.metadata["cpu_count"] >= 1
    assert record.metadata["input_distribution"].startswith("uniform[-1, 1) float32")
    store.append(record)
    again = store.records()
    assert again == [record]
    row = again[0].flat()
    assert row["latency.median_s"] == record.latency.median_s and row["status"] == "ok"
    assert row["latency.ci_coverage"] == record.latency.ci_coverage
    assert "timeline" not in row and "latencies_s" not in row


def test_failures_become_records_and_the_sweep_goes_on(tmp_path: Path) -> None:
    def loader(backend: str, target: RunTarget) -> Session:
        if target.network == "net0":
            raise UnsupportedLayer("c", "Convolution", "numpy")
        if target.network == "net1":
            raise BackendFailed("the worker crashed")
        if target.network == "net2":
            raise ZeroDivisionError("a bug in a backend")
        if target.network == "net3":
            raise MemoryError()
        return MatmulSession(target.batch)

    store = ResultsStore(tmp_path)
    done = run_in_process(configs(5), store, loader)
    assert [r.status for r in done] == ["unsupported", "failed", "failed", "oom", "ok"]
    assert done[0].message == "unsupported: c Convolution"
    assert "ZeroDivisionError" in done[2].message and "traceback" in done[2].metadata
    assert done[3].message == "out of host memory: MemoryError"
    assert len(store.records()) == 5


def test_resume_skips_finished_and_retries_failed_without_hiding_results(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    attempts: list[str] = []

    def flaky(backend: str, target: RunTarget) -> Session:
        attempts.append(target.network)
        if target.network == "net1" and attempts.count("net1") == 1:
            raise BackendFailed("transient")
        return MatmulSession(target.batch)

    run_in_process(configs(3), store, flaky)
    assert store.by_key()[configs(3)[1].key()].status == "failed"
    launched: list[str] = []
    run_in_process(configs(3), store, flaky, launched=launched)
    assert launched == [configs(3)[1].key()]  # only the failed one is redone
    merged = store.read()
    assert [r.status for r in merged.records] == ["ok", "ok", "ok"]
    assert len(merged.superseded) == 1  # the failure stays on disk, superseded by the newer ok
    launched.clear()
    first_ok = {r.key: r.finished_at for r in merged.records}

    def broken(backend: str, target: RunTarget) -> Session:
        raise BackendFailed("broken now")

    run_in_process(configs(3), store, broken, force=True, launched=launched)
    assert len(launched) == 3
    # --force measured again, but a failure never hides a result: the earlier ok records stand
    assert {r.key: r.finished_at for r in store.records()} == first_ok
    run_in_process(configs(3), store, force=True)
    assert all(r.finished_at > first_ok[r.key] for r in store.records())  # a newer ok replaces an older one
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 3 + 1 + 3 + 3  # append-only: every record ever written is still there


def test_merge_rule_newest_final_wins() -> None:
    config = configs(1)[0]

    def rec(status: str, at: str) -> Record:
        return Record(config=config, status=status, finished_at=at)  # type: ignore[arg-type]

    old_ok, new_oom, newer_failed = rec("ok", "2026-01-01"), rec("oom", "2026-02-01"), rec("failed", "2026-03-01")
    winners, superseded = merge([old_ok, newer_failed, new_oom])
    assert winners == [new_oom] and superseded == [old_ok, newer_failed]
    assert merge([newer_failed, rec("unavailable", "2026-04-01")])[0][0].status == "unavailable"
    assert merge([rec("ok", "2026-05-01"), old_ok])[0] == [rec("ok", "2026-05-01")]


def test_several_writers_and_directories_merge_by_the_same_rule(tmp_path: Path, capsys) -> None:
    a, b = ResultsStore(tmp_path / "a", writer="node1-0"), ResultsStore(tmp_path / "a", writer="node2-0")
    other = ResultsStore(tmp_path / "b")
    first, second = (run_config(c, QUICK, resolve=tiny, load=matmul_loader) for c in configs(2))
    a.append(first)
    b.append(second)
    other.append(replace(first, finished_at="9999-01-01", status="failed", message="later failure"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["results-node1-0.jsonl", "results-node2-0.jsonl"]
    assert [r.key for r in ResultsStore(tmp_path / "a").records()] == [first.key, second.key]
    merged = read_results([tmp_path / "a", tmp_path / "b"])
    assert [r.status for r in merged.records] == ["ok", "ok"] and len(merged.superseded) == 1
    assert any("superseded" in line for line in merged.warnings())


def test_damaged_lines_are_counted_kept_and_isolated(tmp_path: Path, capsys) -> None:
    store = ResultsStore(tmp_path)
    first, second = (run_config(c, QUICK, resolve=tiny, load=matmul_loader) for c in configs(2))
    store.append(first)
    with store.path.open("ab") as fh:
        fh.write(b"\xff\xfe not utf-8\n[1, 2]\n\"a string\"\n")
    # what a writer killed in the middle of its write leaves: a prefix of a line, no newline
    line = json.dumps(second.to_dict())
    with store.path.open("a") as fh:
        fh.write(line[: len(line) // 2])
    capsys.readouterr()
    assert store.records() == [first]
    err = capsys.readouterr().err
    assert err == (f"warning: {store.path}: skipped 4 unreadable line(s), kept on disk (line 2: not UTF-8: "
                   "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte; line 3: a record is a "
                   "JSON object, not list; line 4: a record is a JSON object, not str; and 1 more)\n")
    size = store.path.stat().st_size
    store.append(second)
    assert store.path.stat().st_size > size  # nothing rewritten, nothing dropped
    assert [r.key for r in store.records()] == [first.key, second.key]
    assert [u.line for u in store.read().unreadable] == [2, 3, 4, 5]


def test_non_finite_figures_are_stored_as_null(tmp_path: Path) -> None:
    record = Record(config=configs(1)[0], status="failed", message="x", metadata={"ratio": float("nan")})
    ResultsStore(tmp_path).append(record)
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["metadata"]["ratio"] is None


def test_status_is_checked() -> None:
    with pytest.raises(ValueError):
        Record(config=configs(1)[0], status="great")  # type: ignore[arg-type]


def test_unwritable_results_are_checked_first_and_a_record_is_never_lost(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HarnessError, match="results directory is a file"):
        ResultsStore(blocker).check_writable()
    with pytest.raises(HarnessError, match="cannot write results here"):
        ResultsStore(blocker / "sub").check_writable()
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(tmp_path / "fallback"))
    (tmp_path / "fallback").mkdir()
    record = run_config(configs(1)[0], QUICK, resolve=tiny, load=matmul_loader)
    with pytest.raises(StoreWriteError) as err:
        ResultsStore(blocker / "sub").append(record)
    (saved,) = (tmp_path / "fallback").iterdir()
    assert str(saved) in str(err.value) and "\n" not in str(err.value)
    assert Record.from_dict(json.loads(saved.read_text())) == record


def test_a_full_disk_leaves_no_half_record(tmp_path: Path, monkeypatch) -> None:
    """The disk fills up in the middle of a record's write (os.write writes part, then ENOSPC): the
    partial line is cut off again and the record goes to the fallback file."""
    import errno

    from harness.results import store as store_module

    store = ResultsStore(tmp_path / "res")
    first, second = (run_config(c, QUICK, resolve=tiny, load=matmul_loader) for c in configs(2))
    store.append(first)
    before = store.path.read_bytes()
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}") == str(store.path) and len(data) > 100:  # the results disk is full
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_module.os, "write", full_disk)
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(tmp_path))
    with pytest.raises(StoreWriteError, match="No space left on device"):
        store.append(second)
    monkeypatch.setattr(store_module.os, "write", real_write)
    assert store.path.read_bytes() == before
    assert not list((tmp_path / "res").glob("*.tmp"))


def test_schema_1_records_are_upgraded() -> None:
    lines = (Path(__file__).parent / "data" / "results-cpu-2026-11-24" / "results.jsonl").read_text().splitlines()
    old = json.loads(lines[0])
    assert old["schema"] == 1 and "ci95_low_s" in old["latency"]
    record = Record.from_dict(old)
    low, high, coverage = median_interval(old["latencies_s"])
    assert (record.latency.ci_low_s, record.latency.ci_high_s, record.latency.ci_coverage) == (low, high, coverage)
    assert record.config.hardware is None and record.key == old["key"]


def test_oom_is_final_and_larger_batches_are_inferred_not_run(tmp_path: Path) -> None:
    def loader(backend: str, target: RunTarget) -> Session:
        if target.batch >= 4:
            raise MemoryError()
        return MatmulSession(target.batch)

    store = ResultsStore(tmp_path)
    launched: list[str] = []
    done = run_in_process(configs(2, batches=(8, 1, 4, 16)), store, loader, launched=launched)
    assert [(r.config.network, r.config.batch, r.status) for r in done] == [
        ("net0", 1, "ok"), ("net0", 4, "oom"), ("net0", 8, "oom"), ("net0", 16, "oom"),
        ("net1", 1, "ok"), ("net1", 4, "oom"), ("net1", 8, "oom"), ("net1", 16, "oom")]
    assert [k.split("|")[-2] for k in launched] == ["b1", "b4", "b1", "b4"]  # 8 and 16 never ran
    assert done[2].inferred_from == done[1].key and done[1].inferred_from is None
    assert "batch 4 of this series ran out of memory" in done[3].message
    launched.clear()
    assert run_in_process(configs(2, batches=(1, 4, 8, 16)), store, loader, launched=launched) == []
    assert launched == []  # oom is final on resume, measured or inferred


KILLED_SWEEP = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    import test_results_store as t
    from harness.results.store import ResultsStore

    def loader(backend, target):
        if target.network == "net2":
            time.sleep(60)  # killed here, with net0 and net1 stored
        return t.MatmulSession(target.batch)

    t.run_in_process(t.configs(4), ResultsStore(sys.argv[1]), loader)
""")


def test_killed_sweep_loses_only_the_running_configuration(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(tmp_path), str(Path(__file__).parent)])
    store = ResultsStore(tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not store.exists() or len(store.read().records) < 2):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [r.config.network for r in store.records()] == ["net0", "net1"]
    launched: list[str] = []
    run_in_process(configs(4), store, launched=launched)
    assert [k.split("|")[0] for k in launched] == ["net2", "net3"]
    assert [r.config.network for r in store.records()] == ["net0", "net1", "net2", "net3"]


def test_settings_overrides() -> None:
    s = apply_overrides(QUICK, {"min_iters": 9, "idle_s": 1.5})
    assert (s.protocol.min_iters, s.idle_s) == (9, 1.5)
    with pytest.raises(HarnessError, match="unknown measurement setting"):
        apply_overrides(QUICK, {"min_itres": 9})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"min_s": "abc"}, "--set min_s: expected a number, got 'abc'"),
    ({"min_iters": 2.5}, "--set min_iters: expected an integer, got 2.5"),
    ({"warmup_iters": True}, "--set warmup_iters: expected an integer, got True"),
    ({"max_s": float("inf")}, "--set max_s: expected a number or null, got inf"),
    ({"idle_s": -1}, "--set idle_s: must be >= 0, got -1"),
    ({"poll_hz": 0}, "--set poll_hz: must be > 0"),
])
def test_settings_of_the_wrong_type_are_one_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(HarnessError) as err:
        apply_overrides(QUICK, overrides)
    assert str(err.value) == message or str(err.value).startswith(message)


def test_settings_values_are_converted_to_the_field_type() -> None:
    s = apply_overrides(QUICK, {"min_s": "1e3", "min_iters": 4.0, "max_s": None, "cooldown_to_c": 60})
    assert (s.protocol.min_s, s.protocol.min_iters, s.protocol.max_s, s.cooldown_to_c) == (1000.0, 4, None, 60.0)
    assert isinstance(s.protocol.min_iters, int) and isinstance(s.cooldown_to_c, float)


def test_bench_set_of_a_wrong_type_is_one_line(tmp_path: Path, capsys) -> None:
    from harness.cli.main import main

    assert main(["bench", "alexnet", "--backend", "pytorch", "--device", "cpu", "--set", "min_s=abc",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--set min_s: expected a number, got 'abc'" in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [
    ("networks: [alexnet]\nsettings: {min_s: abc}\n", "sweep.yaml: settings.min_s: expected a number, got 'abc'"),
    ("networks: [alexnet\nbatches: [1]\n", "sweep.yaml:2:8: "),
    ("- alexnet\n- googlenet\n", "sweep.yaml: must be a mapping of networks/backends/batches/devices/modes/seed/"
                                 "settings/slurm/layer_profiles, got a list"),
])
def test_bad_sweep_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as err:
        load_sweep_yaml(path)
    assert str(err.value).startswith(f"{tmp_path}{os.sep}{message}") and "\n" not in str(err.value)


def test_dataframe(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason="pandas (the report extra) is not installed")
    store = ResultsStore(tmp_path)
    run_in_process(configs(2), store)
    frame = store.dataframe()
    assert list(frame["network"]) == ["net0", "net1"]
    assert (frame["latency.median_s"] > 0).all() and frame["energy.energy_j"].isna().all()
