"""``harness report``: the paper's tables, correlations, figures and claim verdicts beside our results."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.argtypes import output_path

DEFAULT_OUT = "report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="*", type=Path, metavar="RESULTS_DIR",
                   help="results directories written by `harness bench` and `harness profile` (several machines: one "
                        "column group per device; records of one configuration in several directories are merged "
                        "by the store's rule); none: the analyzer-only report")
    p.add_argument("-o", "--out", type=output_path, default=Path(DEFAULT_OUT), metavar="OUT_DIR",
                   help=f"where report.md, report.html, tables/ and figures/ go (default: {DEFAULT_OUT})")
    p.add_argument("--device-spec", action="append", default=[], metavar="DEVICE_ID=SPEC",
                   help="roofline peaks for a device the report cannot match by name, e.g. D2=cpu-epyc-zen3-2vcpu "
                        "(entries of harness/data/device_specs.yaml)")


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        from harness.errors import HarnessError

        raise HarnessError(f"the report needs pandas and matplotlib ({exc.name} is missing): "
                           "pip install 'harness[report]'") from None
    import sys

    from harness.errors import HarnessError
    from harness.report.build import build, parse_spec_overrides, verdict_summary

    if args.out.exists() and not args.out.is_dir():
        raise HarnessError(f"{args.out}: the report's output directory is an existing file")
    report = build(args.results, args.out, parse_spec_overrides(args.device_spec))
    for line in report.warnings:
        print(line, file=sys.stderr)
    print(f"wrote {report.markdown}, {report.html}, {len(report.tables)} tables and {len(report.figures)} figures "
          f"(PNG + SVG) under {report.out}")
    print(f"claims: {verdict_summary(report.claims)}")
    return 0
