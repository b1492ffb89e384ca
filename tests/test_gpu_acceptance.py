"""benchmarks/gpu_acceptance.sh: its plan fits the time a lent GPU machine gives (limits read from the script),
covers the paper's evidence, and its statuses are honest. The dry run runs the same steps on this CPU with one
network at B=1 (GPU-only steps say "skipped: no GPU"); an interpreter without the harness's dependencies stops
the run at once; a harness that makes nothing fails every step that needed it; a run killed midway leaves its
archives. No GPU was available to run the GPU plan itself."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_acceptance.sh"
TEXT = SCRIPT.read_text()


def plan(name: str) -> dict[str, int]:
    """A step plan of the script (``GPU_STEPS="step:limit ..."``), in order."""
    (line,) = re.findall(rf'^{name}="([^"]+)"$', TEXT, re.MULTILINE)
    return {item.split(":")[0]: int(item.split(":")[1]) for item in line.split()}


def documented(mode: str) -> tuple[int, int]:
    """(whole-run limit, sum of step limits) as the header states them for ``mode``."""
    (line,) = [line for line in TEXT.splitlines() if line.startswith(f"#   {mode}")]
    run, steps = re.search(r"at most (\d+) s; step limits add up to (\d+) s", line).groups()
    return int(run), int(steps)


def test_step_limits_fit_the_machine_and_match_the_header() -> None:
    runs = {k: v for k, v in (item.split(":") for item in re.search(r'^RUN_LIMITS="([^"]+)"', TEXT, re.M)[1].split())}
    for mode, steps, ceiling in (("default", "GPU_STEPS", 300), ("--caffe-bundle", "CAFFE_STEPS", 480),
                                 ("--dry-run", "DRY_STEPS", 150)):
        total = sum(plan(steps).values())
        key = {"default": "gpu", "--caffe-bundle": "caffe", "--dry-run": "dry"}[mode]
        assert documented(mode) == (int(runs[key]), total), mode  # the header says what the script does
        assert total < int(runs[key]) <= ceiling, mode  # the archives and summary have time after the last step


def test_the_default_plan_puts_the_papers_evidence_first() -> None:
    steps = list(plan("GPU_STEPS"))
    assert steps.index("profile-torch") < steps.index("profile-ncu") < steps.index("energy") < steps.index("bench")
    assert steps.index("compile") < steps.index("bench")  # compile early, in its own step
    # kernel evidence of the networks with fully connected layers, by Kineto and by ncu
    for net in ("alexnet", "googlenet"):
        assert re.search(rf"harness profile {net} --backend pytorch --tool ncu", TEXT)
    assert 'NETS="alexnet googlenet"' in TEXT and "--tool torch" in TEXT
    from harness.kernels import profile_run
    assert profile_run.NCU_CLOCK_CONTROL == "none"


def test_the_default_bench_fills_table_iii() -> None:
    """Latency at B=1 and efficiency at B=4 (the paper's batches) for eager-fp32, with windows long enough for
    their energy to be evidence at a counter refresh of up to 100 ms."""
    from harness.measure.energy import MAX_EDGE_SHARE
    from harness.report.measured import ENERGY_BATCH, LATENCY_BATCH

    bench = re.search(r"records_step bench 5 '(.*?)'\n", TEXT, re.S)[1]
    batches = {int(b) for b in re.search(r"--mode eager-fp32 --batch ([\d,]+)", bench)[1].split(",")}
    assert {LATENCY_BATCH, ENERGY_BATCH} <= batches
    window = float(re.search(r"--set min_window_s=(\d+(?:\.\d+)?)\n", TEXT)[1])
    assert math.sqrt(2.0) * 0.1 / window <= MAX_EDGE_SHARE


def test_usage_errors() -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT), "/tmp/x", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2
    proc = subprocess.run(["bash", str(SCRIPT), "/tmp/x", "--dry-run", "--caffe-bundle", "b.tar.gz"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_the_caffe_run_needs_a_gpu_and_its_bundle(tmp_path: Path) -> None:
    """This machine has no GPU and no ncu: the Caffe run stops at preflight, naming what is missing."""
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--caffe-bundle", str(tmp_path / "none.tar.gz")],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    line = next(line for line in (out / "summary.md").read_text().splitlines() if "**preflight**" in line)
    assert "no Caffe bundle at" in line and "none.tar.gz" in line
    assert "mode: Caffe on the GPU" in (out / "summary.md").read_text()


def wrapper(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_an_interpreter_without_the_dependencies_stops_the_run_in_one_line(tmp_path: Path) -> None:
    bare = wrapper(tmp_path, f'exec {sys.executable} -I -S "$@"')  # no site-packages: no torch, rich, pynvml
    out = tmp_path / "out"
    out.mkdir()
    (out / "energy.txt").write_text("  energy counter   812.00 J\n")  # an earlier run's: not this run's evidence
    # run as the README says (benchmarks/gpu_acceptance.sh OUT_DIR): the script is executable
    proc = subprocess.run([str(SCRIPT), str(out), "--dry-run"], env={**os.environ, "PYTHON": bare},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("gpu_acceptance:") == 1 and "cannot run" in proc.stderr and "no torch" in proc.stderr
    summary = (out / "summary.md").read_text()
    assert "- **preflight**: FAILED" in summary and "no torch" in summary and "no rich" in summary
    assert "- **env**" not in summary  # nothing after it ran
    assert not (out / "energy.txt").exists()


@pytest.mark.slow
def test_a_harness_that_makes_nothing_fails_every_step_that_needed_it(tmp_path: Path) -> None:
    """The old failure: every harness call died and the summary still said "ok". Here the harness exits 0
    having done nothing: each step says what it did not make."""
    hollow = wrapper(tmp_path, f'[ "$1 $2" = "-m harness" ] && exit 0\nexec {sys.executable} "$@"')
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], env={**os.environ, "PYTHON": hollow},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    summary = (out / "summary.md").read_text()
    assert "- **preflight**: ok" in summary
    for name, why in (("env", ""), ("profile-torch", "no profile record"), ("compile", "0 record(s) of 1"),
                      ("bench", "0 record(s) of 1"), ("report", "it made nothing")):
        line = next(line for line in summary.splitlines() if line.startswith(f"- **{name}**"))
        assert "FAILED" in line or "TIMED OUT" in line, line  # (timed out: a machine too busy to answer)
        assert "FAILED" not in line or why in line, line
    assert " ok " not in summary.split("## Steps")[1].replace("- **preflight**: ok", "")


@pytest.mark.slow
def test_dry_run(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the dry run measures PyTorch on the CPU")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    started = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], env=env, capture_output=True, text=True,
                          timeout=600)
    took = time.monotonic() - started
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 0, summary + proc.stderr[-2000:]
    assert took < 150 + 15  # the run's own limit (and a margin for the last archive)
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"summary.md", "acceptance.log", "results.tar.gz", "captures.tar.gz"} <= set(files)
    for gpu_step in ("profile-ncu", "energy", "memory"):
        assert f"- **{gpu_step}**: skipped: no GPU" in summary
    for cpu_step in ("preflight", "env", "profile-torch", "compile", "bench", "report"):
        assert f"- **{cpu_step}**: ok" in summary, summary
    assert "- **compile**: ok" in summary and "1 record(s) of 1: 1 ok" in summary
    records = summary.split("## Records and profiles")[1]
    assert "| squeezenet_v1.1 | pytorch | compile | cpu" in records
    assert "| squeezenet_v1.1 | pytorch | eager-fp32 | cpu" in records
    assert " failed |" not in records and "2 configuration(s): 2 ok" in records
    assert "1 kernel profile(s)" in records and "| squeezenet_v1.1 | pytorch | torch | cpu |" in records
    with tarfile.open(out / "results.tar.gz") as archive:
        names = archive.getnames()
    assert any(name.endswith(".jsonl") for name in names) and "report/report.md" in names
    assert any(name.startswith("results/profiles/") and name.endswith("-torch.json") for name in names)
    with tarfile.open(out / "captures.tar.gz") as archive:
        assert any(name.endswith(".json") for name in archive.getnames())  # the Kineto trace


@pytest.mark.slow
def test_a_run_killed_midway_leaves_its_archives(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the dry run measures PyTorch on the CPU")
    out = tmp_path / "out"
    proc = subprocess.Popen(["bash", str(SCRIPT), str(out), "--dry-run"], env={**os.environ, "PYTHON": sys.executable},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    log = out / "acceptance.log"
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and "step profile-torch" in log.read_text():
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler or an impatient user does
    proc.wait(timeout=120)
    summary = (out / "summary.md").read_text()
    assert "- **env**: ok" in summary and "interrupted after" in summary
    assert (out / "results.tar.gz").is_file() and (out / "captures.tar.gz").is_file()
    with tarfile.open(out / "results.tar.gz") as archive:
        assert "results" in archive.getnames()
