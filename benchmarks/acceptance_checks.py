"""What each step of benchmarks/gpu_acceptance.sh made, in one line: the script's steps are ``ok`` only when
this says they made their records, captures or figures; otherwise ``failed`` with the line as the reason.

    python acceptance_checks.py preflight --mode gpu|caffe|dry [--bundle PATH]
    python acceptance_checks.py keys RESULTS                       # the record keys so far (one per line)
    python acceptance_checks.py records RESULTS --before FILE --expect N
    python acceptance_checks.py profiles RESULTS NET:TOOL ...      # the profiles a step must have made
    python acceptance_checks.py memory RESULTS                     # the fresh-worker check of GPU memory
    python acceptance_checks.py summary RESULTS                    # markdown: every record and profile

Exit status: 0 the step made what it should; 1 it did not (the line says what is missing); 2 (preflight) this
interpreter cannot run the harness or its GPU steps. ``preflight`` imports nothing of the harness, so it
answers under any Python 3.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CANNOT_RUN = 2


def preflight(mode: str, bundle: str | None) -> int:
    """The interpreter and tools a run needs, checked before anything else: torch (with CUDA for a GPU run),
    rich, nvidia-ml-py (NVML initialised for a GPU run) and the harness's own dependencies; ncu for a GPU run.
    What is missing outright is found first, without importing anything (seconds, for torch); only then are
    CUDA and NVML asked."""
    found, missing = [f"python {sys.version.split()[0]} ({sys.executable})"], []
    for module in ("numpy", "yaml", "pandas", "rich", "pynvml", "torch"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"no {module}")
    ncu = shutil.which("ncu")
    if mode != "dry" and ncu is None:
        missing.append("no ncu on PATH (Nsight Compute: the kernel metrics of Table V)")
    if mode == "caffe" and not (bundle and Path(bundle).is_file()):
        missing.append(f"no Caffe bundle at {bundle} (docker/caffe-bundle.sh makes one)")
    if not missing and mode != "dry":
        missing = gpu_missing(found, ncu)
    if missing:
        print(f"cannot run: {sys.executable}: " + "; ".join(missing))
        return CANNOT_RUN
    print("; ".join(found + ([] if mode != "dry" else ["numpy, yaml, pandas, rich, pynvml, torch found"])))
    return 0


def gpu_missing(found: list[str], ncu: str | None) -> list[str]:
    """What a GPU run lacks that only importing can tell: CUDA in torch, a working NVML, a working ncu."""
    missing = []
    try:
        import torch
    except Exception as exc:  # a broken install's own error
        return [f"torch does not import ({type(exc).__name__}: {exc})"]
    if not torch.cuda.is_available():
        missing.append(f"torch {torch.__version__} sees no CUDA GPU (a CPU build, or no driver)")
    else:
        found.append(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
                     f"{torch.cuda.get_device_name(0)}")
    try:
        import pynvml

        pynvml.nvmlInit()
        found.append(f"NVML driver {pynvml.nvmlSystemGetDriverVersion()}")
        pynvml.nvmlShutdown()
    except Exception as exc:
        missing.append(f"NVML cannot initialise ({exc})")
    if ncu is not None:
        version = subprocess.run([ncu, "--version"], capture_output=True, text=True, timeout=30).stdout
        found.append(f"ncu {(version.strip().splitlines() or ['?'])[-1]}")
    return missing


def _merged(results: str) -> Any:
    from harness.results.store import read_results

    return read_results([results])


def keys(results: str) -> int:
    for record in _merged(results).records:
        print(record.key)
    return 0


def records(results: str, before: str, expect: int) -> int:
    """The records a step added: at least ``expect``, every one ``ok``; compiled ones really compiled."""
    known = set(Path(before).read_text().split()) if Path(before).is_file() else set()
    new = [r for r in _merged(results).records if r.key not in known]
    counts = collections.Counter(r.status for r in new)
    text = f"{len(new)} record(s) of {expect}: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                                     or "none")
    problems = [f"{r.config.network} B={r.config.batch} {r.config.mode}: {r.status}: {(r.message or '')[:100]}"
                for r in new if r.status != "ok"]
    for r in new:
        compiled = r.metadata.get("backend_compile")
        if r.config.mode == "compile" and r.status == "ok" and not (compiled or {}).get("compiled_graph_ran"):
            problems.append(f"{r.config.network} B={r.config.batch}: compile fell back to eager ({compiled})")
    energy = [r for r in new if r.energy is not None]
    if energy:
        short = [r for r in energy if r.energy.window_too_short]
        text += f"; energy: {len(energy) - len(short)} window(s) long enough to be evidence"
        if short:
            text += f", {len(short)} too short ({short[0].energy.window_too_short})"
    if len(new) < expect or problems:
        print("FAILED: " + text + ("; " + " | ".join(problems) if problems else ""))
        return 1
    print(text)
    return 0


def profiles(results: str, wanted: list[str], gpu: bool) -> int:
    """Each NET:TOOL profile record exists, with its capture, and holds GPU kernels (host ops on the CPU)."""
    from harness.kernels.profile_record import profiles_dir, read_profiles

    made = read_profiles(results)
    lines, missing = [], []
    for item in wanted:
        net, _, tool = item.partition(":")
        found = [p for p in made if p.config.network == net and p.tool == tool]
        if not found:
            missing.append(f"{net} {tool}: no profile record")
            continue
        p = found[-1]
        capture = profiles_dir(results) / (p.capture or "")
        if not p.capture or not capture.is_file():
            missing.append(f"{net} {tool}: record without its capture ({p.capture})")
            continue
        if gpu and not p.gpu_kernels:
            missing.append(f"{net} {tool}: no GPU kernel in the capture")
            continue
        top = sorted(p.family_pct().items(), key=lambda kv: -kv[1])[:3]
        what = (f"{p.gpu_kernels} GPU kernels ({', '.join(f'{f} {v:.0f}%' for f, v in top)})" if p.gpu_kernels
                else f"host ops only ({len(p.cpu_ops)} listed)")
        table_v = f", Table V rows {len(p.table_v)}" if p.table_v else ""
        lines.append(f"{net} {tool}: {what}{table_v}")
    if missing:
        print("FAILED: " + "; ".join(missing + lines))
        return 1
    print("; ".join(lines))
    return 0


def memory(results: str) -> int:
    """The fresh-worker check: device memory at each GPU window's start does not grow across configurations,
    and no memory of our own worker exists before it loads its network. Where NVML attributes no memory to
    any of our workers (a container: NVML lists the host's PIDs), the second half cannot be checked, and the
    step says so instead of passing."""
    gpu = [r for r in _merged(results).records if r.config.device.startswith("cuda") and r.status == "ok"]
    starts = [r.memory.device_used_start_bytes for r in gpu if r.memory.device_used_start_bytes is not None]
    if not starts:
        print("FAILED: no GPU record with the device memory at its window's start")
        return 1
    spread = (max(starts) - min(starts)) / 2**20
    low, high = min(starts) / 2**20, max(starts) / 2**20
    text = (f"{len(gpu)} GPU records: device memory at window start {low:.0f}..{high:.0f} MiB "
            f"(spread {spread:.0f} MiB, limit 64)")
    attributed = [r for r in gpu if r.memory.process_device_peak_bytes]
    if not attributed:
        print(f"FAILED: {text}; NVML attributed no device memory to any of our workers (in a container NVML "
              "lists the host's PIDs), so whether a worker starts without memory of its own cannot be checked here")
        return 1
    early = [r.key for r in gpu if r.memory.process_device_start_bytes]
    text += f"; our memory attributed in {len(attributed)}, present before loading in {len(early)}"
    if spread >= 64 or early:
        print("FAILED: " + text)
        return 1
    print(text)
    return 0


def summary(results: str) -> int:
    """Every record and every profile of the run, as markdown tables."""
    from harness.kernels.profile_record import read_profiles

    merged = _merged(results)
    counts = collections.Counter(r.status for r in merged.records)
    print(f"{len(merged.records)} configuration(s): " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                                         or "none"))
    print()
    print("| network | backend | mode | device | B | status | median ms | ci (coverage) | energy J/forward | "
          "energy source | window | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in merged.records:
        c, lat, e = r.config, r.latency, r.energy
        ms = f"{lat.median_s * 1e3:.3f}" if lat else "-"
        ci = (f"{lat.ci_low_s * 1e3:.3f}..{lat.ci_high_s * 1e3:.3f} ({lat.ci_coverage:.2f})"
              if lat and lat.ci_coverage is not None else "-")
        ej = f"{e.energy_per_forward_j:.4f}" if e and e.energy_per_forward_j else "-"
        src = f"{e.power_source}/{e.energy_source}" if e else "-"
        window = ("too short" if e.window_too_short else f"{e.duration_s:.1f} s, evidence") if e else "-"
        note = (r.message or "")[:80].replace("|", "/")
        print(f"| {c.network} | {c.backend} | {c.mode} | {c.device} {c.hardware or ''} | {c.batch} | {r.status} | "
              f"{ms} | {ci} | {ej} | {src} | {window} | {note} |")
    made = read_profiles(results)
    print()
    print(f"{len(made)} kernel profile(s):")
    print()
    print("| network | backend | tool | device | GPU kernels | top families | Table V | capture |")
    print("|---|---|---|---|---|---|---|---|")
    for p in made:
        top = ", ".join(f"{f} {v:.0f}%" for f, v in sorted(p.family_pct().items(), key=lambda kv: -kv[1])[:3])
        print(f"| {p.config.network} | {p.config.backend} | {p.tool} | {p.config.device} | {p.gpu_kernels} | "
              f"{top or '-'} | {'yes' if p.table_v else '-'} | {p.capture} |")
    for line in merged.warnings():
        print(f"\n{line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    pre = sub.add_parser("preflight")
    pre.add_argument("--mode", choices=("gpu", "caffe", "dry"), required=True)
    pre.add_argument("--bundle", default=None)
    sub.add_parser("keys").add_argument("results")
    rec = sub.add_parser("records")
    rec.add_argument("results")
    rec.add_argument("--before", required=True)
    rec.add_argument("--expect", type=int, required=True)
    prof = sub.add_parser("profiles")
    prof.add_argument("results")
    prof.add_argument("wanted", nargs="+", metavar="NET:TOOL")
    prof.add_argument("--cpu", action="store_true", help="a CPU run: host ops, no GPU kernels")
    sub.add_parser("memory").add_argument("results")
    sub.add_parser("summary").add_argument("results")
    a = p.parse_args(argv)
    if a.what == "preflight":
        return preflight(a.mode, a.bundle)
    if a.what == "keys":
        return keys(a.results)
    if a.what == "records":
        return records(a.results, a.before, a.expect)
    if a.what == "profiles":
        return profiles(a.results, a.wanted, gpu=not a.cpu)
    if a.what == "memory":
        return memory(a.results)
    return summary(a.results)


if __name__ == "__main__":
    sys.exit(main())
