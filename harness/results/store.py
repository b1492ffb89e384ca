"""Append-only JSON-lines results store: shards written by one writer each, merged by one rule.

A results directory holds ``results.jsonl`` (what one plain sweep writes) and ``results-<writer>.jsonl``
shards (one per executor lane or Slurm task). Every file has exactly ONE writer at a time, so nothing
depends on file locks and a directory on a network filesystem works: each record is one ``write`` of one
complete line on a file opened with O_APPEND, followed by fsync. A writer killed mid-write leaves at
most a truncated last line; the next append first ends it with a newline so it can never merge with a
good record, and readers count it as unreadable. Nothing is ever rewritten or deleted: a line that
cannot be read stays on disk, counted and reported.

The ONE merge rule (:func:`merge`) serves every reader - resume, ``harness results``, ``harness report``,
several results directories, the shards of a cluster run: per configuration key, the newest *final*
record wins (statuses in :data:`FINAL`); a configuration with no final record shows its newest record.
A failure (``failed``, ``unavailable``: the harness, the backend or the machine could not produce a
result) therefore never hides a measured result, and ``--force`` replaces a result only with a newer
final one. Superseded records are counted as duplicates and reported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import jsonout
from harness.errors import HarnessError, one_line
from harness.files import name_part
from harness.results.records import Record
from harness.results.schema import SchemaError, loads, parse_timestamp

RESULTS_FILE = "results.jsonl"
SHARD_GLOB = "results*.jsonl"
#: Statuses that are results: resume skips them and a newer failure never hides them.
FINAL = frozenset({"ok", "oom", "unsupported"})
#: where a record goes when its results directory cannot be written (named in the error)
FALLBACK_DIR_ENV = "HARNESS_FALLBACK_DIR"
#: unreadable lines a warning names one by one per file (the rest are counted)
NAMED_PER_FILE = 3


class StoreWriteError(HarnessError):
    """A record could not be appended; the message names the fallback file that holds it."""


@dataclass(frozen=True)
class UnreadableLine:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class Merged:
    """What a set of results files holds, merged: one record per configuration key."""

    records: list[Record] = field(default_factory=list)  # the winners, in order of first appearance
    superseded: list[Record] = field(default_factory=list)  # records another record of the same key beat
    unreadable: list[UnreadableLine] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def by_key(self) -> dict[str, Record]:
        return {r.key: r for r in self.records}

    def finished(self) -> set[str]:
        return {r.key for r in self.records if r.status in FINAL}

    def finished_plans(self) -> set[str]:
        """Plan keys (hardware left out) of finished configurations: what a submitter that does not yet
        know the hardware its tasks will get can skip."""
        return {r.config.plan_key() for r in self.records if r.status in FINAL}

    def warnings(self) -> list[str]:
        """One line per file with unreadable lines, one for duplicates; empty when all is clean."""
        lines = []
        per_file: dict[Path, list[UnreadableLine]] = {}
        for bad in self.unreadable:
            per_file.setdefault(bad.path, []).append(bad)
        for path, bad in per_file.items():
            named = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:NAMED_PER_FILE])
            more = f"; and {len(bad) - NAMED_PER_FILE} more" if len(bad) > NAMED_PER_FILE else ""
            lines.append(one_line(f"warning: {path}: skipped {len(bad)} unreadable line(s), kept on disk "
                                  f"({named}{more})"))
        if self.superseded:
            keys = {r.key for r in self.superseded}
            lines.append(f"warning: {len(self.superseded)} record(s) of {len(keys)} configuration(s) superseded by "
                         "newer or final records of the same configuration (rule: newest final record wins)")
        return lines


def merge(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """(winners, superseded) under the one rule: per key the newest final record, else the newest one.
    "Newest" is by ``finished_at`` read as a time (a record without one is the oldest); ties keep reading
    order. Only times are compared with times, whatever a record holds."""
    groups: dict[str, list[tuple[int, Record]]] = {}
    for order, record in enumerate(records):
        groups.setdefault(record.key, []).append((order, record))
    winners, superseded = [], []
    for group in groups.values():
        final = [item for item in group if item[1].status in FINAL]
        pool = final or group
        best = max(pool, key=lambda item: (_finished(item[1]), item[0]))
        winners.append((group[0][0], best[1]))
        superseded.extend(r for _, r in group if r is not best[1])
    return [r for _, r in sorted(winners, key=lambda item: item[0])], superseded


def _finished(record: Record) -> datetime:
    stamp = parse_timestamp(record.finished_at) if isinstance(record.finished_at, str) else None
    return stamp or datetime.min.replace(tzinfo=timezone.utc)


def results_files(directory: Path, glob: str = SHARD_GLOB) -> list[Path]:
    return sorted(p for p in directory.glob(glob) if p.is_file())


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def parse_line(raw: bytes) -> Record:
    """One stored line as a record, every value's type checked; ValueError naming the field (a
    :class:`~harness.results.schema.SchemaError`) or the JSON fault for anything else."""
    return Record.from_dict(loads(raw))


def parse_lines(path: Path, lines: Iterable[tuple[int, bytes]],
                parse: Callable[[bytes], Any] = parse_line) -> tuple[list[Any], list[UnreadableLine]]:
    """The records among ``lines`` (numbered lines of ``path``; ``parse`` reads one, ValueError when it is
    none), and the lines that are none, with why."""
    records, unreadable = [], []
    for lineno, raw in lines:
        if not raw.strip():
            continue
        try:
            records.append(parse(raw))
        except ValueError as exc:
            reason = "truncated line" if not raw.endswith(b"\n") else _short(exc)
            unreadable.append(UnreadableLine(path, lineno, reason))
    return records, unreadable


def file_records(path: Path) -> list[Record]:
    """The readable records of one results file, in order (none when it does not exist)."""
    return parse_lines(path, read_lines(path))[0] if path.exists() else []


def read_results(directories: Iterable[str | os.PathLike[str]], glob: str = SHARD_GLOB,
                 parse: Callable[[bytes], Any] = parse_line, what: str = "results") -> Merged:
    """Every results file of ``directories``, merged by the one rule (one directory, or several). Records of
    another kind kept by the same rules (harness.layertime.store) give their files' ``glob``, how a line
    is read and what they are called."""
    merged = Merged()
    everything: list[Any] = []
    for directory in directories:
        for path in results_files(Path(directory), glob):
            merged.files.append(path)
            try:
                records, unreadable = parse_lines(path, list(read_lines(path)), parse)
            except OSError as exc:
                raise HarnessError(f"{path}: cannot read {what} ({exc.strerror})") from None
            everything.extend(records)
            merged.unreadable.extend(unreadable)
    merged.records, merged.superseded = merge(everything)
    return merged


def _short(exc: ValueError) -> str:
    """Why a line is not a record, in one line: the field and its fault for a record of the wrong shape,
    the decoder's words otherwise."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, SchemaError):
        text = f"{'not UTF-8' if isinstance(exc, UnicodeDecodeError) else 'not JSON'}: {text}"
    return text if len(text) <= 160 else text[:157] + "..."


