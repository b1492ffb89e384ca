"""`harness bench` and `harness results` end to end with real CPU backends in real workers: resume,
--force, modes, exports, and bad input. Tests needing a backend skip when none is installed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.measure.sweep import available_backends
from harness.results.store import ResultsStore

QUICK_FLAGS = ["--set", "warmup_iters=1", "--set", "warmup_s=0", "--set", "min_iters=2", "--set", "min_s=0",
               "--set", "min_window_s=0", "--set", "idle_s=0"]
NET = "squeezenet_v1.1"  # the cheapest zoo network on a CPU


def cpu_backend() -> str:
    try:
        names = available_backends("cpu")
    except Exception as exc:  # the zoo/backends are written by other issues
        pytest.skip(f"backends cannot be listed yet: {exc}")
    if not names:
        pytest.skip("no CPU backend is installed (pip install 'harness[pytorch]')")
    return "pytorch" if "pytorch" in names else names[0]


def zoo_ready() -> None:
    try:
        from harness import zoo

        zoo.resolve(NET)
    except Exception as exc:
        pytest.skip(f"the zoo is not available: {exc}")


def test_bench_resume_force_and_export(tmp_path: Path, capsys) -> None:
    zoo_ready()
    backend = cpu_backend()
    out = tmp_path / "res"
    args = ["bench", NET, "--backend", backend, "--batch", "1,2", "--out", str(out), *QUICK_FLAGS]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Table III" in captured.out and NET in captured.out
    assert re.search(rf"sweep efficiency [01]\.\d\d: measurement windows [\d.]+ s of [\d.]+ s; median start-up "
                     rf"per configuration: {backend} [\d.]+ s", captured.err), captured.err
    records = ResultsStore(out).records()
    assert [(r.config.batch, r.status) for r in records] == [(1, "ok"), (2, "ok")], [r.message for r in records]
    first = records[0]
    assert first.latency.median_s > 0 and first.latency.throughput_fps == pytest.approx(1 / first.latency.median_s)
    assert first.memory.host_rss_peak_bytes > 0 and first.energy is None
    assert first.metadata["git_revision"] is None or len(first.metadata["git_revision"]) >= 40

    assert main(args) == 0  # resume: nothing left to do
    assert "2 skipped" in capsys.readouterr().err
    assert [r.finished_at for r in ResultsStore(out).records()] == [r.finished_at for r in records]

    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    again = ResultsStore(out).records()
    assert len(again) == 2 and again[0].finished_at != first.finished_at

    pytest.importorskip("pandas", reason="pandas (the report extra) is not installed")
    assert main(["results", str(out), "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("key,network,backend") and len(csv) == 3
    assert main(["results", str(out), "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [r["batch"] for r in rows] == [1, 2]
    pytest.importorskip("pyarrow", reason="pyarrow is needed for parquet")
    import pandas as pd

    assert main(["results", str(out), "--format", "parquet", "-o", str(tmp_path / "r.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2


def test_modes_on_the_command_line(tmp_path: Path, capsys) -> None:
    zoo_ready()
    installed = available_backends("cpu")
    if "pytorch" not in installed or "onnxruntime" not in installed:
        pytest.skip("needs pytorch and onnxruntime installed")
    out = tmp_path / "res"
    args = ["bench", NET, "--backend", "pytorch,onnxruntime", "--batch", "1", "--out", str(out), *QUICK_FLAGS]
    assert main([*args, "--mode", "channels_last,opt-basic"]) == 0
    assert sorted((r.config.backend, r.config.mode) for r in ResultsStore(out).records()) == [
        ("onnxruntime", "opt-basic"), ("pytorch", "channels_last")]
    capsys.readouterr()
    assert main([*args, "--mode", "opt-disabled"]) == 0  # pytorch offers no such mode: it sits this one out
    assert "pytorch on cpu offers none of opt-disabled" in capsys.readouterr().err
    assert main([*args, "--mode", "warp-speed"]) == 2
    err = capsys.readouterr().err
    assert "no selected backend offers mode(s) warp-speed" in err and "pytorch on cpu: eager-fp32" in err
    assert "onnxruntime on cpu: opt-all" in err and "Traceback" not in err


def test_a_message_with_brackets_is_printed_as_is(tmp_path: Path, capsys) -> None:
    """A failure message with [...] (Caffe's log lines have them) is text, not console markup."""
    zoo_ready()
    bad = tmp_path / "[bad].prototxt"
    bad.write_text('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                   'layer { name: "p[0]" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 0 } }\n')
    backend = cpu_backend()
    code = main(["bench", str(bad), "--backend", backend, "--batch", "1", "--out", str(tmp_path / "o"), *QUICK_FLAGS])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "MarkupError" not in err
    assert code in (1, 2)


def test_an_unwritable_out_is_an_error_before_anything_runs(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    started = time.monotonic()
    assert main(["bench", NET, "--backend", "pytorch", "--out", str(blocker / "sub"), *QUICK_FLAGS]) == 2
    err = capsys.readouterr().err
    assert "cannot write results here" in err and str(blocker) in err and "Traceback" not in err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", NET, "--backend", "pytorch", "--set", "min_itres=3"], "unknown measurement setting"),
    (["bench", NET, "--backend", "pytorch", "--device", "gpu0"], "unknown device 'gpu0'"),
    (["bench", "--backend", "pytorch"], "name networks"),
    (["bench", NET, "--backend", "pytorch", "--set", "novalue"], "KEY=VALUE"),
    (["bench", NET, "--backend", ""], "--backend needs a value"),
    (["bench", NET, "--backend", "pytorch", "--mode", ","], "--mode needs a value"),
    (["bench", NET, "--backend", "pytorch", "--executor", "cloud"], "unknown executor 'cloud'"),
])
def test_bad_input_gets_one_clear_message(argv: list[str], message: str, capsys, tmp_path: Path) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "results.jsonl").exists()


