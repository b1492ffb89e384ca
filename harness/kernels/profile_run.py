"""Profiling runs: a network's timed forward passes under nsys, ncu or the PyTorch profiler (Kineto).

These are NOT timing runs: a profiler slows kernels down and serialises them (ncu replays each one), so
their record (:mod:`harness.kernels.profile_record`) carries kernel-time shares and kernel metrics, never
a latency.

Every tool profiles a fresh worker process, ``python -m harness.kernels.profile_run`` (this module), under the
interpreter the timing workers of the backend use (``Backend.worker_python``: pycaffe's for Caffe) and pinned
to the one GPU by UUID as they are. The network lives in that process (``Backend.load_in_worker``), which
loads it, runs the warm-up passes, and only then opens the capture range around the profiled passes:

- ``torch``: a ``torch.profiler`` schedule (wait 0, warm-up 1, active N): Kineto traces the N passes after
  one discarded warm-up step; the trace marks each as a ``ProfilerStep#k`` range, which the record counts.
- ``ncu``: ``ncu --profile-from-start off``; the worker calls ``cuProfilerStart`` / ``cuProfilerStop``
  around the N passes (:func:`harness.kernels.ranges.cuda_capture_range`). Kernel replay (ncu's default)
  replays every kernel in the range to collect the Table V metrics; no ``--launch-count``, which would cut
  an iteration short. ``--clock-control none``: ncu otherwise locks the GPU's clocks to base for the
  replays, and every kernel duration (the family shares) would be a base-clock one, not what a timing run
  sees. The metric set is chosen by cost (:data:`NCU_METRIC_SETS`): each replay pass collects a few
  metrics, so Table V with every warp-stall reason costs several times the passes of its five attributes.
- ``nsys``: ``nsys profile --capture-range=cudaProfilerApi --capture-range-end=stop``, the same range.

Model loading and warm-up are therefore never in a capture. Each external profiler runs under a timeout
(``--timeout``): a profiler that hangs is killed with its process group and reported in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BackendUnavailable, HarnessError
from harness.process_group import kill_group

TOOLS = ("nsys", "ncu", "torch")
#: profiled forward passes by default: ncu replays every kernel of a pass many times, so one pass
DEFAULT_ITERS = {"torch": 5, "nsys": 5, "ncu": 1}
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT_S = 1800.0
NCU_ATTRIBUTES = (
    "gpu__time_duration.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,"
    "smsp__thread_inst_executed_per_inst_executed.ratio,smsp__sass_average_branch_targets_threads_uniform.pct,"
    "dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed"
)
#: ncu metric sets by cost: ``table-v``, Table V whole (its five attributes, kernel time and registers, and
#: every warp-stall reason: about 30 metrics, the most replay passes per kernel); ``attributes``, the same
#: without the stall reasons (7 metrics, a few passes): for networks with hundreds of kernels where time is short
NCU_METRIC_SETS = {
    "table-v": NCU_ATTRIBUTES + ",regex:smsp__warp_issue_stalled_.*_per_warp_active.pct",
    "attributes": NCU_ATTRIBUTES,
}
DEFAULT_NCU_METRICS = "table-v"
#: the GPU's clocks as they are (ncu's default, ``base``, locks them to base clock for every replay)
NCU_CLOCK_CONTROL = "none"
CAPTURE_RANGES = {
    "torch": "torch.profiler schedule(wait=0, warmup=1, active=N): the N passes after the warm-up passes and "
             "one discarded profiler warm-up step",
    "ncu": "cuProfilerStart/cuProfilerStop around the N passes, ncu --profile-from-start off (kernel replay, "
           f"--clock-control {NCU_CLOCK_CONTROL})",
    "nsys": "cuProfilerStart/cuProfilerStop around the N passes, nsys --capture-range=cudaProfilerApi",
}


@dataclass(frozen=True)
class Request:
    """One profiling run: what to load, how many passes, with which tool, where the capture goes."""

    network: str
    backend: str
    batch: int
    device: str
    mode: str | None
    tool: str
    warmup: int
    iters: int
    folder: Path  # the capture folder of this configuration and tool
    python: str = sys.executable  # the backend's worker interpreter (Backend.worker_python)
    ncu_metrics: str = DEFAULT_NCU_METRICS  # a key of NCU_METRIC_SETS

    def worker_command(self) -> list[str]:
        cmd = [self.python, "-m", "harness.kernels.profile_run", self.network, "--backend", self.backend,
               "--batch", str(self.batch), "--device", self.device, "--warmup", str(self.warmup),
               "--iters", str(self.iters), "--report", str(self.folder / WORKER_REPORT)]
        if self.mode:
            cmd += ["--mode", self.mode]
        if self.tool == "torch":
            return [*cmd, "--range", "kineto", "--kineto-out", str(self.folder / "kineto.json")]
        return cmd + ["--range", "cuda"] + (["--nvtx"] if self.tool == "nsys" else [])


WORKER_REPORT = "worker.json"


def external_command(request: Request) -> tuple[list[str], Path]:
    """The command line that profiles the worker, and the file it leaves for the parsers."""
    worker = request.worker_command()
    if request.tool == "torch":
        return worker, request.folder / "kineto.json"
    exe = profiler_binary(request.tool)
    if request.tool == "nsys":
        base = request.folder / "nsys"
        return [exe, "profile", "--trace=cuda,nvtx", "--capture-range=cudaProfilerApi", "--capture-range-end=stop",
                "--force-overwrite=true", "--export=sqlite", "-o", str(base), *worker], base.with_suffix(".sqlite")
    csv_path = request.folder / "ncu.csv"
    return [exe, "--profile-from-start", "off", "--target-processes", "all", "--clock-control", NCU_CLOCK_CONTROL,
            "--csv", "--page", "raw", "--metrics", NCU_METRIC_SETS[request.ncu_metrics], "--log-file", str(csv_path),
            *worker], csv_path


def profiler_binary(tool: str) -> str:
    """The external profiler's path; BackendUnavailable naming what to install when it is not on PATH."""
    exe = shutil.which(tool)
    if exe is None:
        what = {"nsys": "Nsight Systems (nsys)", "ncu": "Nsight Compute (ncu)"}[tool]
        raise BackendUnavailable(f"{what} is not on PATH: install it (CUDA toolkit or NVIDIA's installers) "
                                 "to profile with --tool " + tool)
    return exe


