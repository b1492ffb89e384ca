"""Per-layer timing against the plain forward, per engine: what ``harness layers`` costs and how well its rows
add up to the whole forward.

Run: python benchmarks/layer_timing.py [--networks squeezenet_v1.1,mobilenet_v1] [--backends caffe,pytorch,...]
     [--batch 1] [--min-iters 30] [--min-s 3]

Each configuration is one ``harness layers`` worker (the same worker path as the command), which alternates a
plain forward (Session.forward, timed as ``harness bench`` times it) and an instrumented pass. Printed per
configuration: the plain forward's median; the median instrumented pass and its overhead over the plain
forward (what per-layer timing costs); the median over passes of the sum of the engine's rows and its gap to
the whole forward (the issue's bar: within 20%); rows, passes, and whether the contention guard flagged the
measurement. The load average before and after is printed: figures are meaningful on a quiet machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

from harness.measure.sweep import available_backends
from harness.results.metadata import cpu_model

ENGINES = ("caffe", "pytorch", "onnxruntime", "opencv")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="squeezenet_v1.1,mobilenet_v1")
    p.add_argument("--backends", default=None, help="default: every engine installed here")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--min-iters", type=int, default=30)
    p.add_argument("--min-s", type=float, default=3.0)
    a = p.parse_args()
    backends = a.backends.split(",") if a.backends else [e for e in ENGINES if e in available_backends("cpu")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="layer-timing-") as out:
        cmd = [sys.executable, "-m", "harness", "layers", *a.networks.split(","), "--backend", ",".join(backends),
               "--batch", str(a.batch), "--format", "json", "--out", out, "--set", f"min_iters={a.min_iters}",
               "--set", f"min_s={a.min_s}", "--set", "warmup_iters=3"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    load_after = os.getloadavg()
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    doc = json.loads(proc.stdout)
    print(f"host {platform.node()}, CPU {cpu_model()}, {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"command: harness layers {a.networks} --backend {','.join(backends)} --batch {a.batch} "
          f"--set min_iters={a.min_iters} --set min_s={a.min_s} --set warmup_iters=3\n")
    header = ("network", "engine", "whole ms", "instrumented ms", "overhead %", "sum of rows ms", "gap %", "rows",
              "passes", "contended")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for prof in doc["profiles"]:
        engine = f"{prof['backend']} ({prof['mode']})"
        if prof["status"] != "ok":
            print(f"| {prof['network']} | {engine} | {prof['status']}: {prof['message']} |")
            continue
        print(f"| {prof['network']} | {engine} | {prof['whole_forward_ms']['median']:.2f} | "
              f"{prof['instrumented_pass_ms']:.2f} | {prof['timing_overhead_pct']:+.1f} | {prof['sum_of_rows_ms']:.2f} "
              f"| {prof['gap_pct']:+.1f} | {len(prof['rows'])} | {prof['iterations']} | "
              f"{'yes' if prof['contended'] else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
