"""One-line refusals of the command line: every bad value of every option of every command is ONE line
``harness CMD: error: ... (see 'harness CMD --help')`` with exit status 2 and no usage block; a --config or
--weights naming a FIFO (or any non-regular file) is refused at once instead of waiting for a writer."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import run_cli

from harness.cli.main import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
#: a value no typed option takes: not a number, not a choice, not a backend or device, holds control characters
BAD = "x\n;$(touch y)`id`'\"\x1b[2J"


def typed_options(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], str]]:
    """(command words, option) of every option whose value argparse checks (a type or choices), nested
    subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from typed_options(sub, [*path, name])
        elif action.option_strings and action.nargs != 0 and (action.choices or action.type not in (None, str, Path)):
            yield path, action.option_strings[-1]


def all_typed_options() -> list[tuple[list[str], str]]:
    return [case for command in COMMANDS for case in typed_options(build_parser(command).commands[command],
                                                                   [command])]


def one_line(argv: list[str], rc: int, err: str, usage_error: bool = True) -> str:
    """The one error line; a usage error (argparse's) ends with the pointer to --help."""
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"harness {argv[0]}: error: ") and "usage:" not in err, err
    assert lines[0].endswith("--help')") == usage_error and "\x1b" not in err, err
    return lines[0]


@pytest.mark.parametrize("words, option", all_typed_options(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_a_bad_value_of_any_option_is_one_line(words: list[str], option: str) -> None:
    argv = [*words, option, BAD]
    line = one_line(argv, *run_cli(argv)[::2])
    assert "argument " in line and option in line.split(":")[2] and f"(see 'harness {' '.join(words)} --help')" in line


def test_every_command_has_typed_options_here() -> None:
    """The list above is not vacuous: the commands' checked options are all in it."""
    covered = {(" ".join(words), option) for words, option in all_typed_options()}
    assert {("bench", "--batch"), ("bench", "--contention"), ("analyze", "--convention"), ("verify", "--tol"),
            ("results", "--format"), ("results", "--output"), ("report", "--out"), ("profile", "--tool"),
            ("kernels attribute", "--format"), ("bench", "--slurm-gpus-per-task")} <= covered
    assert len(covered) >= 30


@pytest.mark.parametrize("argv, words", [
    (["results"], "the following arguments are required: DIR"),
    (["analyze", "alexnet", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["kernels"], "the following arguments are required: ACTION"),
    (["kernels", "attribute", "a.csv", "--zz"], "unrecognized arguments: --zz"),
    (["bench", "--batch"], "argument --batch: expected one argument"),
    (["zoo", "nope"], "argument ACTION: invalid choice: 'nope'"),
    (["analyze", "alexnet", "--batch", "1\n2"], "expected a positive integer, got '1\\n2'"),
])
def test_usage_errors_are_one_line(argv: list[str], words: str) -> None:
    assert words in one_line(argv, *run_cli(argv)[::2])


def test_the_entry_point_prints_one_line_and_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "bench", "--batch", "0"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr == \
        "harness bench: error: argument --batch: expected a positive integer, got 0 (see 'harness bench --help')\n"


@pytest.mark.parametrize("argv_of, message", [
    (lambda p: ["bench", "alexnet", "--config", str(p)], "cannot read sweep config (it is a FIFO, not a regular file)"),
    (lambda p: ["analyze", "alexnet", "--metrics", "storage", "--weights", str(p)],
     "cannot read the caffemodel (it is a FIFO, not a regular file)"),
    (lambda p: ["bench", "alexnet", "--config", str(p.parent)],
     "cannot read sweep config (it is a folder, not a regular file)"),
    (lambda p: ["bench", "alexnet", "--config", "/dev/zero"],
     "cannot read sweep config (it is a character device, not a regular file)"),
])
def test_a_file_option_naming_a_fifo_or_device_is_refused_at_once(tmp_path: Path, argv_of, message: str) -> None:
    fifo = tmp_path / "sweep.yaml"
    os.mkfifo(fifo)
    argv = argv_of(fifo)
    # reading the FIFO would wait for a writer forever
    assert one_line(argv, *run_cli(argv, seconds=60)[::2], usage_error=False).endswith(message)
