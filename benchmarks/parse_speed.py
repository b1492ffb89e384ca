"""Prototxt reading against input size: time and peak memory of ``load_graph`` (parse + graph build) for
files of 1 to 50 MB, to show that both grow linearly (goal: a 50 MB prototxt in under 10 s and 1 GB).

Two kinds of input:

- ``layers``: a real network, GoogLeNet's deploy file (prototxts/googlenet.prototxt), repeated as
  independent branches over one input (names made unique per copy) until the file has the size;
- ``string``: a small network whose name is one string literal of the size, with an escape every 64
  characters (the case where string literals used to cost ~200 bytes per input byte).

Each measurement runs in a fresh process: the time is ``load_graph``'s wall time, the memory the
process's peak resident set (``ru_maxrss``) minus its peak before the call (imports, the file's bytes
not yet read). Run: python benchmarks/parse_speed.py [--sizes 1,2,5,10,20,50] [--kind layers,string]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000
CHILD = """
import json, resource, sys, time
from harness.ir.build import load_graph
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
graph = load_graph(sys.argv[1])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "before_kib": before, "peak_kib": peak, "layers": len(graph.layers)}))
"""


def layers_file(path: Path, size: int) -> None:
    """GoogLeNet's layers, copy after copy, each copy's names suffixed so that the net stays valid."""
    text = (REPO / "prototxts" / "googlenet.prototxt").read_text(encoding="utf-8")
    second = text.index("\nlayer {", text.index("\nlayer {") + 1)  # after the Input layer: one input for all
    head, body = text[:second + 1], text[second + 1:]
    names = set(re.findall(r'(?:name|bottom|top): "([^"]+)"', body)) - {"data"}
    pattern = re.compile(r'"(' + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r')"')
    with path.open("w", encoding="utf-8") as f:
        f.write(head)
        written, copy = len(head), 0
        while written < size:
            part = pattern.sub(lambda m, c=copy: f'"{m.group(1)}_{c}"', body)
            f.write(part)
            written += len(part)
            copy += 1


def string_file(path: Path, size: int) -> None:
    chunk = "x" * 62 + "\\n"
    literal = chunk * (size // len(chunk))
    path.write_text(f'name: "{literal}"\ninput: "data"\ninput_shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }}\n'
                    'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n', encoding="utf-8")


MAKERS = {"layers": layers_file, "string": string_file}


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,5,10,20,50", help="file sizes in MB (default 1,2,5,10,20,50)")
    parser.add_argument("--kind", default="layers,string", help="layers, string or both (default both)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    print(f"# python benchmarks/parse_speed.py --sizes {args.sizes} --kind {args.kind}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kind.split(","):
            print(f"\n{kind}: load_graph (parse + build), one fresh process per size")
            print(f"{'input MB':>9} {'layers':>8} {'seconds':>8} {'s per MB':>9} {'peak MB':>8} {'bytes/byte':>10}")
            for size in sizes:
                path = Path(tmp) / f"{kind}-{size}.prototxt"
                MAKERS[kind](path, int(size * MB))
                real = path.stat().st_size
                r = measure(path)
                grown = (r["peak_kib"] - r["before_kib"]) * 1024
                print(f"{real / MB:9.1f} {r['layers']:8d} {r['seconds']:8.2f} {r['seconds'] / (real / MB):9.3f} "
                      f"{grown / MB:8.0f} {grown / real:10.1f}")
                path.unlink()
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({time.strftime('%Y-%m-%d %H:%M %Z')})")
    print("# peak MB: the process's peak resident memory minus its peak before load_graph (imports done)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
