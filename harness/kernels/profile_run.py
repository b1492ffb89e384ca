"""Profiling runs: a network's forward passes under nsys, ncu or the PyTorch profiler (Kineto).

These are NOT timing runs: a profiler slows kernels down and serialises them (ncu replays each one), so
their record is labelled ``"kind": "profile"`` and carries no latency figure of the kind timing runs
report. ``python -m harness.kernels.profile_run`` is the worker the external profilers launch.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from harness.errors import BackendUnavailable, HarnessError

TOOLS = ("nsys", "ncu", "torch")
NCU_METRICS = (
    "gpu__time_duration.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,"
    "smsp__thread_inst_executed_per_inst_executed.ratio,smsp__sass_average_branch_targets_threads_uniform.pct,"
    "dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,"
    "regex:smsp__warp_issue_stalled_.*_per_warp_active.pct"
)


def load_session(network: str, backend: str, batch: int, device: str, nvtx: bool = False):
    """The loaded network, with per-layer ``layer:<name>`` ranges where the backend can mark them."""
    from harness import zoo
    from harness.backends.base import RunTarget, get_backend

    graph = zoo.resolve(network)
    session = get_backend(backend).load(RunTarget(graph=graph.with_inputs(batch=batch), network=network,
                                                  batch=batch, device=device))
    session.mark_layers(nvtx=nvtx)
    return session


def run_forwards(network: str, backend: str, batch: int, device: str, warmup: int, iters: int,
                 nvtx: bool = False) -> None:
    with load_session(network, backend, batch, device, nvtx) as session:
        for _ in range(warmup):
            session.forward()
        for _ in range(iters):
            session.forward()


def external_command(tool: str, out: Path, network: str, backend: str, batch: int, device: str,
                     iters: int) -> tuple[list[str], Path]:
    """The profiler command line and the file it leaves for the parsers."""
    exe = shutil.which(tool)
    if exe is None:
        what = {"nsys": "Nsight Systems (nsys)", "ncu": "Nsight Compute (ncu)"}[tool]
        raise BackendUnavailable(f"{what} is not on PATH: install it (CUDA toolkit or NVIDIA's installers) "
                                 "to profile with --tool " + tool)
    worker = [sys.executable, "-m", "harness.kernels.profile_run", network, "--backend", backend,
              "--batch", str(batch), "--device", device, "--iters", str(iters)]
    if tool == "nsys":
        base = out / "nsys"
        return [exe, "profile", "--trace=cuda,nvtx", "--force-overwrite=true", "--export=sqlite",
                "-o", str(base), *worker, "--nvtx"], base.with_suffix(".sqlite")
    csv_path = out / "ncu.csv"
    return [exe, "--csv", "--page", "raw", "--metrics", NCU_METRICS, "--log-file", str(csv_path), *worker], csv_path


def torch_profile(out: Path, network: str, backend: str, batch: int, device: str, iters: int) -> Path:
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda") and torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with load_session(network, backend, batch, device) as session:
        session.forward()  # warm-up outside the profile (lazy init, cuDNN autotuning)
        with profile(activities=activities) as prof:
            for _ in range(iters):
                session.forward()
    path = out / "kineto.json"
    prof.export_chrome_trace(str(path))
    return path


def write_record(out: Path, tool: str, network: str, backend: str, batch: int, device: str, iters: int,
                 capture: Path, attribution: dict) -> Path:
    record = {"kind": "profile", "label": f"profile:{tool}", "tool": tool, "network": network, "backend": backend,
              "batch": batch, "device": device, "iterations": iters, "capture": capture.name,
              "host": platform.node(), "cpu": platform.processor() or platform.machine(),
              "note": "profiler run: kernel times are under instrumentation, not comparable to timing runs",
              "attribution": attribution}
    path = out / "profile.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def run_external(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise HarnessError(f"{cmd[0]} failed (exit {proc.returncode}): " + " | ".join(tail))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.kernels.profile_run")
    p.add_argument("network")
    p.add_argument("--backend", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--nvtx", action="store_true", help="layer ranges also as NVTX ranges (for nsys)")
    a = p.parse_args(argv)
    run_forwards(a.network, a.backend, a.batch, a.device, a.warmup, a.iters, a.nvtx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
