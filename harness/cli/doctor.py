"""``harness doctor``: which backends can run here, what they are, the NVIDIA GPU, what to do about gaps.

Every backend of :data:`harness.backends.base.BACKENDS` is probed (``Backend.probe()`` never raises);
a missing backend is reported with its hint, never an error: the exit status is 0 either way.

For Caffe it also shows the build (CPU or GPU, CUDA version and architectures, cuDNN, where the source
came from, as ``docker/build-caffe.sh`` recorded it) and what a process importing pycaffe actually
loads: the CUDA libraries it found (through the build's RUNPATH, or the relocatable bundle's loader)
and, when a GPU is visible, whether a small network runs on it, with cuDNN when the build has it.
A build that imports is not yet one that runs on the GPU; this is the check that tells them apart.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.backends.base import BACKENDS, BackendInfo

#: Run under pycaffe's interpreter (any Python 3, no harness import): the CUDA libraries the process
#: loaded, and with argv[1] "caffe" or "cudnn" a convolution + ReLU forward on cuda:0 with that engine.
CAFFE_LOAD_CHECK = r"""
import json, os, sys, tempfile
import caffe
wanted = ("libcudart.", "libcublas.", "libcublasLt.", "libcurand.", "libcudnn.")
with open("/proc/self/maps") as maps:
    paths = {line.split()[-1] for line in maps if "/" in line}
result = {"libraries": sorted(p for p in paths if os.path.basename(p).startswith(wanted))}
if sys.argv[1] != "none":
    engine = sys.argv[1].upper()
    net = ('input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 } '
           'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
           'convolution_param { num_output: 4 kernel_size: 3 engine: %s } } '
           'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { engine: %s } }'
           % (engine, engine))
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(net)
    try:
        caffe.set_device(0)
        caffe.set_mode_gpu()
        caffe.Net(f.name, caffe.TEST).forward()
    finally:
        os.unlink(f.name)
    result["gpu_forward"] = engine
