"""``--convention caffe`` against real BVLC Caffe on seeded mutations: how often the harness accepts what
Caffe refuses, or gets a shape Caffe builds differently (wrong successes), refuses what Caffe builds
(wrong refusals), or fails other than with one line and exit status 2 (tracebacks).

The cases are :func:`tests.caffe_fuzz.cases` (mutations of the zoo networks and of small nets that hold
every BVLC layer type); the oracle is ``caffe.Net(path, caffe.TEST)`` in a forked child of the pycaffe
interpreter the Caffe backend finds (tests/caffe_oracle.py). Cases the oracle cannot judge (it ran out of
the memory or time it allows, crashed, or the net reads data files) are counted apart and left out of the
rates. Run::

    .venv/bin/python benchmarks/caffe_oracle_fuzz.py --seed 1 --cases 10000 [--keep DIR] [--jobs 2]

It prints one line per finding (kept in --keep) and the totals; exit status 1 when a traceback or wrong
successes of 1% of the judged cases or more are found.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from caffe_fuzz import Oracle, cases, harness_outcome, verdict, write_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1, help="oracle processes working in parallel")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the inputs of the findings")
    parser.add_argument("--memory-mib", type=int, default=3072, help="memory Caffe may use per case")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    todo = list(cases(args.seed, args.cases))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="caffe-oracle-fuzz-") as tmp:
        verdicts = judge(todo, Path(tmp), args)
    judged = sum(n for v, n in verdicts.items() if v != "unknown")
    wrong = verdicts["wrong_success"] + verdicts["shape_mismatch"]
    print(f"\nseed {args.seed}: {len(todo)} cases in {time.monotonic() - start:.0f} s; judged by Caffe: {judged} "
          f"(unknown {verdicts['unknown']})")
    for name in ("agree", "wrong_success", "shape_mismatch", "wrong_refusal", "traceback"):
        print(f"  {name:15s} {verdicts[name]:6d}  {100 * verdicts[name] / max(judged, 1):6.2f}%")
    print(f"  wrong successes (wrong_success + shape_mismatch): {wrong} = {100 * wrong / max(judged, 1):.2f}% "
          "of the judged cases")
    return 1 if verdicts["traceback"] or wrong >= 0.01 * max(judged, 1) else 0


def judge(todo: list, folder: Path, args: argparse.Namespace) -> Counter[str]:
    """Each case written under ``folder``, judged by Caffe and by the harness; one line per finding, with
    file names relative to ``folder`` (the same output on every machine)."""
    oracles = [Oracle(memory_mib=args.memory_mib) for _ in range(args.jobs)]
    paths = [write_case(folder, case) for case in todo]
    verdicts: Counter[str] = Counter()

    def judge_all(index: int) -> list[dict]:
        return [oracles[index].judge(p) for p in paths[index::args.jobs]]

    with ThreadPoolExecutor(args.jobs) as pool:
        per_job = list(pool.map(judge_all, range(args.jobs)))
    theirs = [per_job[i % args.jobs][i // args.jobs] for i in range(len(paths))]
    for case, path, caffe in zip(todo, paths, theirs, strict=True):
        ours = harness_outcome(path)
        v = verdict(ours, caffe, case.data)
        verdicts[v] += 1
        if v not in ("agree", "unknown"):
            said = ours.get("error", "").replace(f"{folder}/", "")[:160] if ours["rc"] else "accepted"
            print(f"{v}: {case.name} ({case.how[:160]}) | caffe: {caffe.get('reason', 'built it')[:160]} | "
                  f"harness: {said}")
            if args.keep:
                (args.keep / path.name).write_bytes(case.data)
    for oracle in oracles:
        oracle.close()
    return verdicts


if __name__ == "__main__":
    raise SystemExit(main())
