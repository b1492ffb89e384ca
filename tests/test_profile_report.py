"""`harness profile` -> kernel-profile record -> `harness report`: a real CPU PyTorch-profiler capture of only the
profiled iterations, the labelled synthetic ncu capture into Table V, the capture range and the profiler timeout."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import HarnessError
from harness.kernels import profile_run
from harness.kernels.profile_record import read_profiles
from harness.kernels.ranges import KINETO_STEP_PREFIX, LAYER_PREFIX, CaptureRangeError, cuda_capture_range

PROFILES = Path(__file__).resolve().parent.parent / "kernels_profiles"


@pytest.fixture(scope="module")
def cpu_profile(tmp_path_factory):
    """One real profile of squeezenet_v1.1 on this CPU: 2 warm-up passes, 3 profiled."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("results")
    rc = main(["profile", "squeezenet_v1.1", "--backend", "pytorch", "--tool", "torch", "--device", "cpu",
               "--warmup", "2", "--iters", "3", "--out", str(out)])
    assert rc == 0
    return out


def test_the_record_states_configuration_device_and_iterations(cpu_profile):
    path = cpu_profile / "profiles" / "squeezenet_v1.1-pytorch-eager-fp32-cpu-b1-torch.json"
    doc = json.loads(path.read_text())
    assert doc["kind"] == "kernel-profile" and doc["device_kind"] == "cpu" and doc["device_model"]
    assert doc["config"]["network"] == "squeezenet_v1.1" and doc["config"]["hardware"] == doc["device_model"]
    assert (doc["warmup_iters"], doc["iterations"], doc["iterations_in_capture"]) == (2, 3, 3)
    assert doc["gpu_kernels"] == 0 and doc["cpu_ops"] and "schedule" in doc["capture_range"]
    (record,) = read_profiles(cpu_profile)
    assert record.device_kind == "cpu" and not record.synthetic


def test_the_capture_holds_the_profiled_iterations_only(cpu_profile):
    """Loading and the 2 warm-up passes are not in the trace: each layer range appears once per profiled pass."""
    from harness.kernels.parsers import load_trace

    (capture,) = (cpu_profile / "profiles" / "captures").glob("*/kineto.json")
    trace = load_trace(capture)
    steps = sorted({r.name for r in trace.ranges if r.name.startswith(KINETO_STEP_PREFIX)})
    assert len(steps) == 3
    conv1 = [r for r in trace.ranges if r.name == LAYER_PREFIX + "conv1"]
    assert len(conv1) == 3
    first = min(r.start_ns for r in trace.ranges if r.name.startswith(KINETO_STEP_PREFIX))
    assert all(op.start_ns >= first for op in trace.cpu_ops)


