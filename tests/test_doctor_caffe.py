"""`harness doctor`'s Caffe build report: the build's record, the CUDA libraries a pycaffe process loads,
and the GPU check (tried only where a GPU is visible; on this project's machines there is none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.base import BackendInfo
from harness.cli.doctor import caffe_build_report, print_caffe_build


def fake_python(tmp_path: Path, stderr: str, status: int) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{stderr}\nEOF\nexit {status}\n")
    script.chmod(0o755)
    return str(script)


def test_a_caffe_abort_while_loading_is_reported_with_its_fatal_line(tmp_path: Path) -> None:
    (tmp_path / "harness-build.env").write_text('CAFFE_CPU_ONLY=0\nCAFFE_CUDA_VERSION=13.0\nCAFFE_CUDA_ARCH="90"\n'
                                                "CAFFE_CUDNN_VERSION=9.19.0\nCAFFE_SOURCE=\"debian caffe x\"\n")
    fatal = ("F1129 12:00:00.000000  7 common.cpp:152] Check failed: error == cudaSuccess (35 vs. 0)  "
             "CUDA driver version is insufficient for CUDA runtime version")
    python = fake_python(tmp_path, f"I1129 starting\n{fatal}\n*** Check failure stack trace: ***", 134)
    info = BackendInfo("caffe", True, details={"caffe_root": str(tmp_path), "gpu_build": True, "cudnn": True,
                                               "python": python})
    report = caffe_build_report(info, gpu_visible=True)
    assert report is not None and report["load_error"] == fatal
    assert report["cuda_version"] == "13.0" and report["cuda_arch"] == "90" and report["cudnn_version"] == "9.19.0"


def test_report_text_names_the_build_and_the_gpu_result(capsys: pytest.CaptureFixture[str]) -> None:
    print_caffe_build({"root": "/opt/caffe", "gpu_build": True, "cuda_version": "13.0", "cuda_arch": "90",
                       "cudnn": True, "cudnn_version": "9.19.0", "source": "git https://x 9b89",
                       "source_check": "699 files match", "cuda_libraries": ["/w/libcudart.so.13", "/w/libcudnn.so.9"],
                       "gpu_forward": "ok: a convolution and ReLU ran on cuda:0 with engine CUDNN"})
    out = capsys.readouterr().out
    assert "GPU: CUDA 13.0, sm 90, cuDNN 9.19.0" in out
    assert "/w/libcudart.so.13" in out and "/w/libcudnn.so.9" in out
    assert "ok: a convolution and ReLU ran on cuda:0 with engine CUDNN" in out


def doctor_json(**env: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "harness", "doctor", "--json"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env}, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.needs_pycaffe
def test_doctor_reports_the_build_record_and_that_pycaffe_loads() -> None:
    found = doctor_json()
    report = found["caffe_build"]
    assert report is not None and "load_error" not in report, report
    assert report["source"].split()[0] in ("git", "debian", "directory")
    assert "files match caffe-9b891540.sha256" in report["source_check"]
    if not found["gpu"]["gpus"]:
        assert report["gpu_forward"] in ("not tried: CPU-only build", "not tried: no GPU visible")


def test_gpu_build_loads_its_cuda_libraries_through_its_runpath(cudnn_caffe: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = subprocess.run([sys.executable, "-m", "harness", "doctor", "--json"], capture_output=True, text=True,
                          timeout=600, env={**env, "CAFFE_ROOT": str(cudnn_caffe)}, check=False)
    report = json.loads(proc.stdout)["caffe_build"]
    assert report["gpu_build"] and report["cudnn"] and report["cuda_version"] == "13.0"
    names = {Path(p).name for p in report["cuda_libraries"]}
    assert {"libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"} <= names
    dynamic = subprocess.run(["readelf", "-d", str(cudnn_caffe / "build" / "lib" / "libcaffe.so")],
                             capture_output=True, text=True, check=True).stdout
    runpath = next(line for line in dynamic.splitlines() if "(RUNPATH)" in line).split("[")[1].rstrip("]").split(":")
    assert all(str(Path(p).parent) in runpath for p in report["cuda_libraries"])
