"""`harness analyze --convention paper` against the real Netscope CNN Analyzer, file by file.

Netscope (github dgschwend/netscope, gh-pages) is run from a local checkout given with --netscope, unmodified,
under node (benchmarks/netscope_driver.js loads its parser, analyzer and summary table). For every file the
network totals Netscope's website shows (MACs, parameters, activations) are compared with the harness's, in
the same phase. Set up a checkout once:

    git clone -b gh-pages https://github.com/dgschwend/netscope DIR && (cd DIR && npm install coffeescript lodash)

Run: python benchmarks/netscope_parity.py --netscope DIR [--phase train|test] [--per-layer] FILE...

Each file gets one line: ``equal``, ``different`` (both totals shown), ``netscope-not-finite`` (Netscope's
totals are NaN: not counted), ``netscope-fails`` (its analyzer throws) or ``harness-refuses`` (the harness's
one-line reason). The last line counts the files equal among those whose Netscope totals are finite. Exit
status 0 when all of those are equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from harness.analysis.analyzer import analyze
from harness.errors import HarnessError
from harness.ir.build import load_graph

DRIVER = Path(__file__).with_name("netscope_driver.js")
FIELDS = (("macs", "macc"), ("params", "param"), ("activations", "activation"))


def netscope_totals(netscope: Path, files: list[str], phase: str, per_layer: bool) -> list[dict]:
    command = ["node", str(DRIVER), "--netscope", str(netscope), "--phase", phase,
               *(["--layers"] if per_layer else []), *files]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"netscope_parity: the Netscope driver failed: {done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def compare(file: str, netscope: dict, phase: str) -> tuple[str, str]:
    """(verdict, details) for one file."""
    if "exception" in netscope:
        return "netscope-fails", netscope["exception"]
    theirs = {ours: _number(netscope["total"][key]) for ours, key in FIELDS}
    try:
        result = analyze(load_graph(file, phase=phase.upper()), "paper")
    except HarnessError as exc:
        verdict = "harness-refuses" if all(map(math.isfinite, theirs.values())) else "netscope-not-finite"
        return verdict, f"{str(exc).splitlines()[0]}; netscope {_show(theirs)}"
    ours = {name: getattr(result.totals, name) for name, _ in FIELDS}
    if not all(map(math.isfinite, theirs.values())):
        return "netscope-not-finite", f"netscope {_show(theirs)}, harness {_show(ours)}"
    verdict = "equal" if all(ours[k] == theirs[k] for k in ours) else "different"
    return verdict, f"netscope {_show(theirs)}" + ("" if verdict == "equal" else f", harness {_show(ours)}")


def _show(totals: dict) -> str:
    """Whole numbers as integers; NaN and Netscope's fractions (a Deconvolution's) as they are."""
    return " ".join(f"{k}={int(v)}" if math.isfinite(v) and float(v).is_integer() else f"{k}={v:g}"
                    for k, v in totals.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--netscope", type=Path, required=True, help="a Netscope checkout (gh-pages)")
    p.add_argument("--phase", choices=("train", "test"), default="train",
                   help="the phase both parse in (Netscope's website: train)")
    p.add_argument("--per-layer", action="store_true", help="also print Netscope's per-layer rows as JSON")
    p.add_argument("files", nargs="+")
    args = p.parse_args()
    counts: dict[str, int] = {}
    for file, netscope in zip(args.files, netscope_totals(args.netscope, args.files, args.phase, args.per_layer),
                              strict=True):
        verdict, details = compare(file, netscope, args.phase)
        counts[verdict] = counts.get(verdict, 0) + 1
        print(f"{verdict:20s} {file}: {details}")
        if args.per_layer:
            for row in netscope.get("layers", []):
                print("    " + json.dumps(row))
    finite = sum(n for v, n in counts.items() if v in ("equal", "different", "harness-refuses"))
    print(f"equal on {counts.get('equal', 0)} of {finite} files whose Netscope totals are finite "
          f"({', '.join(f'{v}: {n}' for v, n in sorted(counts.items()))})")
    return 0 if counts.get("equal", 0) == finite else 1


if __name__ == "__main__":
    sys.exit(main())