def test_report_reads_the_profile_and_decides_no_kernel_claim_with_it(cpu_profile, tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from harness.report import claims
    from harness.report.build import build

    report = build([cpu_profile], tmp_path / "report")
    md = report.markdown.read_text()
    assert "1 kernel profile(s)" in md
    assert "only profiles without GPU kernels" in md and "squeezenet_v1.1 (torch)" in md
    kernel = [c for c in report.claims if "gemv" in c.claim or "cuBLAS" in c.claim]
    assert len(kernel) == 2 and all(c.verdict == claims.NOT_MEASURED and c.scope == claims.GPU for c in kernel)
    assert all("CPU profile(s), no GPU kernels (decide nothing)" in c.evidence for c in kernel)


def test_synthetic_ncu_capture_fills_table_v(tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import pandas as pd

    from harness.kernels.metrics import table_v
    from harness.kernels.parsers import load_trace
    from harness.report.build import build

    capture = PROFILES / "synthetic-ncu-raw.csv"
    out = tmp_path / "results"
    assert main(["profile", "mobilenet_v1", "--backend", "caffe", "--tool", "ncu", "--device", "cuda:0",
                 "--capture", str(capture), "--hardware", "SYNTHETIC GPU", "--out", str(out)]) == 0
    (record,) = read_profiles(out)
    assert record.synthetic and record.iterations is None and record.capture_range is None
    report = build([out], tmp_path / "report")
    t5 = pd.read_csv(report.out / "tables" / "table5_kernels.csv").set_index("attribute")
    expected = {r.family: r.values for r in table_v(load_trace(capture).metrics)}
    for family in ("gemv2T", "gemv2N", "gemmk1"):
        column = t5[f"D1 caffe 1.0-MobileNet-224 {family}"]
        for attribute, value in expected[family].items():
            assert float(column[attribute]) == pytest.approx(value), (family, attribute)
    assert t5.loc["occupancy_pct", "paper gemv2T"] == "6.2"
    mapping = pd.read_csv(report.out / "tables" / "table5_mapping.csv")
    assert "sm__warps_active.avg.pct_of_peak_sustained_active" in set(mapping["Nsight Compute metric"])
    md = report.markdown.read_text()
    assert md.startswith("# ") and "SYNTHETIC DATA" in md


def test_hardware_only_with_an_imported_capture(tmp_path, capsys):
    assert main(["profile", "alexnet", "--backend", "pytorch", "--tool", "torch", "--hardware", "X",
                 "--out", str(tmp_path)]) == 2
    assert "--hardware names the device of an imported --capture" in capsys.readouterr().err


def test_external_profilers_get_the_capture_range(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda tool: f"/opt/nvidia/{tool}")
    request = profile_run.Request("alexnet", "pytorch", 1, "cuda:0", None, "ncu", 3, 1, tmp_path)
    cmd, capture = profile_run.external_command(request)
    assert cmd[:3] == ["/opt/nvidia/ncu", "--profile-from-start", "off"] and capture == tmp_path / "ncu.csv"
    assert cmd[cmd.index("--range") + 1] == "cuda" and "--launch-count" not in cmd
    nsys, _ = profile_run.external_command(profile_run.Request("alexnet", "pytorch", 1, "cuda:0", None, "nsys", 3,
                                                               5, tmp_path))
    assert "--capture-range=cudaProfilerApi" in nsys and "--capture-range-end=stop" in nsys and "--nvtx" in nsys


def test_capture_range_without_a_cuda_context_is_an_error():
    try:
        import ctypes

        ctypes.CDLL("libcuda.so.1")
        pytest.skip("a CUDA driver is installed here: without a context cuProfilerStart's code varies")
    except OSError:
        pass
    with pytest.raises(CaptureRangeError, match="no CUDA driver to open the capture range"), cuda_capture_range():
        pass


def test_a_hung_profiler_is_killed_with_its_children(tmp_path):
    """The command and the process it started are both gone after the timeout, reported in one line."""
    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(HarnessError) as err:
        profile_run.run_command(["/usr/bin/env", sys.executable, "-c", script], timeout_s=2)
    assert time.monotonic() - started < 30
    assert "env did not finish within --timeout 2 s" in str(err.value) and "\n" not in str(err.value)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the profiler's child survived the timeout")


def test_a_failing_profiler_is_one_line():
    with pytest.raises(HarnessError) as err:
        profile_run.run_command([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                                timeout_s=30)
    assert str(err.value) == f"{Path(sys.executable).name} failed (exit 3): boom"


def test_profiling_again_replaces_the_record_but_never_another_devices(tmp_path, capsys):
    capture = PROFILES / "synthetic-ncu-raw.csv"
    base = ["profile", "mobilenet_v1", "--backend", "caffe", "--tool", "ncu", "--device", "cuda:0",
            "--capture", str(capture), "--out", str(tmp_path)]
    assert main([*base, "--hardware", "SYNTHETIC GPU A"]) == 0
    assert main([*base, "--hardware", "SYNTHETIC GPU A"]) == 0
    assert len(read_profiles(tmp_path)) == 1
    assert len(list((tmp_path / "profiles" / "captures").iterdir())) == 1
    capsys.readouterr()
    assert main([*base, "--hardware", "SYNTHETIC GPU B"]) == 2
    err = capsys.readouterr().err
    assert "holds a profile of 'SYNTHETIC GPU A'" in err and err.count("\n") == 1
    (record,) = read_profiles(tmp_path)
    assert record.device_model == "SYNTHETIC GPU A"
    assert (tmp_path / "profiles" / record.capture).is_file()  # its capture untouched


def test_ncu_keeps_the_gpus_clocks_and_takes_the_metric_set_asked_for(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda tool: f"/opt/nvidia/{tool}")
    full, _ = profile_run.external_command(profile_run.Request("alexnet", "pytorch", 1, "cuda:0", None, "ncu", 3, 1,
                                                               tmp_path))
    assert full[full.index("--clock-control") + 1] == "none"  # not ncu's default, base clocks for every replay
    assert "regex:smsp__warp_issue_stalled_" in full[full.index("--metrics") + 1]
    small, _ = profile_run.external_command(profile_run.Request("googlenet", "pytorch", 1, "cuda:0", None, "ncu", 3,
                                                                1, tmp_path, ncu_metrics="attributes"))
    metrics = small[small.index("--metrics") + 1].split(",")
    assert len(metrics) == 7 and not any("stalled" in m for m in metrics)
    assert "sm__throughput.avg.pct_of_peak_sustained_elapsed" in metrics