print(json.dumps(result))
"""
GLOG_FATAL = re.compile(r"F\d{4} ")
GPU_CHECK_TIMEOUT_S = 300  # cuDNN's first use loads several hundred MB of kernels


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the findings as JSON")


def probe_backend(name: str) -> BackendInfo:
    module, cls = BACKENDS[name].split(":")
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        return BackendInfo(name, False, reason=f"cannot import {module}: {exc}",
                           hint="install the extra this backend needs (see README.md)")
    return backend_cls.probe()


def gpu_report() -> dict[str, Any]:
    """NVIDIA driver and GPUs through NVML (nvidia-ml-py), else nvidia-smi, else why there are none."""
    from harness.measure.nvml_poller import NvmlUnavailable, device_info, nvml_init

    try:
        pynvml = nvml_init()
    except NvmlUnavailable as nvml_error:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return {"gpus": [], "source": None, "reason": f"{nvml_error}; no nvidia-smi on PATH"}
        query = "--query-gpu=index,name,driver_version,memory.total"
        try:
            out = subprocess.run([smi, query, "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            return {"gpus": [], "source": "nvidia-smi", "reason": f"nvidia-smi failed: {exc}"}
        gpus = [dict(zip(("index", "gpu_name", "driver", "memory_total"), (v.strip() for v in line.split(",")),
                         strict=False)) for line in out.splitlines() if line.strip()]
        return {"gpus": gpus, "source": "nvidia-smi", "reason": None if gpus else "nvidia-smi lists no GPU"}
    try:
        gpus = [{"index": i, **device_info(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i))}
                for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()
    return {"gpus": gpus, "source": "nvml", "reason": None if gpus else "NVML reports no GPU"}


def caffe_build_report(info: BackendInfo, gpu_visible: bool) -> dict[str, Any] | None:
    """The Caffe build behind an available ``caffe`` backend: its record, and what loading it does."""
    if not info.available or "caffe_root" not in info.details:
        return None
    from harness.backends.caffe.backend import read_build_info

    root = Path(info.details["caffe_root"])
    recorded = read_build_info(root)
    gpu_build, cudnn = bool(info.details.get("gpu_build")), bool(info.details.get("cudnn"))
    report: dict[str, Any] = {
        "root": str(root),
        "gpu_build": gpu_build,
        "cuda_version": recorded.get("CAFFE_CUDA_VERSION") or None,
        "cuda_arch": recorded.get("CAFFE_CUDA_ARCH") or None,
        "cudnn": cudnn,
        "cudnn_version": recorded.get("CAFFE_CUDNN_VERSION") or None,
        "source": recorded.get("CAFFE_SOURCE") or "not recorded (not built by docker/build-caffe.sh)",
        "source_check": recorded.get("CAFFE_SOURCE_CHECK") or None,
        "python": info.details.get("python"),
    }
    engine = "none"
    if gpu_build and gpu_visible:
        engine = "cudnn" if cudnn else "caffe"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "python"),
                                                                        os.environ.get("PYTHONPATH")])),
           "GLOG_minloglevel": "2"}
    try:
        proc = subprocess.run([str(info.details.get("python") or sys.executable), "-c", CAFFE_LOAD_CHECK, engine],
                              capture_output=True, text=True, env=env, timeout=GPU_CHECK_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        report["load_error"] = f"{type(exc).__name__}: {exc}"
        return report
    if proc.returncode == 0:
        checked = json.loads(proc.stdout.strip().splitlines()[-1])
        report["cuda_libraries"] = checked["libraries"]
        report["gpu_forward"] = f"ok: a convolution and ReLU ran on cuda:0 with engine {checked['gpu_forward']}" \
            if "gpu_forward" in checked else None
    else:
        # glog's fatal line (a CHECK failure aborts), else the last line: a Python exception's message
        lines = proc.stderr.strip().splitlines()
        fatal = [line for line in lines if GLOG_FATAL.match(line)]
        report["load_error"] = (fatal or lines or [f"exit status {proc.returncode}"])[-1]
    if report.get("gpu_forward") is None and "load_error" not in report:
        report["gpu_forward"] = ("not tried: CPU-only build" if not gpu_build else
                                 "not tried: no GPU visible")
    if not gpu_build and gpu_visible:  # a cuda:N sweep runs without Caffe, the paper's baseline: say how to fix it
        from harness.backends.caffe.backend import GPU_BUILD_HINT

        report["gpu_forward"] = "not possible: a GPU is visible but this Caffe is a CPU-only build"
        report["gpu_build_hint"] = GPU_BUILD_HINT
    return report


def print_caffe_build(report: dict[str, Any]) -> None:
    if report["gpu_build"]:
        cudnn = f"cuDNN {report['cudnn_version'] or 'yes'}" if report["cudnn"] else "no cuDNN"
        build = f"GPU: CUDA {report['cuda_version'] or '?'}, sm {report['cuda_arch'] or '?'}, {cudnn}"
    else:
        build = "CPU-only"
    print("Caffe build:")
    print(f"  {'root':<12} {report['root']}")
    print(f"  {'build':<12} {build}")
    print(f"  {'source':<12} {report['source']}")
    if report["source_check"]:
        print(f"  {'':<12} {report['source_check']}")
    if report["gpu_build"] and "cuda_libraries" in report:
        libraries = report["cuda_libraries"]
        print(f"  {'CUDA libs':<12} {libraries[0] if libraries else 'none loaded'}")
        for path in libraries[1:]:
            print(f"  {'':<12} {path}")
    if "load_error" in report:
        print(f"  {'FAILED':<12} {report['load_error']}")
    else:
        print(f"  {'on the GPU':<12} {report['gpu_forward']}")
    if "gpu_build_hint" in report:
        print(f"  {'to fix':<12} {report['gpu_build_hint']}")


def run(args: argparse.Namespace) -> int:
    backends = [probe_backend(name) for name in sorted(BACKENDS)]
    gpu = gpu_report()
    caffe = next((caffe_build_report(b, bool(gpu["gpus"])) for b in backends if b.name == "caffe"), None)
    if args.json:
        json.dump({"backends": [asdict(b) for b in backends], "caffe_build": caffe, "gpu": gpu}, sys.stdout,
                  indent=2, default=str)
        print()
        return 0
    print("Backends:")
    for info in backends:
        if info.available:
            print(f"  {info.name:<12} available  {info.version or ''}".rstrip())
            if info.origin:
                print(f"  {'':<12} origin     {info.origin}")
            if info.devices:
                print(f"  {'':<12} devices    {', '.join(info.devices)}")
        else:
            print(f"  {info.name:<12} MISSING    {info.reason}")
            if info.hint:
                print(f"  {'':<12} to fix     {info.hint}")
    if caffe is not None:
        print_caffe_build(caffe)
    print("NVIDIA GPU:")
    if gpu["gpus"]:
        for g in gpu["gpus"]:
            print(f"  [{g.get('index')}] {g.get('gpu_name')}  driver {g.get('driver')}  (via {gpu['source']})")
    else:
        print(f"  none: {gpu['reason']}")
        print("  to fix     GPU runs need an NVIDIA driver, and nvidia-ml-py (pip install 'harness[gpu]') "
              "for power and memory")
    return 0
