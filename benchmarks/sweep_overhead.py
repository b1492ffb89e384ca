"""Sweep overhead: how much of a sweep's wall time is measurement, with the fork server and without it.

Run: python benchmarks/sweep_overhead.py [--rounds 1] [--cold] [--keep DIR]

A fixed 16-configuration sweep - ``harness bench squeezenet_v1.1 mobilenet_v1 --batch 1,4``: every CPU
backend (caffe, onnxruntime, opencv, pytorch where all are installed) x B=1,4, each backend in its default
mode, the CPU defaults - runs in a process of its own, once with the fork server (workers forked from warm
parents, harness.worker_start) and once with ``--no-fork-server`` (every worker a fresh interpreter),
alternating over ``--rounds``.

For each it prints what ``bench`` prints at its end (harness.cli.bench.sweep_overhead): the sweep
efficiency (sum of the records' measurement windows - idle baseline, warm-up, timed phase - over the
sweep's wall time from its start to its last record) and the median start-up per configuration per
backend (from the end of the configuration before it to its own end, less its window); beside them the
process's wall time (interpreter start and the summary included) and the median peak RSS of the workers
per backend (a forked worker does not count the library pages only its parent's imports touched).

The bars (issue 24): efficiency >= 0.70 and no backend's median start-up above 0.5 s with the fork server,
on a quiet 2-core machine (``cat /proc/loadavg`` below 0.5): the load average is printed before and after.
By default the cache (HARNESS_CACHE_DIR, converted prototxts, weights, ONNX exports) is primed by one
untimed sweep first, as every sweep after the first finds it; ``--cold`` gives each run an empty one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.cli.bench import sweep_overhead
from harness.results.store import ResultsStore

NETWORKS = ["squeezenet_v1.1", "mobilenet_v1"]
BACKENDS = ["caffe", "onnxruntime", "opencv", "pytorch"]
BATCHES = "1,4"
EFFICIENCY_BAR, STARTUP_BAR_S = 0.70, 0.5
LINE = re.compile(r"sweep efficiency [0-9.]+: measurement windows [0-9.]+ s of ([0-9.]+) s")


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def run_bench(out: Path, fork_server: bool, env: dict[str, str]) -> dict[str, object]:
    command = [sys.executable, "-m", "harness", "bench", *NETWORKS, "--batch", BATCHES, "--out", str(out)]
    command += [] if fork_server else ["--no-fork-server"]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    process_s = time.monotonic() - started
    found = LINE.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    records = ResultsStore(out).records()
    overhead = sweep_overhead(records, float(found.group(1)))
    rss: dict[str, list[float]] = {}
    for record in records:
        if record.memory is not None and record.memory.host_rss_peak_bytes:
            rss.setdefault(record.config.backend, []).append(record.memory.host_rss_peak_bytes / 2**20)
    not_ok = [f"{r.key}: {r.status}: {r.message}" for r in records if r.status != "ok"]
    hows = {str((r.metadata.get("worker_start") or {}).get("how")) for r in records if r.status == "ok"}
    return {"overhead": overhead, "process_s": process_s, "rss": {b: statistics.median(v) for b, v in rss.items()},
            "not_ok": not_ok, "started": ",".join(sorted(hows)), "configs": len(records),
            "backends": sorted({r.config.backend for r in records})}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1, help="fork server on/off pairs, alternating (default 1)")
    p.add_argument("--cold", action="store_true", help="an empty cache for every run (a first sweep)")
    p.add_argument("--keep", type=Path, default=None, help="keep the results directories here")
    args = p.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sweep-overhead-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    load_before = load_average()
    if not args.cold:
        run_bench(folder / "prime", True, env)
    runs: list[tuple[str, dict[str, object]]] = []
    for n in range(args.rounds):
        for fork_server in (True, False):
            label = "fork server" if fork_server else "no fork server"
            run_env = dict(env)
            if args.cold:
                run_env["HARNESS_CACHE_DIR"] = str(folder / f"cache-{n}-{int(fork_server)}")
            runs.append((label, run_bench(folder / f"round{n}-{'fork' if fork_server else 'spawn'}", fork_server,
                                          run_env)))
    load_after = load_average()

    ran = runs[0][1]["backends"]
    print(f"sweep overhead: {' '.join(NETWORKS)} x {', '.join(ran)} x B={BATCHES} "  # type: ignore[arg-type]
          f"({runs[0][1]['configs']} configurations per sweep), {'cold' if args.cold else 'primed'} cache, "
          f"{os.cpu_count()} CPUs, load average {load_before} before, {load_after} after")
    if ran != BACKENDS:
        print(f"note: not every backend of the fixed sweep is installed here (expected {', '.join(BACKENDS)})")
    backends = sorted({b for _, run in runs for b in run["overhead"].startup_s})  # type: ignore[attr-defined]
    head = f"{'run':<16}{'efficiency':>11}{'windows s':>10}{'sweep s':>9}{'process s':>10}"
    print(head + "".join(f"{'start ' + b[:6]:>13}" for b in backends) + "".join(f"{'MB ' + b[:6]:>11}"
                                                                                 for b in backends))
    for label, run in runs:
        o = run["overhead"]
        row = (f"{label:<16}{o.efficiency:>11.2f}{o.window_s:>10.1f}{o.wall_s:>9.1f}"  # type: ignore[attr-defined]
               f"{run['process_s']:>10.1f}")
        row += "".join(f"{o.startup_s.get(b, float('nan')):>13.2f}" for b in backends)  # type: ignore[attr-defined]
        row += "".join(f"{run['rss'].get(b, float('nan')):>11.0f}" for b in backends)  # type: ignore[attr-defined]
        print(row + f"   (workers {run['started']})")
        for line in run["not_ok"]:  # type: ignore[attr-defined]
            print(f"    not ok: {line}")
    forked = [run["overhead"] for label, run in runs if label == "fork server"]
    efficiency = statistics.median(o.efficiency for o in forked)  # type: ignore[attr-defined]
    worst = max(statistics.median(o.startup_s[b] for o in forked) for b in backends)  # type: ignore[attr-defined]
    met = efficiency >= EFFICIENCY_BAR and worst <= STARTUP_BAR_S
    print(f"bars (fork server): efficiency {efficiency:.2f} >= {EFFICIENCY_BAR}, worst median start-up {worst:.2f} s "
          f"<= {STARTUP_BAR_S} s: {'met' if met else 'NOT met'}"
          + ("" if float(load_before.split()[0]) < 0.5 else " (the machine was not quiet: load average >= 0.5)"))
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
