"""Append-only JSON-lines results store: one line per configuration, keyed by ``Config.key()``.

Appends are atomic at the line level: each record is ONE ``write`` of one complete line on a file
opened with O_APPEND, followed by fsync, under an exclusive lock. A process killed mid-write can
leave at most a truncated last line; readers skip it (with a warning) and the next append first ends
it with a newline so it can never merge with a good record. Replacing a record (``--force``, or a
retry of a failed configuration) rewrites the file to a temporary name and renames it into place, so
the store never holds two records for one key.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import jsonout
from harness.errors import HarnessError
from harness.results.records import Record

RESULTS_FILE = "results.jsonl"
#: Statuses that count as done: re-running skips them. "failed"/"unavailable" are retried.
FINISHED = frozenset({"ok", "oom", "unsupported"})


def _line(record: Record) -> bytes:
    # NaN/inf are not JSON: stored as null (not measured), never as a number.
    return (jsonout.dumps(record.to_dict()) + "\n").encode()


class ResultsStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.path = self.dir / RESULTS_FILE

    def _raw_lines(self) -> Iterator[tuple[int, str]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            yield from enumerate(fh, start=1)

    def records(self) -> list[Record]:
        """Every complete record, in file order; damaged lines are skipped with a warning."""
        out = []
        for lineno, line in self._raw_lines():
            if not line.strip():
                continue
            try:
                out.append(Record.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                # one plain line on stderr: warnings.warn would also print the source line that called it
                print(f"warning: {self.path}:{lineno}: skipping a damaged record", file=sys.stderr)
        return out

    def _keys(self) -> set[str]:
        """Keys of the stored records (damaged lines ignored silently: records() reports them)."""
        keys = set()
        for _, line in self._raw_lines():
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue
        return keys

    def by_key(self) -> dict[str, Record]:
        return {r.key: r for r in self.records()}

    def finished(self) -> set[str]:
        return {key for key, r in self.by_key().items() if r.status in FINISHED}

    def put(self, record: Record) -> None:
        """Store a record: append it, or replace the record with the same key."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = _line(record)
        with self._locked():
            if record.key in self._keys():
                self._replace(record.key, line)
            else:
                self._append(line)

    def _append(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                os.write(fd, b"\n")  # isolate a truncated line left by a killed writer
            written = os.write(fd, line)
            if written != len(line):
                raise HarnessError(f"{self.path}: short write ({written} of {len(line)} bytes); disk full?")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def _replace(self, key: str, line: bytes) -> None:
        kept = []
        for _, raw in self._raw_lines():
            try:
                same = json.loads(raw).get("key") == key
            except ValueError:
                continue  # drop damaged lines while rewriting
            if not same:
                kept.append(raw if raw.endswith("\n") else raw + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write("".join(kept).encode() + line)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _locked(self) -> _Lock:
        return _Lock(self.dir / (RESULTS_FILE + ".lock"))

    def dataframe(self) -> Any:
        """All records as a pandas DataFrame, one row per configuration (``Record.flat``)."""
        try:
            import pandas as pd
        except ImportError:
            raise HarnessError("pandas is needed to export results: pip install 'harness[report]'") from None
        return pd.DataFrame([r.flat() for r in self.records()])


class _Lock:
    """An exclusive advisory lock on a side file (two sweeps writing one store wait for each other)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
