"""The results store and sweeps that lose nothing: atomic appends, damaged lines, resume after a kill,
no duplicates, --force. Workload: a real numpy matmul session (no backend needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import RunTarget, Session
from harness.errors import BackendFailed, HarnessError, UnsupportedLayer
from harness.ir.build import load_graph
from harness.ir.graph import Graph
from harness.measure.settings import apply_overrides
from harness.measure.sweep import SweepSpec, run_config, run_sweep
from harness.measure.sweep_file import load_sweep_yaml
from harness.measure.timer import TimingProtocol
from harness.measure.window import WindowSettings
from harness.results.records import Config, Record
from harness.results.store import RESULTS_FILE, ResultsStore

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


def configs(n: int = 3) -> list[Config]:
    return SweepSpec(networks=[f"net{i}" for i in range(n)], backends=["numpy"], batches=[1]).configs()


def test_record_round_trip_and_flat_row(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    record = run_config(configs(1)[0], QUICK, tiny, matmul_loader)
    assert record.status == "ok", record.message
    assert record.latency.iterations >= 3 and len(record.latencies_s) == record.latency.iterations
    assert record.latency.warmup_iters == 1  # the window's separate warmup phase is recorded
    assert record.energy is None  # CPU without RAPL: unavailable, not zero
    assert record.memory.host_rss_peak_bytes > 0
    assert record.macs_per_forward == 6 * 6 * 4 * 27  # analyzer, paper convention
    assert record.metadata["backend_framework"] == "numpy" and record.metadata["cpu_count"] >= 1
    store.put(record)
    again = store.records()
    assert again == [record]
    row = again[0].flat()
    assert row["latency.median_s"] == record.latency.median_s and row["status"] == "ok"
    assert "timeline" not in row and "latencies_s" not in row


def test_failures_become_records_and_the_sweep_goes_on(tmp_path: Path) -> None:
    def loader(backend: str, target: RunTarget) -> Session:
        if target.network == "net0":
            raise UnsupportedLayer("c", "Convolution", "numpy")
        if target.network == "net1":
            raise BackendFailed("the worker crashed")
        if target.network == "net2":
            raise ZeroDivisionError("a bug in a backend")
        return MatmulSession(target.batch)

    store = ResultsStore(tmp_path)
    done = run_sweep(configs(4), store, lambda d: QUICK, resolve=tiny, load=loader)
    assert [r.status for r in done] == ["unsupported", "failed", "failed", "ok"]
    assert done[0].message == "unsupported: c Convolution"
    assert "ZeroDivisionError" in done[2].message and "traceback" in done[2].metadata
    assert len(store.records()) == 4


def test_resume_skips_finished_and_retries_failed_without_duplicates(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    calls: list[str] = []
    attempts: list[str] = []

    def flaky(backend: str, target: RunTarget) -> Session:
        calls.append(target.network)
        attempts.append(target.network)
        if target.network == "net1" and attempts.count("net1") == 1:
            raise BackendFailed("transient")
        return MatmulSession(target.batch)

    run_sweep(configs(3), store, lambda d: QUICK, resolve=tiny, load=flaky)
    assert store.by_key()[configs(3)[1].key()].status == "failed"
    calls.clear()
    run_sweep(configs(3), store, lambda d: QUICK, resolve=tiny, load=flaky)
    assert calls == ["net1"]  # only the failed one is redone
    keys = [r.key for r in store.records()]
    assert len(keys) == len(set(keys)) == 3
    assert all(r.status == "ok" for r in store.records())
    calls.clear()
    run_sweep(configs(3), store, lambda d: QUICK, force=True, resolve=tiny, load=flaky)
    assert calls == ["net0", "net1", "net2"]
    keys = [json.loads(line)["key"] for line in store.path.read_text().splitlines()]
    assert sorted(keys) == sorted({c.key() for c in configs(3)})


def test_truncated_last_line_is_skipped_and_isolated(tmp_path: Path, capsys) -> None:
    store = ResultsStore(tmp_path)
    first, second = (run_config(c, QUICK, tiny, matmul_loader) for c in configs(2))
    store.put(first)
    # what a writer killed in the middle of its write leaves: a prefix of a line, no newline
    line = json.dumps(second.to_dict())
    with store.path.open("a") as fh:
        fh.write(line[: len(line) // 2])
    warning = f"warning: {store.path}:2: skipping a damaged record\n"
    capsys.readouterr()
    assert store.records() == [first]
    assert capsys.readouterr().err == warning
    store.put(second)
    assert [r.key for r in store.records()] == [first.key, second.key]
    assert capsys.readouterr().err == warning
    store.put(second)  # replacing rewrites the file and drops the damaged fragment
    assert [r.key for r in store.records()] == [first.key, second.key]
    assert capsys.readouterr().err == ""


def test_non_finite_figures_are_stored_as_null(tmp_path: Path) -> None:
    record = Record(config=configs(1)[0], status="failed", message="x", metadata={"ratio": float("nan")})
    ResultsStore(tmp_path).put(record)
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["metadata"]["ratio"] is None


def test_status_is_checked() -> None:
    with pytest.raises(ValueError):
        Record(config=configs(1)[0], status="great")  # type: ignore[arg-type]


KILLED_SWEEP = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    import test_results_store as t
    from harness.measure.sweep import run_sweep
    from harness.results.store import ResultsStore

    def loader(backend, target):
        if target.network == "net2":
            time.sleep(60)  # killed here, with net0 and net1 stored
        return t.MatmulSession(target.batch)

    run_sweep(t.configs(4), ResultsStore(sys.argv[1]), lambda d: t.QUICK, resolve=t.tiny, load=loader)
""")


def test_killed_sweep_loses_only_the_running_configuration(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(tmp_path), str(Path(__file__).parent)])
    store = ResultsStore(tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not store.path.exists() or len(store.records()) < 2):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [r.config.network for r in store.records()] == ["net0", "net1"]
    ran: list[str] = []

    def loader(backend: str, target: RunTarget) -> Session:
        ran.append(target.network)
        return MatmulSession(target.batch)

    run_sweep(configs(4), store, lambda d: QUICK, resolve=tiny, load=loader)
    assert ran == ["net2", "net3"]
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
                                 "settings, got a list"),
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
    run_sweep(configs(2), store, lambda d: QUICK, resolve=tiny, load=matmul_loader)
    frame = store.dataframe()
    assert list(frame["network"]) == ["net0", "net1"]
    assert (frame["latency.median_s"] > 0).all() and frame["energy.energy_j"].isna().all()
