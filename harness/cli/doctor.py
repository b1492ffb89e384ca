"""``harness doctor``: which backends can run here, what they are, the NVIDIA GPU, what to do about gaps.

Every backend of :data:`harness.backends.base.BACKENDS` is probed (``Backend.probe()`` never raises);
a missing backend is reported with its hint, never an error: the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from harness.backends.base import BACKENDS, BackendInfo


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


def run(args: argparse.Namespace) -> int:
    backends = [probe_backend(name) for name in sorted(BACKENDS)]
    gpu = gpu_report()
    if args.json:
        json.dump({"backends": [asdict(b) for b in backends], "gpu": gpu}, sys.stdout, indent=2, default=str)
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
    print("NVIDIA GPU:")
    if gpu["gpus"]:
        for g in gpu["gpus"]:
            print(f"  [{g.get('index')}] {g.get('gpu_name')}  driver {g.get('driver')}  (via {gpu['source']})")
    else:
        print(f"  none: {gpu['reason']}")
        print("  to fix     GPU runs need an NVIDIA driver, and nvidia-ml-py (pip install 'harness[gpu]') "
              "for power and memory")
    return 0
