"""``harness ARGS`` run inside the test process, as a user meets it: the exit status and what it printed. An
exception escaping ``main()`` is a traceback the user would have seen, so it is not caught here and fails the
test; argparse's usage errors (SystemExit) become their exit status. ``seconds`` bounds a call that could
wait forever (a FIFO, a hang the fuzz looks for) with SIGALRM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO

from harness.cli.main import main


class Hang(Exception):
    """A call ran past its time limit."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str], seconds: int | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``harness argv``."""
    out, err = StringIO(), StringIO()
    with time_limit(seconds) if seconds else _unbounded(), redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


@contextmanager
def _unbounded() -> Iterator[None]:
    yield
