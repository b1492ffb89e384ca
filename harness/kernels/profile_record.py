"""The kernel-attribution record: one file per profiled configuration and tool, in a results directory.

``harness profile NET ... --out RESULTS_DIR`` writes ``RESULTS_DIR/profiles/<network>-<backend>-<mode>-
<device kind>-b<batch>-<tool>.json`` (the raw capture beside it under ``profiles/captures/``) and
``harness report RESULTS_DIR`` reads every such file. A profile is not a timing result: kernels run under
instrumentation (ncu replays each one), so it carries kernel-time shares and kernel metrics, never a latency.

The record carries the configuration (a :class:`harness.results.records.Config`, hardware included), the
device kind and model, the tool, how the capture was limited to the timed forward passes and how many it
covers, the attribution by kernel family and, where the tool measured them, the Table V metrics per family.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from harness.errors import HarnessError
from harness.files import name_part, read_regular_file
from harness.results.records import Config
from harness.results.schema import SchemaError, StrictFloat, build, loads

PROFILES_DIR = "profiles"
CAPTURES_DIR = "captures"
KIND = "kernel-profile"
SCHEMA = 1


class FamilyShareJson(TypedDict):
    family: str
    pct: StrictFloat


class AttributionJson(TypedDict):
    """harness.kernels.attribution.Attribution.to_json(): the keys a reader computes with are typed."""

    families: list[FamilyShareJson]


class TableVRow(TypedDict):
    family: str  # then the Table V attributes of harness.kernels.metrics.FamilyMetrics


@dataclass
class ProfileRecord:
    config: Config
    tool: str  # nsys, ncu, torch
    host: str
    capture: str | None  # the raw capture, relative to the profiles folder
    #: how the capture was limited to the timed forward passes (None: an imported capture, not known)
    capture_range: str | None
    warmup_iters: int | None  # forward passes run before the capture range opened
    iterations: int | None  # forward passes inside the capture range
    iterations_in_capture: int | None  # counted in the capture itself (Kineto steps), where it can be
    gpu_kernels: int  # kernel executions (or summary calls) the capture holds
    attribution: AttributionJson  # harness.kernels.attribution.Attribution.to_json()
    table_v: list[TableVRow] | None = None  # per family (harness.kernels.metrics.FamilyMetrics); None: no metrics
    cpu_ops: list[dict[str, Any]] = field(default_factory=list)  # longest host ops (Kineto): name, inclusive_ns, calls
    gpu_uuid: str | None = None
    tool_version: str | None = None
    created_at: str | None = None
    harness: str | None = None
    git_revision: str | None = None
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False  # a made-up record for tests (tests/data/synthetic-*): never a measurement

    @property
    def device_kind(self) -> str:
        return self.config.device_kind

    @property
    def device_model(self) -> str | None:
        return self.config.hardware

    def file_name(self) -> str:
        return profile_stem(self.config, self.tool) + ".json"

    def family_pct(self) -> dict[str, float]:
        return {f["family"]: float(f["pct"]) for f in self.attribution.get("families", [])}

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "schema": SCHEMA, "key": self.config.key(), "device_kind": self.device_kind,
                "device_model": self.device_model, **asdict(self)}

    @classmethod
    def from_json(cls, doc: Any, where: str) -> ProfileRecord:
        """A record from its JSON form; HarnessError naming ``where`` and the problem otherwise."""
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise HarnessError(f"{where}: not a kernel-profile record (no \"kind\": \"{KIND}\"); "
                               "write one with `harness profile NET ... --out RESULTS_DIR`")
        if doc.get("schema") != SCHEMA:
            raise HarnessError(f"{where}: kernel-profile schema {doc.get('schema')!r}, this harness reads {SCHEMA}")
        try:
            return build(cls, doc)  # every value's type checked (harness.results.schema)
        except SchemaError as exc:
            raise HarnessError(f"{where}: malformed kernel-profile record ({exc})") from None


def profile_stem(config: Config, tool: str) -> str:
    """``<network>-<backend>-<mode>-<device kind>-b<batch>-<tool>``, safe as a file name."""
    c = config
    return name_part(f"{c.network}-{c.backend}-{c.mode or 'default'}-{c.device_kind}-b{c.batch}-{tool}", 200)


def profiles_dir(results_dir: str | os.PathLike[str]) -> Path:
    return Path(results_dir) / PROFILES_DIR


def check_replaceable(results_dir: str | os.PathLike[str], config: Config, tool: str) -> None:
    """Raise unless a profile of ``config`` and ``tool`` may be written here: a file of the same name that holds
    a profile of another device model is never replaced (the two machines' profiles belong in two results
    directories, and silently dropping one would lose a measurement). Called before anything is run or moved."""
    path = profiles_dir(results_dir) / (profile_stem(config, tool) + ".json")
    if not path.exists():
        return
    try:
        old = read_profile(path)
    except HarnessError:
        return
    if old.device_model != config.hardware:
        raise HarnessError(f"{path}: holds a profile of {old.device_model!r}, this one is of {config.hardware!r}: "
                           "profile into another results directory")


def write_profile(results_dir: str | os.PathLike[str], record: ProfileRecord) -> Path:
    """Write (or replace) the record of this configuration and tool (see :func:`check_replaceable`)."""
    check_replaceable(results_dir, record.config, record.tool)
    folder = profiles_dir(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / record.file_name()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_profiles(results_dir: str | os.PathLike[str], skipped: list[str] | None = None) -> list[ProfileRecord]:
    """Every kernel-profile record of a results directory (none when it has no profiles folder). A file that
    is not a readable record is a HarnessError naming it, or, where ``skipped`` is given, named there (one
    line each) and left out, the file left as it is."""
    out = []
    for path in sorted(profiles_dir(results_dir).glob("*.json")):
        try:
            out.append(read_profile(path))
        except HarnessError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
    return out


def read_profile(path: Path) -> ProfileRecord:
    """One kernel-profile record file, every value's type checked; HarnessError naming the file otherwise."""
    data = read_regular_file(path, "kernel-profile record")  # a FIFO would block a plain read
    try:
        doc = loads(data)
    except ValueError as exc:
        raise HarnessError(f"{path}: cannot read kernel-profile record ({' '.join(str(exc).split())[:200]})") from None
    return ProfileRecord.from_json(doc, str(path))
