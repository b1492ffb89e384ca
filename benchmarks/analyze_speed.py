"""Analyzer speed: the 12 zoo networks in one process (goal < 1 s in all) and `harness analyze all` start to
finish as a user runs it (goal < 2 s). Run: python benchmarks/analyze_speed.py"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from harness.analysis.analyzer import analyze
from harness.ir.build import load_graph
from harness.zoo import paper_input_size, zoo_names, zoo_prototxt


def analyse_all_once() -> dict[str, float]:
    times = {}
    for name in zoo_names():
        start = time.perf_counter()
        graph = load_graph(f"zoo:{name}", zoo_prototxt(name))
        analyze(graph, "paper", batch=1, input_size=paper_input_size(name))
        analyze(graph, "caffe", batch=1, input_size=paper_input_size(name))
        times[name] = time.perf_counter() - start
    return times


def main() -> int:
    analyse_all_once()  # first run pays for imports
    runs = [analyse_all_once() for _ in range(5)]
    print("parse + build + analyze (paper and caffe conventions), median of 5 runs:")
    for name in zoo_names():
        print(f"  {name:18s} {statistics.median(r[name] for r in runs) * 1e3:7.1f} ms")
    total = statistics.median(sum(r.values()) for r in runs)
    print(f"  {'all 12':18s} {total * 1e3:7.1f} ms   (goal < 1000 ms: {'met' if total < 1 else 'NOT met'})")

    cli = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "analyze", "all"], check=True, capture_output=True)
        cli.append(time.perf_counter() - start)
    best = statistics.median(cli)
    print(f"`harness analyze all` start to finish, median of 3: {best * 1e3:.0f} ms "
          f"(goal < 2000 ms: {'met' if best < 2 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
