"""``harness profile NET --backend B --tool nsys|ncu|torch --out RESULTS_DIR``: profile the timed forward
passes of one configuration, print the kernel-family table, and write its kernel-attribution record into
the results directory, where ``harness report`` reads it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.argtypes import backend_name, output_path, positive_int
from harness.errors import HarnessError
from harness.kernels.synthetic import SYNTHETIC_TITLE

if TYPE_CHECKING:
    from harness.kernels.attribution import Attribution
    from harness.kernels.profile_record import ProfileRecord
    from harness.results.records import Config


def add_arguments(p: argparse.ArgumentParser) -> None:
    from harness.cli.bench import DEFAULT_OUT, RESULTS_DIR_ENV
    from harness.kernels.profile_run import (
        DEFAULT_ITERS,
        DEFAULT_NCU_METRICS,
        DEFAULT_TIMEOUT_S,
        DEFAULT_WARMUP,
        NCU_METRIC_SETS,
        TOOLS,
    )

    p.add_argument("network", metavar="NET")
    p.add_argument("--backend", required=True, type=backend_name, help="caffe, pytorch, onnxruntime or opencv")
    p.add_argument("--tool", choices=TOOLS, required=True,
                   help="nsys / ncu (binaries on PATH, NVIDIA GPU) or torch (torch.profiler/Kineto, CPU too)")
    p.add_argument("--mode", default=None, help="the backend's mode (default: its default mode)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--device", default=None, help="cpu or cuda:N (default: cuda:0 for nsys/ncu, cpu for torch "
                                                  "without a GPU)")
    p.add_argument("--warmup", type=positive_int, default=DEFAULT_WARMUP,
                   help=f"forward passes before the capture range opens (default {DEFAULT_WARMUP})")
    p.add_argument("--iters", type=positive_int, default=None,
                   help="forward passes inside the capture range (default: " +
                        ", ".join(f"{t} {n}" for t, n in DEFAULT_ITERS.items()) + ")")
    p.add_argument("--ncu-metrics", choices=list(NCU_METRIC_SETS), default=DEFAULT_NCU_METRICS,
                   help="ncu's metric set: table-v (Table V whole, with every warp-stall reason: the most replay "
                        "passes) or attributes (its five attributes, no stall reasons: a few passes per kernel)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"kill the profiler and its worker after S seconds (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--capture", type=Path, default=None, metavar="FILE",
                   help="record an existing capture of this configuration instead of running (made outside the "
                        "harness: the record says its iterations and capture range are unknown; a capture that "
                        "carries the synthetic marker inside is recorded as synthetic, whatever its name)")
    p.add_argument("--synthetic", action="store_true",
                   help="with --capture: the capture is made up (a test fixture, a hand-edited file): recorded as "
                        "synthetic, so no report ever presents it as a measurement")
    p.add_argument("--hardware", default=None, metavar="MODEL",
                   help="with --capture: the device model it was made on, when that device is not on this host")
    p.add_argument("--out", type=output_path, default=None, metavar="RESULTS_DIR",
                   help=f"results directory (default: ${RESULTS_DIR_ENV} when set, else {DEFAULT_OUT}); the "
                        "record goes to RESULTS_DIR/profiles/, the capture to RESULTS_DIR/profiles/captures/")


def run(args: argparse.Namespace) -> int:
    from harness.cli.bench import default_out
    from harness.cli.kernels import print_attribution
    from harness.kernels import profile_run as pr
    from harness.kernels.profile_record import (
        CAPTURES_DIR,
        check_replaceable,
        profile_stem,
        profiles_dir,
        write_profile,
    )
    from harness.measure.devices import identify
    from harness.measure.sweep import backend_default_mode
    from harness.results.records import Config

    if args.timeout <= 0:
        raise HarnessError(f"--timeout must be positive, got {args.timeout:g}")
    if args.hardware is not None and args.capture is None:
        raise HarnessError("--hardware names the device of an imported --capture; a run here identifies its own")
    if args.synthetic and args.capture is None:
        raise HarnessError("--synthetic marks an imported --capture as made up; a profiler run here is a measurement")
    if args.capture is None and args.tool != "torch":
        pr.profiler_binary(args.tool)  # the missing tool is the first thing to say
    device = args.device or _default_device(args.tool)
    if args.hardware is not None:
        model, uuid = args.hardware, None
    else:
        identity = identify(device)
        model, uuid = identity.model, identity.uuid
    # a run: the default mode by its name, as a sweep records it, so that a profile and the timing records it
    # explains name the same configuration; an imported capture: the mode given, else not known (None)
    mode = args.mode or (None if args.capture is not None else backend_default_mode(args.backend, device))
    config = Config(args.network, args.backend, args.batch, device, mode, hardware=model)
    out = args.out or default_out()
    if out.exists() and not out.is_dir():
        raise HarnessError(f"{out}: results directory is a file")
    check_replaceable(out, config, args.tool)
    if args.capture is not None and not args.capture.is_file():
        raise HarnessError(f"{args.capture}: no such capture file")
    # The new capture is made beside the previous one, which it replaces only once it has been read.
    final = profiles_dir(out) / CAPTURES_DIR / profile_stem(config, args.tool)
    folder = final.with_name(final.name + ".partial")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        capture, record, attribution = _capture(args, config, device, mode, uuid, folder, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    folder.rename(final)
    capture = final / capture.name
    record.capture = os.path.relpath(capture, profiles_dir(out))
    title = f"{args.network} ({args.backend}, batch {args.batch}, {args.tool}, {device})"
    if record.synthetic:
        title = SYNTHETIC_TITLE + title
    if record.gpu_kernels:
        print_attribution(title, attribution, 10)
    else:
        print(f"{title}: no GPU kernels were recorded; the capture holds CPU work only. Longest host ops:")
        for op in record.cpu_ops:
            print(f"  {op['inclusive_ns'] / 1e6:10.3f} ms  {op['calls']:5d} x  {op['name']}  (inclusive, summed)")
    path = write_profile(out, record)
    covered = "unknown" if record.iterations is None else str(record.iterations)
    print(f"capture: {capture}\nrecord:  {path} (kernel profile, not a timing result; profiled iterations: "
          f"{covered}" + (f", {record.iterations_in_capture} marked in the capture" if
                          record.iterations_in_capture is not None else "") + ")")
    return 0


def _capture(args: argparse.Namespace, config: Config, device: str, mode: str | None, uuid: str | None,
             folder: Path, out: Path) -> tuple[Path, ProfileRecord, Attribution]:
    """Make (or import) the capture in ``folder`` and read it into its record."""
    from harness.backends.base import get_backend
    from harness.kernels import profile_run as pr
    from harness.kernels.profile_record import profiles_dir

    if args.capture is not None:
        capture = folder / args.capture.name
        shutil.copyfile(args.capture, capture)
        worker, capture_range, notes = None, None, [f"imported capture {args.capture.name}: made outside the "
                                                    "harness, its capture range and iterations are not known"]
        synthetic = _synthetic(args.capture, args.synthetic, notes)
    else:
        backend = get_backend(args.backend)
        python, env = backend.worker_python()
        env = {**env, **backend.worker_env(device, mode)}
        worker_device = device
        if uuid is not None:  # pinned to this one GPU by UUID, as timing workers are: it sees cuda:0
            env.update(CUDA_VISIBLE_DEVICES=uuid, CUDA_DEVICE_ORDER="PCI_BUS_ID")
            worker_device = "cuda:0"
        request = pr.Request(args.network, args.backend, args.batch, worker_device, mode, args.tool,
                             args.warmup, args.iters or pr.DEFAULT_ITERS[args.tool], folder, python,
                             args.ncu_metrics)
        cmd, capture = pr.external_command(request)
        pr.run_command(cmd, args.timeout, env)
        report = folder / pr.WORKER_REPORT
        if not report.is_file():
            raise HarnessError(f"{args.tool} ended without the profile worker's report ({report}): the worker "
                               "did not run to its end under the profiler")
        worker = json.loads(report.read_text())
        capture_range, notes, synthetic = pr.CAPTURE_RANGES[args.tool], [], False
        if args.tool == "ncu":
            notes.append(f"ncu metric set: {args.ncu_metrics}")
    record, attribution = pr.build_record(config, args.tool, capture, profiles_dir(out), worker, capture_range,
                                          uuid, notes, synthetic=synthetic)
    return capture, record, attribution


def _synthetic(capture: Path, flagged: bool, notes: list[str]) -> bool:
    """Whether an imported capture is made up: the user says so (--synthetic), or its content carries the marker
    of this project's synthetic captures (never its name: a renamed copy is still made up)."""
    from harness.kernels.synthetic import MARKER, is_synthetic_capture

    marked = is_synthetic_capture(capture)
    if marked:
        notes.append(f"SYNTHETIC: the capture carries {MARKER} (made up by kernels_profiles/make_synthetic.py)")
    if flagged:
        notes.append("SYNTHETIC: recorded with --synthetic (the user says the capture is made up)")
    return marked or flagged


def _default_device(tool: str) -> str:
    """cuda:0 for nsys and ncu; for the PyTorch profiler, cuda:0 where CUDA sees a GPU, else the CPU."""
    from harness.measure.sweep import gpu_present

    return "cuda:0" if tool != "torch" or gpu_present() else "cpu"
