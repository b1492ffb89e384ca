"""Harness overhead: forward latency measured through the harness (Session.run_timed with the timing
protocol) vs a bare loop over the same backend call on the same loaded network. Goal: ratio <= 1.02.

Run: python benchmarks/harness_overhead.py [--backend pytorch] [--network squeezenet_v1.1] [--batch 1]
     [--device cpu] [--iters 5] [--rounds 20]
Bare and harness loops alternate in short rounds (so drift and other load on the machine affect both
alike); the ratio of mean latencies is reported per round and as the median over rounds. The harness's
own cost per iteration (timing a no-op) is also printed: divided by the forward latency it bounds the
overhead independently of machine noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from harness.measure.sweep import open_session
from harness.measure.timer import TimingProtocol
from harness.results.metadata import cpu_model


def bare_mean_s(forward, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        forward()
    return (time.perf_counter() - start) / iters


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="pytorch")
    p.add_argument("--network", default="squeezenet_v1.1")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()

    protocol = TimingProtocol(warmup_iters=0, warmup_s=0.0, min_iters=args.iters, min_s=0.0)
    with open_session(args.backend, args.network, args.batch, args.device) as session:
        TimingProtocol(warmup_iters=20, warmup_s=2.0, min_iters=0, min_s=0).run(session.forward)
        rows = []
        for _ in range(args.rounds):
            bare = bare_mean_s(session.forward, args.iters)
            timing = session.run_timed(protocol)
            rows.append((bare, timing.mean_s, timing.median_s))
    print(f"machine: {platform.node()} | {cpu_model()} | {platform.machine()} | Python {platform.python_version()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"backend {args.backend} {session.info}, {args.network}, B={args.batch}, "
          f"{args.device}, {args.iters} iterations x {args.rounds} rounds (alternating bare / harness)")
    print(f"{'round':>5} {'bare mean ms':>13} {'harness mean ms':>16} {'harness median ms':>18} {'ratio':>7}")
    ratios = []
    for i, (bare, mean, median) in enumerate(rows, 1):
        ratios.append(mean / bare)
        print(f"{i:5d} {bare * 1e3:13.3f} {mean * 1e3:16.3f} {median * 1e3:18.3f} {mean / bare:7.4f}")
    ratio = statistics.median(ratios)
    print(f"harness/bare mean-latency ratio, median over rounds: {ratio:.4f} "
          f"(goal <= 1.02: {'met' if ratio <= 1.02 else 'NOT met'}); spread {min(ratios):.4f}..{max(ratios):.4f}")
    noop = TimingProtocol(warmup_iters=0, warmup_s=0.0, min_iters=200_000, min_s=0.0).run(lambda: None)
    bare = statistics.median(r[0] for r in rows)
    print(f"harness cost per iteration (no-op forward, 200000 iterations): {noop.mean_s * 1e9:.0f} ns "
          f"= {noop.mean_s / bare:.2e} of the median bare forward latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