def test_bad_sweep_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "sweep.yaml"
    bad.write_text("networks: [alexnet]\nbatchez: [1]\n")
    assert main(["bench", "--config", str(bad), "--backend", "pytorch", "--out", str(tmp_path)]) == 2
    assert "unknown sweep key(s) batchez" in capsys.readouterr().err
    bad.write_text("networks: [alexnet\n")
    assert main(["bench", "--config", str(bad), "--out", str(tmp_path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse: usage and exit 2
        main(["bench", NET, "--batch", "0,4"])
    assert exit_.value.code == 2 and "expected a positive integer, got 0" in capsys.readouterr().err


def test_results_of_an_empty_directory(tmp_path: Path, capsys) -> None:
    assert main(["results", str(tmp_path)]) == 2
    assert "no results here" in capsys.readouterr().err


def test_sweep_yaml_is_used(tmp_path: Path) -> None:
    zoo_ready()
    backend = cpu_backend()
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(f"networks: [{NET}]\nbackends: [{backend}]\nbatches: [1]\n"
                   "settings: {warmup_iters: 1, warmup_s: 0, min_iters: 2, min_s: 0, min_window_s: 0, idle_s: 0}\n")
    assert main(["bench", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0
    (record,) = ResultsStore(tmp_path / "o").records()
    assert record.status == "ok" and record.metadata["settings"]["protocol"]["min_iters"] == 2


def test_bench_prints_the_backend_comparison_and_writes_to_the_results_dir_env(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    zoo_ready()
    installed = available_backends("cpu")
    others = [n for n in ("onnxruntime", "opencv") if n in installed]
    if "pytorch" not in installed or not others:
        pytest.skip("needs pytorch and one of onnxruntime/opencv installed")
    monkeypatch.setenv("HARNESS_RESULTS_DIR", str(tmp_path / "env-results"))
    monkeypatch.chdir(tmp_path)
    assert main(["bench", NET, "--backend", f"pytorch,{others[0]}", "--batch", "1", *QUICK_FLAGS]) == 0
    out = capsys.readouterr().out
    records = ResultsStore(tmp_path / "env-results").records()
    assert {r.config.backend for r in records} == {"pytorch", others[0]}
    assert not (tmp_path / "results").exists()
    assert "Backends compared" in out and f"{NET}  batch 1  cpu  (relative to pytorch/eager-fp32)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ") and "ok" in line}
    assert rows["pytorch"][-2:] == ["1.00", "1.00"]  # the baseline against itself
    assert float(rows[others[0]][-2]) > 0


def test_one_backend_prints_no_comparison(tmp_path: Path, capsys) -> None:
    zoo_ready()
    backend = cpu_backend()
    assert main(["bench", NET, "--backend", backend, "--batch", "1", "--out", str(tmp_path), *QUICK_FLAGS]) == 0
    assert "Backends compared" not in capsys.readouterr().out


def test_results_output_in_a_missing_folder_is_one_line(tmp_path: Path, capsys) -> None:
    from harness.results.records import Config, Record
    from harness.results.store import ResultsStore as Store

    Store(tmp_path).append(Record(config=Config(NET, "pytorch", 1), status="failed", message="x"))
    assert main(["results", str(tmp_path), "-o", str(tmp_path / "missing" / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_sweep_efficiency_and_start_up_per_configuration() -> None:
    """Windows over wall time (times the lanes), and each configuration's start-up: from the end of the one
    before it in its lane to its own end, less its window; a lane's first configuration carries the sweep's
    set-up and is left out, an inferred OOM ran nothing."""
    from harness.cli.bench import sweep_overhead
    from harness.results.records import Config, LatencyFigures, Placement, Record

    def record(backend: str, shard: str, start: float, end: float, timed: float, inferred: bool = False) -> Record:
        latency = LatencyFigures(iterations=3, total_s=timed, median_s=0.1, mean_s=0.1, p90_s=0.1, min_s=0.1,
                                 max_s=0.1, stddev_s=0.0, ci_low_s=0.1, ci_high_s=0.1, ci_coverage=0.75,
                                 warmup_iters=1, warmup_s=0.1, throughput_fps=10.0)
        stamp = "2026-12-01T10:00:{:06.3f}+00:00"
        return Record(config=Config("net", backend, 1), status="oom" if inferred else "ok",
                      started_at=stamp.format(start), finished_at=stamp.format(end),
                      latency=None if inferred else latency, metadata={"settings": {"idle_s": 0.2}},
                      placement=Placement(executor="local", host="h", shard=shard),
                      inferred_from="net|x" if inferred else None)

    # windows: 0.2 idle + 0.1 warm-up + 0.7 timed = 1.0 s each
    lane = [record("caffe", "a", 1.0, 3.0, 0.7), record("caffe", "a", 3.1, 4.5, 0.7),
            record("pytorch", "a", 4.6, 5.8, 0.7), record("pytorch", "a", 5.8, 5.8, 0.7, inferred=True),
            record("pytorch", "a", 5.9, 7.2, 0.7)]
    overhead = sweep_overhead(lane, wall_s=8.0)
    assert overhead.windows == 4 and overhead.window_s == pytest.approx(4.0) and overhead.lanes == 1
    assert overhead.efficiency == pytest.approx(0.5)
    assert overhead.startup_s == pytest.approx({"caffe": 0.5, "pytorch": 0.35})  # (0.5), (0.3, 0.4)
    assert "sweep efficiency 0.50: measurement windows 4.0 s of 8.0 s" in overhead.line()
    two = sweep_overhead([*lane[:2], record("caffe", "b", 1.0, 2.5, 0.7)], wall_s=3.0)
    assert two.lanes == 2 and two.efficiency == pytest.approx(3.0 / 6.0)


def test_no_fork_server_spawns_every_worker(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from harness.worker_start import FORK_SERVER_ENV

    zoo_ready()
    backend = cpu_backend()
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    args = ["bench", NET, "--backend", backend, "--batch", "1", "--out", str(tmp_path), *QUICK_FLAGS]
    assert main([*args, "--no-fork-server"]) == 0
    (record,) = ResultsStore(tmp_path).records()
    assert record.status == "ok" and record.metadata["worker_start"] == {"how": "spawned"}
    assert FORK_SERVER_ENV not in os.environ  # for that sweep only
    assert main([*args, "--force"]) == 0
    assert ResultsStore(tmp_path).records()[-1].metadata["worker_start"]["how"] == "forked"
    assert "sweep efficiency" in capsys.readouterr().err
    assert main(args) == 0  # a rerun measures nothing: no efficiency of records an earlier run made
    assert "1 skipped" in (err := capsys.readouterr().err) and "sweep efficiency" not in err
