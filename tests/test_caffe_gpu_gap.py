"""A machine with a GPU but a CPU-only Caffe (only a driver and pip's PyTorch: no CUDA toolkit when Caffe was
built): a ``cuda:N`` sweep says in one line that it runs without Caffe, ``harness doctor`` says so, and ``./run``
tells how to get the GPU build with the CUDA toolkit from PyPI wheels. GPUs here are SYNTHETIC
(tests/data/synthetic_nvml); the CPU-only Caffe is a stand-in that only answers the probe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_build_scripts import fake_checkout  # noqa: F401  (a fixture)
from test_measure_nvml import UUID_A, synthetic_nvml  # noqa: F401  (a fixture)

from harness.backends.base import BackendInfo
from harness.backends.caffe.backend import GPU_BUILD_HINT, CaffeBackend
from harness.cli.doctor import caffe_build_report, print_caffe_build
from harness.executors.base import plan_here
from harness.measure import devices, sweep
from harness.measure.sweep import SweepSpec

CPU_ONLY_CAFFE = BackendInfo("caffe", True, version="1.0.0", devices=["cpu"],
                             details={"caffe_root": "/opt/caffe", "gpu_build": False, "cudnn": False})


@pytest.fixture
def one_synthetic_gpu(synthetic_nvml, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A"}])
    monkeypatch.setattr(devices, "cuda_driver_uuids", lambda: None)  # no libcuda here: the NVML route


def test_a_gpu_sweep_with_a_cpu_only_caffe_says_so_in_one_line(one_synthetic_gpu, monkeypatch) -> None:
    monkeypatch.setattr(CaffeBackend, "probe", classmethod(lambda cls: CPU_ONLY_CAFFE))
    # this machine's PyTorch is a CPU build: let it stand for the CUDA build a GPU machine has
    monkeypatch.setattr(sweep, "available_backends", lambda device, probe=None: ["pytorch"])
    plan = plan_here(SweepSpec(networks=["alexnet"], backends=[], batches=[1], devices=["cuda:0"]))
    caffe = [n for n in plan.notes if n.startswith("caffe:")]
    assert len(caffe) == 1 and "\n" not in caffe[0]
    assert "/opt/caffe is a CPU-only build" in caffe[0] and "cuda:0" in caffe[0]
    assert "docker/cuda-toolkit-from-wheels.sh" in caffe[0]
    # backends the user chose: nothing was left out silently, nothing to say
    chosen = plan_here(SweepSpec(networks=["alexnet"], backends=["pytorch"], batches=[1], devices=["cuda:0"]))
    assert not [n for n in chosen.notes if n.startswith("caffe:")]


def test_doctor_says_a_cpu_only_caffe_cannot_use_the_visible_gpu(tmp_path: Path, capsys) -> None:
    (tmp_path / "harness-build.env").write_text("CAFFE_CPU_ONLY=1\n")
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho \'{"libraries": []}\'\n')
    python.chmod(0o755)
    info = BackendInfo("caffe", True, details={"caffe_root": str(tmp_path), "gpu_build": False, "cudnn": False,
                                               "python": str(python)})
    report = caffe_build_report(info, gpu_visible=True)
    assert report["gpu_forward"].startswith("not possible") and report["gpu_build_hint"] == GPU_BUILD_HINT
    print_caffe_build(report)
    out = capsys.readouterr().out
    assert "CPU-only" in out and "cuda-toolkit-from-wheels.sh" in out
    assert "gpu_build_hint" not in caffe_build_report(info, gpu_visible=False)


def test_run_tells_how_to_get_the_gpu_build(fake_checkout: Path, tmp_path: Path) -> None:  # noqa: F811
    cpu_caffe = tmp_path / "caffe"
    cpu_caffe.mkdir()
    (cpu_caffe / "harness-build.env").write_text("CAFFE_CPU_ONLY=1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-x)'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)

    def stderr(with_gpu: bool) -> str:
        path = f"{bin_dir}:{os.environ['PATH']}" if with_gpu else os.environ["PATH"]
        env = {**os.environ, "CALLS": str(tmp_path / "calls"), "HOME": str(tmp_path / "home"), "PATH": path,
               "CAFFE_ROOT": str(cpu_caffe)}
        proc = subprocess.run(["bash", str(fake_checkout / "run"), "bench", "all"], capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    with_gpu = stderr(True)
    assert "CPU-only build" in with_gpu and "bash docker/cuda-toolkit-from-wheels.sh ~/cuda13" in with_gpu
    assert "export CAFFE_ROOT=~/caffe-cuda" in with_gpu
    if subprocess.run(["sh", "-c", "nvidia-smi -L"], capture_output=True).returncode != 0:
        assert "CPU-only" not in stderr(False)  # no GPU: nothing to say


def test_the_hint_is_one_line_with_the_wheel_route() -> None:
    assert "\n" not in GPU_BUILD_HINT and "cuda-toolkit-from-wheels.sh" in GPU_BUILD_HINT
    assert json.dumps(GPU_BUILD_HINT)  # recorded in doctor --json
