"""Files the user names: reading one refuses what is not a regular file before anything waits on it, and a
name that becomes part of a file name is made safe there.

Opening a FIFO for reading blocks until a writer comes (forever, for a sweep file given by mistake), and a
device or ``/proc`` entry can be endless. A file is therefore opened without blocking and checked with
``fstat`` on the open descriptor (no window between the check and the read), and anything but a regular
file is one line naming what it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat

from harness.errors import HarnessError

#: what a file-name part keeps as it is (letters and digits of any script, "_.+-"); anything else becomes "_"
_UNSAFE = re.compile(r"[^\w.+-]")
#: longest part kept as it is, in UTF-8 bytes (file systems take 255 per name; a part gets a prefix and suffix)
NAME_PART_LIMIT = 100

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


def name_part(text: str, limit: int = NAME_PART_LIMIT) -> str:
    """``text`` (a network, writer or tool name) as part of ONE file name: letters, digits and ``_.+-``
    only, every other character (``/``, a line break, ``;``, ``$``, quotes) as ``_``. A name over ``limit``
    UTF-8 bytes keeps its first characters and a hash of the whole, so that no file name is too long for
    the file system and two long names do not share a file."""
    safe = _UNSAFE.sub("_", text)
    encoded = safe.encode("utf-8")
    if len(encoded) <= limit:
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{encoded[:limit - 17].decode('utf-8', 'ignore')}-{digest}"