def run_command(cmd: list[str], timeout_s: float, env: dict[str, str] | None = None) -> None:
    """Run a profiler (or the worker) to completion under ``timeout_s``; one-line HarnessError when it fails
    or hangs (then its whole process group is killed: the worker and anything it started)."""
    name = "the profile worker" if cmd[1:3] == ["-m", "harness.kernels.profile_run"] else Path(cmd[0]).name
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    except OSError as exc:
        raise HarnessError(f"cannot start {name} ({cmd[0]}): {exc.strerror}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise HarnessError(f"{name} did not finish within --timeout {timeout_s:g} s: killed it and its "
                           "processes; nothing was recorded") from None
    except BaseException:  # Ctrl-C, SIGTERM: the profiler and its worker must not outlive us
        kill_group(proc)
        raise
    if proc.returncode != 0:
        tail = [line for line in (err or out).strip().splitlines() if line.strip()][-3:]
        raise HarnessError(f"{name} failed (exit {proc.returncode}): " + " | ".join(tail))


def tool_version(tool: str) -> str | None:
    if tool == "torch":
        try:
            import torch
        except ImportError:
            return None
        return f"torch {torch.__version__}"
    exe = shutil.which(tool)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else None


# ---- the worker ------------------------------------------------------------------------------------


def load_session(network: str, backend: str, batch: int, device: str, mode: str | None, nvtx: bool = False):
    """The network loaded in this process (so the capture range opened here covers its kernels), with
    per-layer ``layer:<name>`` ranges where the backend can mark them."""
    from harness import zoo
    from harness.backends.base import RunTarget, get_backend

    graph = zoo.resolve(network)
    session = get_backend(backend).load_in_worker(RunTarget(graph=graph.with_inputs(batch=batch), network=network,
                                                            batch=batch, device=device, mode=mode))
    layers = session.mark_layers(nvtx=nvtx)
    return session, layers


