"""The ``harness`` command. Each subcommand lives in its own module, imported only when used, so that
``harness analyze`` never pays for torch, onnxruntime or pandas."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import NoReturn

from harness import __version__
from harness.errors import HarnessError, one_line

# name -> (module, one-line help). A module defines add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("harness.cli.analyze", "params, MACs, activations and ratios of zoo networks or prototxts"),
    "zoo": ("harness.cli.zoo", "list, show or rebuild the 12 networks of the paper's Table II"),
    "verify": ("harness.cli.verify", "prove that PyTorch, ONNX Runtime, OpenCV (and Caffe) compute the same outputs"),
    "bench": ("harness.cli.bench", "measure latency, throughput, memory, power and energy over a sweep"),
    "results": ("harness.cli.results", "export a results directory as csv, parquet or json"),
    "report": ("harness.cli.report", "the replication report: paper vs ours, correlations, figures, verdicts"),
    "profile": ("harness.cli.profile", "profile a network with nsys / ncu / torch.profiler, print its kernel families"),
    "layers": ("harness.cli.layers", "per-layer time on every engine beside per-layer MACs: where the time goes"),
    "kernels": ("harness.cli.kernels", "kernel families of profiler files, Table V, Caffe BLAS calls"),
    "doctor": ("harness.cli.doctor", "which backends and GPUs are available here, and how to fix what is missing"),
}


class Terminated(BaseException):
    """SIGTERM arrived: not an error of the command, so not an Exception that handlers would swallow."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


class ArgumentParser(argparse.ArgumentParser):
    """argparse refusing a bad command line as the harness refuses any input: ONE line, ``harness CMD: error:
    ...`` with a pointer to ``--help`` and exit status 2 (argparse's own prints its usage block first).
    Subcommands' parsers are of this class too (argparse makes them of their parent's)."""

    #: the subcommands' parsers (the top-level parser's), so that an unknown argument is refused by its command
    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        command = " ".join(self.prog.split()[:2])  # "harness kernels", also for "harness kernels attribute"
        self.exit(2, f"{command}: error: {one_line(message)} (see '{self.prog} --help')\n")


def build_parser(command: str | None = None) -> ArgumentParser:
    parser = ArgumentParser(prog="harness", description="Caffe-faithful benchmark harness for CNNs.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    parser.commands = sub.choices
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    # SIGTERM (a scheduler's or timeout's stop) unwinds like Ctrl-C, so a running worker is killed with us.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except HarnessError as exc:
        print(f"harness {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"harness {args.command}: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
