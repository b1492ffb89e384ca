"""Reading a file the user names, refusing what is not a regular file before anything waits on it.

Opening a FIFO for reading blocks until a writer comes (forever, for a sweep file given by mistake), and a
device or ``/proc`` entry can be endless. A file is therefore opened without blocking and checked with
``fstat`` on the open descriptor (no window between the check and the read), and anything but a regular
file is one line naming what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from harness.errors import HarnessError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def kind_of(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of the regular file ``path``; HarnessError ``<path>: cannot read <what> (...)`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    try:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise HarnessError(f"{path}: cannot read {what} (it is {kind}, not a regular file)")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)


def check_regular_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` if it names a regular file (symbolic links followed); HarnessError naming what it is otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    kind = kind_of(mode)
    if kind is not None:
        raise HarnessError(f"{path}: cannot read {what} (it is {kind}, not a regular file)")
    return Path(path)
