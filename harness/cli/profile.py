"""``harness profile NET --backend B --tool nsys|ncu|torch``: a profiling run, then the family table."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.cli.argtypes import backend_name, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from harness.kernels.profile_run import TOOLS

    p.add_argument("network", metavar="NET")
    p.add_argument("--backend", required=True, type=backend_name, help="caffe, pytorch, onnxruntime or opencv")
    p.add_argument("--tool", choices=TOOLS, required=True,
                   help="nsys / ncu (binaries on PATH, NVIDIA GPU) or torch (torch.profiler/Kineto, CPU too)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--device", default=None, help="cpu or cuda:N (default: cuda:0 for nsys/ncu, cpu for torch "
                                                  "without a GPU)")
    p.add_argument("--iters", type=positive_int, default=5, help="profiled forward passes")
    p.add_argument("--out", type=Path, default=None, help="directory for the capture and profile.json")


def run(args: argparse.Namespace) -> int:
    from harness.cli.kernels import print_attribution
    from harness.kernels import profile_run as pr
    from harness.kernels.attribution import attribute
    from harness.kernels.parsers import load_trace

    device = args.device or _default_device(args.tool)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"harness-profile-{args.network}-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.tool == "torch":
        capture = pr.torch_profile(out, args.network, args.backend, args.batch, device, args.iters)
    else:
        cmd, capture = pr.external_command(args.tool, out, args.network, args.backend, args.batch, device,
                                           args.iters)
        pr.run_external(cmd)
    trace = load_trace(capture)
    result = attribute(trace)
    if trace.events or trace.summaries:
        print_attribution(f"{args.network} ({args.backend}, batch {args.batch}, {args.tool})", result, 10)
    else:
        print(f"{args.network}: no GPU kernels were recorded (device {device}): {len(trace.cpu_ops)} CPU ops were")
        _print_cpu_ops(trace)
    record = pr.write_record(out, args.tool, args.network, args.backend, args.batch, device, args.iters, capture,
                             result.to_json())
    print(f"capture: {capture}\nrecord:  {record} (kind 'profile': not a timing result)")
    return 0


def _default_device(tool: str) -> str:
    if tool != "torch":
        return "cuda:0"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _print_cpu_ops(trace) -> None:
    from collections import defaultdict

    totals: dict[str, float] = defaultdict(float)
    for op in trace.cpu_ops:
        totals[op.name] += op.end_ns - op.start_ns
    for name, ns in sorted(totals.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {ns / 1e6:10.3f} ms  {name}  (inclusive CPU time, summed over calls)")
