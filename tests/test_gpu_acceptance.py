"""benchmarks/gpu_acceptance.sh --dry-run: the same steps as on a lent GPU, on this CPU with one network
at B=1; GPU-only steps say "skipped: no GPU". It must leave at most 8 files and a summary of real records."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_acceptance.sh"


@pytest.mark.slow
def test_dry_run(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the dry run measures PyTorch on the CPU")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"summary.md", "acceptance.log", "results.tar.gz"} <= set(files)
    summary = (out / "summary.md").read_text()
    for gpu_step in ("identity", "poller", "energy", "memory"):
        assert f"- **{gpu_step}**: skipped: no GPU" in summary
    for cpu_step in ("env", "doctor", "bench", "profile", "report"):
        assert f"- **{cpu_step}**: ok" in summary, summary
    assert "| squeezenet_v1.1 | pytorch | compile | cpu" in summary
    assert "| squeezenet_v1.1 | pytorch | eager-fp32 | cpu" in summary
    records = summary.split("## Records")[1]
    assert " failed |" not in records and "configurations:" in records
    with tarfile.open(out / "results.tar.gz") as archive:
        names = archive.getnames()
    assert any(name.endswith(".jsonl") for name in names) and "report/report.md" in names
    assert any(name.startswith("results/profiles/") and name.endswith("-torch.json") for name in names)
    with tarfile.open(out / "captures.tar.gz") as archive:
        assert any(name.endswith(".json") for name in archive.getnames())  # the Kineto trace


def test_usage_errors() -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT), "/tmp/x", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2
