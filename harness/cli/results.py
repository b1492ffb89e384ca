"""``harness results DIR``: export a results store through pandas (one row per configuration, merged
from every shard by the store's one rule; unreadable lines and superseded records are reported)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.argtypes import output_path
from harness.errors import HarnessError
from harness.results.store import ResultsStore

FORMATS = ("csv", "parquet", "json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", type=Path, metavar="DIR", help="a directory written by `harness bench --out`")
    p.add_argument("--format", choices=FORMATS, default="csv", help="output format (default: csv)")
    p.add_argument("-o", "--output", type=output_path, default=None, metavar="FILE",
                   help="write here instead of stdout (required for parquet)")


def run(args: argparse.Namespace) -> int:
    store = ResultsStore(args.directory)
    if not store.exists():
        raise HarnessError(f"{args.directory}: no results here (expected results*.jsonl)")
    if args.output is not None and not args.output.parent.is_dir():
        raise HarnessError(f"-o {args.output}: folder {args.output.parent} does not exist")
    if args.output is not None and args.output.is_dir():
        raise HarnessError(f"-o {args.output}: is a folder; give a file name")
    frame = store.dataframe()
    if args.format == "parquet":
        if args.output is None:
            raise HarnessError("--format parquet writes a binary file: give -o FILE")
        try:
            one_type_per_column(frame).to_parquet(args.output, index=False)
        except ImportError as exc:
            raise HarnessError(f"parquet export needs pyarrow: pip install 'harness[report]' ({exc})") from None
        except (TypeError, ValueError) as exc:  # pyarrow's ArrowTypeError and ArrowInvalid
            raise HarnessError(f"-o {args.output}: cannot write parquet ({' '.join(str(exc).split())[:300]})") from None
        return 0
    target = args.output if args.output is not None else sys.stdout
    if args.format == "csv":
        frame.to_csv(target, index=False)
    else:
        frame.to_json(target, orient="records", lines=True)
        if args.output is None:
            sys.stdout.write("\n")
    return 0


def one_type_per_column(frame: Any) -> Any:
    """The table with one type per column, as parquet stores it: metadata is free-form, so one record may
    hold a key as a number and another as text (a version "2.1" and 2.1); such a column is written as text."""
    from pandas.api.types import is_object_dtype

    frame = frame.copy()
    for name in [n for n in frame.columns if is_object_dtype(frame[n])]:
        kinds = {type(v) for v in frame[name] if v is not None and v == v}
        if len(kinds) > 1:
            frame[name] = frame[name].map(lambda v: v if v is None or v != v else str(v))
    return frame
