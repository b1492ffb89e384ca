"""Where a result was measured: host, CPU, software versions, git revision (recorded with every record).

GPU facts (model, UUID, driver, power limit, clocks) come from the NVML poller's ``device_info``;
framework, CUDA, cuDNN and cuBLAS versions from the backend session's ``info``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__


@cache
def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@cache
def git_revision() -> str | None:
    """The harness checkout's commit (with "-dirty" when it has local changes); None when not a checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


@cache
def host_metadata() -> dict[str, Any]:
    return {"host": platform.node(), "os": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "harness": __version__,
            "git_revision": git_revision()}


def run_metadata(session_info: dict[str, Any], device_info: dict[str, Any],
                 settings: dict[str, Any]) -> dict[str, Any]:
    """Everything recorded about one run; session keys are prefixed ``backend_`` unless already versions."""
    meta = dict(host_metadata())
    meta.update(device_info)
    meta.update({k if k in ("cuda", "cudnn", "cublas") else f"backend_{k}": v for k, v in session_info.items()})
    meta["settings"] = settings
    return meta
