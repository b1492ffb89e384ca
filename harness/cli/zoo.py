"""``harness zoo list|build|show``: the 12 Table II networks the harness generates.

``build`` writes every generated file (the 12 networks and the Fig. 2 pair) into ``--out DIR``; without it,
into ``./prototxts`` when the current directory has one (running from the repository root), else into the
``prototxts/`` folder of the checkout the harness package is imported from. An installed (non-checkout)
harness has neither, and then ``--out`` is required.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import zoo
from harness.cli.argtypes import output_path
from harness.convert.cache import write_atomic
from harness.errors import HarnessError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the networks with the paper's names and Table II input sizes")
    show = sub.add_parser("show", help="print the generated prototxt of a network")
    show.add_argument("network", metavar="NET", help=f"a zoo name, or {' / '.join(zoo.EXTRAS)}")
    build = sub.add_parser("build", help="(re)write the generated prototxts")
    build.add_argument("--out", type=output_path, default=None, metavar="DIR",
                       help="output folder (default: ./prototxts if present, else the checkout's prototxts/)")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if a file in the folder differs from the generator's output")


def default_out_dir() -> Path:
    for candidate in (Path.cwd() / "prototxts", zoo.PROTOTXT_DIR):
        if candidate.is_dir():
            return candidate
    raise HarnessError("no prototxts/ folder in the current directory or in the harness checkout; "
                       "pass --out DIR")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = [(name, net.paper_name, f"{net.input_size}x{net.input_size}") for name, net in zoo.NETWORKS.items()]
        widths = [max(len(r[i]) for r in [("name", "paper name", "input"), *rows]) for i in range(3)]
        for row in [("name", "paper name", "input"), *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return 0
    if args.action == "show":
        if args.network not in zoo.NETWORKS and args.network not in zoo.EXTRAS:
            raise HarnessError(f"unknown zoo network '{args.network}'; the zoo has: "
                               f"{', '.join([*zoo.NETWORKS, *zoo.EXTRAS])}")
        sys.stdout.write(zoo.zoo_prototxt(args.network))
        return 0
    return _build(args.out or default_out_dir(), args.check)


def _build(out: Path, check: bool) -> int:
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out}: not a folder")
    files = zoo.generated_files()
    try:
        changed = _write_changed(out, files, check)
    except OSError as exc:  # a read-only or impossible folder (/proc/x), a full disk
        raise HarnessError(f"{out}: cannot write ({exc.strerror or exc})") from None
    total = len(files)
    if check:
        for filename in changed:
            print(f"{out / filename}: differs from the generator's output (run `harness zoo build`)")
        print(f"{total - len(changed)} of {total} files in {out} match the generator")
        return 1 if changed else 0
    print(f"{out}: wrote {len(changed)} file(s), {total - len(changed)} already up to date")
    return 0


def _write_changed(out: Path, files: dict[str, str], check: bool) -> list[str]:
    """Names of the files whose content in ``out`` differs from ``files``; written unless ``check``."""
    if not check:
        out.mkdir(parents=True, exist_ok=True)
    changed = []
    for filename, text in files.items():
        path = out / filename
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:  # bytes: a damaged (non-UTF-8) file just differs
            continue
        changed.append(filename)
        if not check:
            write_atomic(path, lambda tmp, data=data: tmp.write_bytes(data))
    return changed
