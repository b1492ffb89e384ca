"""``harness kernels`` and ``harness profile`` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli.main import main

PROFILES = Path(__file__).resolve().parent.parent / "kernels_profiles"


def test_attribute_json_states_the_denominator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "attribute", "--format", "json", str(PROFILES / "synthetic-nsys.sqlite")]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert "not wall time" in out["denominator"] and out["layers"]["fc7"] == {"gemv2T": 55000.0}


def test_attribute_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "attribute", "--kernels", "3", str(PROFILES / "synthetic-kineto.json")]) == 0
    out = capsys.readouterr().out
    assert "gemv2T 27.50 %" in out and "per layer" in out


def test_metrics_needs_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "metrics", str(PROFILES / "synthetic-nvprof-cuda9-gputrace.csv")]) == 2
    assert "no kernel metrics" in capsys.readouterr().err


def test_unknown_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("just text\n")
    assert main(["kernels", "attribute", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected one of" in err


def test_profile_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:  # argparse: usage and exit 2
        main(["profile", "alexnet", "--backend", "nope", "--tool", "torch"])
    assert exit_.value.code == 2 and "unknown backend(s) nope" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("nsys") is not None, reason="nsys is installed here")
def test_profile_without_nsys_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "alexnet", "--backend", "pytorch", "--tool", "nsys", "--out", str(tmp_path)]) == 2
    assert "Nsight Systems (nsys) is not on PATH" in capsys.readouterr().err


def test_profile_torch_on_cpu_records_cpu_ops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from harness import zoo

    if not hasattr(zoo, "resolve"):
        pytest.skip("harness.zoo.resolve is not available in this checkout")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this test covers the CPU-only case")
    rc = main(["profile", "squeezenet_v1.1", "--backend", "pytorch", "--tool", "torch", "--iters", "1",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "no GPU kernels were recorded" in out and "aten::" in out
    record = json.loads((tmp_path / "profiles" / "squeezenet_v1.1-pytorch-eager-fp32-cpu-b1-torch.json").read_text())
    assert record["kind"] == "kernel-profile" and record["tool"] == "torch" and record["gpu_kernels"] == 0


def test_attribute_of_a_cpu_only_trace_says_there_are_no_gpu_kernels(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "cpu.json"
    trace.write_text(json.dumps({"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::conv2d", "ts": 1,
                                                  "dur": 5, "tid": 1}]}))
    assert main(["kernels", "attribute", str(trace)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no GPU kernels in this kineto-json capture" in err


def test_bad_profiler_values_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (PROFILES / "synthetic-nsys-cuda_gpu_trace.csv").read_text().replace(",41000,", ",-41000,")
    bad = tmp_path / "negative.csv"
    bad.write_text(text)
    assert main(["kernels", "attribute", str(bad)]) == 2
    err = capsys.readouterr().err
    line = next(i for i, row in enumerate(text.splitlines(), 1) if ",-41000," in row)
    assert err.count("\n") == 1 and f"{bad}:{line}: Duration (ns) '-41000' cannot be a measurement" in err


def test_classify_reads_undecodable_names(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "harness", "kernels", "classify"], capture_output=True,
                          input=b"gemv2T_kernel\r\n\xff\xfe not UTF-8\nvoid gemmk1_kernel<float>\n", timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert proc.stdout.decode().splitlines()[0::2] == ["gemv2T\tgemv2T_kernel", "gemmk1\tvoid gemmk1_kernel<float>"]


def test_a_failed_profile_keeps_the_previous_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Profiling a configuration again replaces its capture only once the new one has been read: a missing
    --capture file or a profiler killed at its --timeout leaves the earlier capture and record as they were."""
    pytest.importorskip("torch")
    args = ["profile", "squeezenet_v1.1", "--backend", "pytorch", "--tool", "torch", "--device", "cpu",
            "--mode", "eager-fp32", "--iters", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    record_path = tmp_path / "profiles" / "squeezenet_v1.1-pytorch-eager-fp32-cpu-b1-torch.json"
    before = record_path.read_text()
    capture = tmp_path / "profiles" / json.loads(before)["capture"]
    assert capture.is_file()
    capsys.readouterr()
    assert main([*args, "--capture", str(tmp_path / "nope.json")]) == 2
    assert main([*args, "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "no such capture file" in err and "did not finish within --timeout 0.5 s" in err
    assert record_path.read_text() == before and capture.is_file()
    assert not list((tmp_path / "profiles" / "captures").glob("*.partial"))
