"""The layer-profile record: per-layer times of one configuration, by its engine's own mechanism.

One record per configuration (a :class:`harness.results.records.Config`, the same key as a timing record's),
kept in files of its own (:mod:`harness.layertime.store`), never beside timing records: a layer profile
runs instrumented passes, and its whole-forward figure is measured interleaved with them, so it is not a
latency result. It carries:

- ``whole``: the plain forward (``Session.forward``, as ``harness bench`` times it) measured in the same
  worker, alternating with the instrumented passes, so that both see the same machine;
- ``instrumented``: the wall time of an instrumented pass (what per-layer timing costs);
- ``rows``: what the engine ran, each with the prototxt layers it covers, its per-pass time statistics,
  and what the analyzer says those layers cost (MACs, parameters, the data they move);
- ``layers``: every prototxt layer, its kind and MACs (the analyzer's, the same on every engine) and the row
  that ran it (its own, or the fused group it ran in), or None where the engine ran no work for it;
- ``whole_s``, ``instrumented_s``, ``pass_sums_s``: per timed pair, the plain forward, the instrumented pass and
  the sum of its rows; the gap and the overhead are medians over the pairs (each pair saw the same moment of
  the machine).

:meth:`LayerProfile.from_dict` checks every field's type as a timing record's are checked
(:func:`harness.results.schema.build`): a record read from a file that is not one is an error naming the
field, never a half-read record.

Standard library only (and the results records): the worker builds it under pycaffe's interpreter too.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.results.records import STATUSES, Config, LatencyFigures, Placement, Status
from harness.results.schema import build

KIND = "layer-profile"
SCHEMA = 1


@dataclass
class RowTime:
    """One row as the engine ran it, with its time over the instrumented passes and its layers' costs."""

    name: str  # the engine's unit: a prototxt layer, 'a+b+c' for a fused group, or the engine's own step
    layers: list[str]  # prototxt layers it ran (empty: a step the engine added)
    types: list[str]  # their Caffe types
    ops: list[str]  # what the engine ran (its op types or layer types)
    note: str  # 'fused by ...', 'in place (writes x)', 'added by ...', or ''
    category: str  # layer kind for the summaries (harness.layertime.join.category)
    median_s: float
    ci_low_s: float  # order-statistic interval of the median (harness.results.median)
    ci_high_s: float
    ci_coverage: float | None
    mean_s: float
    min_s: float
    max_s: float
    macs: int  # analyzer, BVLC Caffe's counting (--convention caffe), at the run's batch
    params: int
    input_elements: int  # blobs read from outside the row
    output_elements: int  # blobs the row writes (an in-place blob once)
    bytes_moved: int  # (params + inputs + outputs) x bytes per element at the run's precision


@dataclass
class LayerEntry:
    """A prototxt layer: its kind and MACs, and the engine's row that ran it (None: no row did)."""

    name: str
    type: str
    category: str
    macs: int
    row: str | None


@dataclass
class LayerProfile:
    config: Config
    status: Status
    message: str | None = None
    mechanism: str | None = None  # what a row's time means for this engine (LayerTimer.mechanism)
    precision: str | None = None  # the session's (fp32, fp16 autocast, ...): bytes_moved counts at it
    bytes_per_element: int | None = None
    whole: LatencyFigures | None = None  # the plain forward, interleaved with the instrumented passes
    instrumented: LatencyFigures | None = None  # one instrumented pass, wall time
    whole_s: list[float] = field(default_factory=list)  # per timed pair: the plain forward,
    instrumented_s: list[float] = field(default_factory=list)  # the instrumented pass,
    pass_sums_s: list[float] = field(default_factory=list)  # and the sum of its rows
    rows: list[RowTime] = field(default_factory=list)
    layers: list[LayerEntry] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    contended: dict[str, Any] | None = None  # what disturbed the measurement (a flag, not a status)
    placement: Placement | None = None
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"layer-profile status must be one of {STATUSES}, got {self.status!r}")
        if not len(self.whole_s) == len(self.instrumented_s) == len(self.pass_sums_s):
            raise ValueError(f"whole_s, instrumented_s and pass_sums_s are one value per timed pair: "
                             f"{len(self.whole_s)}, {len(self.instrumented_s)}, {len(self.pass_sums_s)} values")
        if not all(w > 0 for w in self.whole_s):
            raise ValueError("whole_s holds a forward time that is not above 0")

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def rows_sum_s(self) -> float:
        """The sum of the rows' median times (what the rows' shares of time are shares of)."""
        return sum(r.median_s for r in self.rows)

    @property
    def pass_sum_s(self) -> float | None:
        """The median over instrumented passes of the sum of their rows (what compares with the whole forward's
        median; the sum of the rows' medians is lower where passes vary)."""
        return statistics.median(self.pass_sums_s) if self.pass_sums_s else None

    @property
    def gap(self) -> float | None:
        """Median over the pairs of (whole forward - sum of the rows) / whole forward: what runs between layers
        (framework bookkeeping, copies) when positive; what per-layer timing adds inside the rows when negative.
        Paired, so that load on a shared machine, which changes both members of a pair alike, cancels."""
        pairs = list(zip(self.whole_s, self.pass_sums_s, strict=True))
        return statistics.median((w - s) / w for w, s in pairs) if pairs else None

    @property
    def overhead(self) -> float | None:
        """Median over the pairs of instrumented pass / plain forward - 1: what per-layer timing costs."""
        pairs = list(zip(self.instrumented_s, self.whole_s, strict=True))
        return statistics.median(i / w for i, w in pairs) - 1 if pairs else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "key": self.key, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> LayerProfile:
        """A record from its JSON form, every value's type checked (:mod:`harness.results.schema`); ValueError
        (SchemaError) naming the field that is not as it should be."""
        if not isinstance(data, dict):
            raise TypeError(f"a layer profile is a JSON object, not {type(data).__name__}")
        if data.get("kind") != KIND:
            raise ValueError(f"not a layer profile (kind {data.get('kind')!r}, expected {KIND!r})")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"layer-profile schema {data.get('schema')!r}; this harness reads {SCHEMA}")
        return build(cls, data)

