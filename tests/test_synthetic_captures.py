"""Made-up profiler captures are told from their content, never their name (issue 21): the committed synthetic
captures carry a marker inside, `harness profile --capture` records a renamed copy as synthetic (or any capture
the user flags with --synthetic), the report says so, and `harness kernels` says when its input is synthetic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.kernels import synthetic
from harness.kernels.profile_record import read_profiles
from harness.kernels.synthetic import MARKER, is_synthetic_capture

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "kernels_profiles"
H100 = "NVIDIA H100 80GB HBM3"


def _profile(capture: Path, out: Path, *extra: str) -> int:
    return main(["profile", "mobilenet_v1", "--backend", "caffe", "--tool", "ncu", "--device", "cuda:0",
                 "--capture", str(capture), "--hardware", H100, "--out", str(out), *extra])


def _without_marker(source: Path, target: Path) -> Path:
    """A capture as a profiler writes it: the synthetic file without its marker line."""
    lines = source.read_text().splitlines(keepends=True)
    assert MARKER in lines[0]
    target.write_text("".join(lines[1:]))
    return target


def test_every_committed_synthetic_capture_carries_the_marker():
    captures = sorted(PROFILES.glob("synthetic-*"))
    assert len(captures) == 13  # CSV, JSON and SQLite exports alike
    assert all(is_synthetic_capture(p) for p in captures)
    copies = list((ROOT / "tests/data/synthetic-gpu-results/profiles/captures").rglob("synthetic-*"))
    assert copies and all(is_synthetic_capture(p) for p in copies)
    # real files: the CPU BLAS timings and a real record set hold no marker
    assert not any(is_synthetic_capture(p) for p in (PROFILES / "cpu").glob("*.json"))


def test_the_marker_is_found_across_a_read_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "_CHUNK", 64)
    straddling = tmp_path / "capture.csv"
    straddling.write_bytes(b"x" * 60 + MARKER.encode() + b"\n" + b"y" * 500)
    assert is_synthetic_capture(straddling)
    straddling.write_bytes(b"x" * 60 + MARKER[:-1].encode() + b"\n" + b"y" * 500)
    assert not is_synthetic_capture(straddling)


def test_a_renamed_synthetic_capture_is_recorded_and_reported_as_synthetic(tmp_path, capsys):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from harness.report.build import SYNTHETIC_BANNER, build

    renamed = tmp_path / "ncu.csv"
    shutil.copyfile(PROFILES / "synthetic-ncu-raw.csv", renamed)
    out = tmp_path / "results"
    assert _profile(renamed, out) == 0
    assert "SYNTHETIC (made up, not a measurement)" in capsys.readouterr().out
    (record,) = read_profiles(out)
    assert record.synthetic and any(MARKER in note for note in record.notes)
    assert json.loads(next((out / "profiles").glob("*.json")).read_text())["synthetic"] is True
    # the case: recorded as an H100, it must not read as an H100 measurement anywhere
    report = build([out], tmp_path / "report")
    md = report.markdown.read_text()
    assert SYNTHETIC_BANNER in md
    row = next(line for line in md.splitlines() if "| MobileNet spends most GPU time in gemv kernels |" in line)
    assert "not reproduced (SYNTHETIC data)" in row
    assert report.figures and all(f.synthetic for f in report.figures)


def test_only_the_content_or_the_flag_decides_never_the_name(tmp_path, capsys):
    # named synthetic-*, but without the marker: a capture like any other
    plain = _without_marker(PROFILES / "synthetic-ncu-raw.csv", tmp_path / "synthetic-ncu-raw.csv")
    assert not is_synthetic_capture(plain)
    assert _profile(plain, tmp_path / "named") == 0
    (record,) = read_profiles(tmp_path / "named")
    assert not record.synthetic
    # the user says it is made up
    assert _profile(plain, tmp_path / "flagged", "--synthetic") == 0
    (record,) = read_profiles(tmp_path / "flagged")
    assert record.synthetic and any("--synthetic" in note for note in record.notes)
    capsys.readouterr()
    # a profiler run here is a measurement: --synthetic only marks an imported capture
    assert main(["profile", "alexnet", "--backend", "pytorch", "--tool", "torch", "--synthetic",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--synthetic marks an imported --capture" in err


def test_kernels_attribute_and_metrics_say_when_their_input_is_synthetic(tmp_path, capsys):
    renamed = tmp_path / "report.sqlite"
    shutil.copyfile(PROFILES / "synthetic-nsys.sqlite", renamed)
    plain = _without_marker(PROFILES / "synthetic-nsys-cuda_gpu_trace.csv", tmp_path / "trace.csv")
    assert main(["kernels", "attribute", "--format", "json", str(renamed), str(plain)]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["synthetic"] for a in answers] == [True, False]
    assert main(["kernels", "attribute", str(renamed)]) == 0
    assert "SYNTHETIC (made up, not a measurement)" in capsys.readouterr().out
    metrics = tmp_path / "metrics.csv"
    shutil.copyfile(PROFILES / "synthetic-nvprof-metrics.csv", metrics)
    assert main(["kernels", "metrics", str(metrics)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert main(["kernels", "metrics", "--format", "json", str(metrics)]) == 0
    assert all(row["synthetic"] for row in json.loads(capsys.readouterr().out))