class ResultsStore:
    """One results directory: read merged; append to this writer's own file.

    ``writer`` None writes ``results.jsonl`` (one plain sweep at a time); a name writes
    ``results-<name>.jsonl``, for executors that run several writers at once.
    """

    def __init__(self, directory: str | os.PathLike[str], writer: str | None = None) -> None:
        self.dir = Path(directory)
        self.path = self.dir / (RESULTS_FILE if writer is None else f"results-{name_part(writer)}.jsonl")

    # ---- reading -------------------------------------------------------------------------------

    def read(self) -> Merged:
        return read_results([self.dir])

    def records(self) -> list[Record]:
        """One record per configuration (the merge rule's winners); warnings on stderr."""
        merged = self.read()
        for line in merged.warnings():
            print(line, file=sys.stderr)
        return merged.records

    def by_key(self) -> dict[str, Record]:
        return {r.key: r for r in self.records()}

    def finished(self) -> set[str]:
        return self.read().finished()

    def exists(self) -> bool:
        return bool(results_files(self.dir)) if self.dir.is_dir() else False

    def dataframe(self) -> Any:
        """All records as a pandas DataFrame, one row per configuration (``Record.flat``)."""
        try:
            import pandas as pd
        except ImportError:
            raise HarnessError("pandas is needed to export results: pip install 'harness[report]'") from None
        return pd.DataFrame([r.flat() for r in self.records()])

    # ---- writing -------------------------------------------------------------------------------

    def check_writable(self) -> None:
        check_appendable(self.path, "results")

    def append(self, record: Record) -> Path:
        """Append one record as one line (:func:`append_record`)."""
        return append_record(self.path, record)


def check_appendable(path: Path, what: str) -> None:
    """Fail now, with one line, if ``what`` could not be appended to ``path`` (before anything runs)."""
    if path.parent.exists() and not path.parent.is_dir():
        raise HarnessError(f"{path.parent}: results directory is a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.close(fd)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot write {what} here ({exc.strerror})") from None


def append_record(path: Path, record: Any) -> Path:
    """Append one record (a results record or another kind: anything with ``to_dict`` and ``key``) as one line
    of ``path``. On any failure the record goes to a fallback file and :class:`StoreWriteError` names it: a
    measurement already taken is never lost."""
    line = (jsonout.dumps(record.to_dict()) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _append_line(path, line)
    except OSError as exc:
        fallback = save_fallback(line)
        raise StoreWriteError(f"{path}: cannot append the record of {record.key} ({exc.strerror}); "
                              f"it was saved to {fallback}") from None
    return path


def _append_line(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # isolate a truncated line left by a killed writer
            size += 1
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(28, "short write (disk full?)")
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # never leave half a record behind
            raise
    finally:
        os.close(fd)


def save_fallback(line: bytes) -> Path:
    """Write one record line where it can be written: $HARNESS_FALLBACK_DIR, the temp dir, or home."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    candidates = [os.environ.get(FALLBACK_DIR_ENV), tempfile.gettempdir(), str(Path.home())]
    for folder in filter(None, candidates):
        path = Path(folder) / f"harness-unsaved-{stamp}-{os.getpid()}.jsonl"
        try:
            _append_line(path, line)
        except OSError:
            continue
        return path
    raise HarnessError("no writable place for the record: results directory, temp dir and home all failed")


