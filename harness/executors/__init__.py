"""Executors decide WHERE the worker of each configuration runs (:mod:`harness.worker`): one after
another on this machine (``local``), one lane per GPU of this machine (``multi-gpu``), or as tasks of a
Slurm job array (``slurm``). They never measure anything themselves."""

from __future__ import annotations

import importlib

from harness.errors import HarnessError
from harness.executors.base import Executor, SweepRequest

# name -> "module:Class", imported when chosen
EXECUTORS: dict[str, str] = {
    "local": "harness.executors.local:LocalExecutor",
    "multi-gpu": "harness.executors.multi_gpu:MultiGpuExecutor",
    "slurm": "harness.executors.slurm:SlurmExecutor",
}


def get_executor(name: str) -> type[Executor]:
    try:
        module, cls = EXECUTORS[name].split(":")
    except KeyError:
        raise HarnessError(f"unknown executor '{name}' (known: {', '.join(EXECUTORS)})") from None
    return getattr(importlib.import_module(module), cls)


__all__ = ["EXECUTORS", "Executor", "SweepRequest", "get_executor"]