def profile_kineto(session: Any, device: str, iters: int, out: Path) -> None:
    """The N passes under a torch.profiler schedule: one traced-and-discarded warm-up step, then N active
    steps; the trace is written when the last one ends."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda") and torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, schedule=schedule(wait=0, warmup=1, active=iters, repeat=1),
                 on_trace_ready=lambda p: p.export_chrome_trace(str(out))) as prof:
        for _ in range(1 + iters):
            session.forward()
            prof.step()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.kernels.profile_run",
                                description="load a network, warm it up, and run N forward passes inside the "
                                            "profilers' capture range (launched by `harness profile`)")
    p.add_argument("network")
    p.add_argument("--backend", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--mode", default=None)
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--range", choices=("cuda", "kineto"), required=True,
                   help="cuda: cuProfilerStart/Stop (ncu, nsys); kineto: a torch.profiler schedule")
    p.add_argument("--kineto-out", type=Path, default=None, help="the Kineto trace (--range kineto)")
    p.add_argument("--report", type=Path, required=True, help="JSON: what ran, how many passes in the range")
    p.add_argument("--nvtx", action="store_true", help="layer ranges also as NVTX ranges (for nsys)")
    a = p.parse_args(argv)
    from harness.kernels.ranges import cuda_capture_range

    if a.warmup < 1 or a.iters < 1:
        p.error("--warmup and --iters must be at least 1 (a warm-up pass creates the CUDA context before the "
                "capture range opens)")
    started = time.perf_counter()
    session, layers = load_session(a.network, a.backend, a.batch, a.device, a.mode, a.nvtx)
    with session:
        load_s = time.perf_counter() - started
        for _ in range(a.warmup):
            session.forward()
        if a.range == "kineto":
            if a.kineto_out is None:
                p.error("--range kineto needs --kineto-out")
            profile_kineto(session, a.device, a.iters, a.kineto_out)
        else:
            with cuda_capture_range():
                for _ in range(a.iters):
                    session.forward()
        info = dict(session.info)
    a.report.write_text(json.dumps({"warmup_iters": a.warmup, "iterations": a.iters, "load_s": load_s,
                                    "layers_marked": layers, "session": info}, default=str) + "\n")
    return 0


# ---- the parent: run, attribute, record ------------------------------------------------------------


def count_steps(trace: Any) -> int | None:
    """Profiled iterations as a Kineto trace marks them (``ProfilerStep#k`` ranges, one per step of a
    torch.profiler schedule); None where the capture marks none (other formats, or no schedule)."""
    from harness.kernels.ranges import KINETO_STEP_PREFIX

    return len({r.name for r in trace.ranges if r.name.startswith(KINETO_STEP_PREFIX)}) or None


def top_cpu_ops(trace: Any, limit: int = 10) -> list[dict[str, Any]]:
    """The host ops that took longest (inclusive time, summed over calls: nested ops overlap), for
    captures with host ops (Kineto): what a CPU run, which has no GPU kernels, spent its time in."""
    totals: dict[str, list[float]] = {}
    for op in trace.cpu_ops:
        entry = totals.setdefault(op.name, [0.0, 0])
        entry[0] += op.end_ns - op.start_ns
        entry[1] += 1
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])[:limit]
    return [{"name": name, "inclusive_ns": ns, "calls": int(calls)} for name, (ns, calls) in ranked]


def build_record(config: Any, tool: str, capture: Path, profiles_folder: Path, worker: dict[str, Any] | None,
                 capture_range: str | None, gpu_uuid: str | None, notes: list[str], synthetic: bool = False):
    """Parse ``capture``, attribute it, compute Table V where it has metrics: the record
    (:class:`harness.kernels.profile_record.ProfileRecord`) and the attribution it summarises."""
    from harness import __version__
    from harness.kernels.attribution import attribute
    from harness.kernels.metrics import table_v
    from harness.kernels.parsers import load_trace
    from harness.kernels.profile_record import ProfileRecord
    from harness.results.metadata import git_revision

    trace = load_trace(capture)
    attribution = attribute(trace)
    rows = table_v(trace.metrics) if trace.metrics else None
    kernels = sum(calls for _, calls in trace.totals_by_name().values())
    if worker is not None and (steps := count_steps(trace)) is not None and steps != worker["iterations"]:
        notes.append(f"the capture marks {steps} profiled iteration(s), the worker ran {worker['iterations']}")
    record = ProfileRecord(
        config=config, tool=tool, host=platform.node(), capture=os.path.relpath(capture, profiles_folder),
        capture_range=capture_range, warmup_iters=None if worker is None else worker["warmup_iters"],
        iterations=None if worker is None else worker["iterations"], iterations_in_capture=count_steps(trace),
        gpu_kernels=kernels, attribution=attribution.to_json(),
        table_v=None if rows is None else [{"family": r.family, "kernels": r.kernels, "invocations": r.invocations,
                                            **r.values} for r in rows],
        gpu_uuid=gpu_uuid, tool_version=tool_version(tool) if worker is not None else None,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), harness=__version__,
        git_revision=git_revision(), notes=notes, cpu_ops=top_cpu_ops(trace), synthetic=synthetic)
    return record, attribution


if __name__ == "__main__":
    sys.exit(main())
