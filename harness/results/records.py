"""One result record per configuration: status, every figure, the raw timeline and the metadata.

A record is plain data (nested dataclasses of numbers and strings) that round-trips through JSON.
``None`` always means "not measured / not available" - never zero. :meth:`Record.flat` gives one
pandas row (nested fields joined with dots; raw timelines and per-iteration latencies left out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Status = Literal["ok", "oom", "unsupported", "failed", "unavailable"]
STATUSES: tuple[str, ...] = ("ok", "oom", "unsupported", "failed", "unavailable")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Config:
    """What was run. Its :meth:`key` identifies the configuration in the results store."""

    network: str
    backend: str
    batch: int
    device: str = "cpu"
    mode: str | None = None  # None: the backend's default mode
    seed: int = 0

    def key(self) -> str:
        return f"{self.network}|{self.backend}|{self.mode or 'default'}|{self.device}|b{self.batch}|s{self.seed}"


@dataclass
class LatencyFigures:
    """Forward-pass latency of the timed phase (seconds) and the throughput it gives."""

    iterations: int
    total_s: float
    median_s: float
    mean_s: float
    p90_s: float
    min_s: float
    max_s: float
    stddev_s: float
    ci95_low_s: float  # bootstrap CI of the median
    ci95_high_s: float
    warmup_iters: int
    warmup_s: float
    throughput_fps: float  # batch / median latency


@dataclass
class MemoryFigures:
    """Memory footprint. Device figures come from NVML; host RSS from /proc; framework from the session."""

    device_used_peak_bytes: int | None = None  # whole-device "memory used" as nvidia-smi shows (the paper's)
    device_used_idle_bytes: int | None = None  # the same before the network was loaded
    process_device_peak_bytes: int | None = None  # NVML per-process figure of the benchmarked process(es)
    host_rss_peak_bytes: int | None = None  # peak resident set of the process running the network
    framework_bytes: int | None = None  # what the framework itself reports


@dataclass
class EnergyFigures:
    """Power and energy of the timed phase. Every energy figure has a one-sigma-style uncertainty
    (see docs/measurement.md for how each is derived)."""

    source: str  # "nvml" or "rapl"
    duration_s: float
    forwards: int
    idle_power_w: float | None = None
    avg_power_w: float | None = None
    peak_power_w: float | None = None
    energy_counter_j: float | None = None  # from the device's cumulative energy counter
    energy_counter_unc_j: float | None = None
    energy_integrated_j: float | None = None  # trapezoid integral of sampled power
    energy_integrated_unc_j: float | None = None
    energy_above_idle_j: float | None = None  # energy minus idle power x duration
    energy_above_idle_unc_j: float | None = None
    energy_j: float | None = None  # the figure efficiency uses: counter if available, else integrated
    energy_unc_j: float | None = None
    energy_per_forward_j: float | None = None
    gmacs_per_joule: float | None = None  # 1e9 MACs per joule (paper: total energy, batch 4)
    gmacs_per_joule_unc: float | None = None
    gmacs_per_joule_above_idle: float | None = None


@dataclass
class PollerFigures:
    """How well the power poller kept up."""

    requested_hz: float
    achieved_hz: float
    samples: int
    repeated_power_readings: int  # samples whose power equals the previous sample's (sensor not refreshed)
    power_update_interval_s: float | None  # median time between changes of the power reading


@dataclass
class Record:
    config: Config
    status: Status
    message: str | None = None  # why it is not ok (one line)
    macs_per_forward: int | None = None  # analyzer MACs (paper convention) at this batch
    latency: LatencyFigures | None = None
    latencies_s: list[float] = field(default_factory=list)  # every timed iteration
    memory: MemoryFigures = field(default_factory=MemoryFigures)
    energy: EnergyFigures | None = None
    poller: PollerFigures | None = None
    #: raw samples, column-wise: {"t": [...], "power_w": [...], "memory_used_bytes": [...], ...}
    timeline: dict[str, list[Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record status must be one of {STATUSES}, got {self.status!r}")

    @property
    def key(self) -> str:
        return self.config.key()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        nested = {"config": Config, "latency": LatencyFigures, "memory": MemoryFigures,
                  "energy": EnergyFigures, "poller": PollerFigures}
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for name, typ in nested.items():
            if kwargs.get(name) is not None:
                kwargs[name] = typ(**kwargs[name])
        return cls(**kwargs)

    def flat(self) -> dict[str, Any]:
        """One table row: scalars only, nested figures as ``group.name`` columns."""
        row: dict[str, Any] = {"key": self.key, **asdict(self.config), "status": self.status,
                               "message": self.message, "macs_per_forward": self.macs_per_forward,
                               "started_at": self.started_at, "finished_at": self.finished_at}
        for group, typ in (("latency", LatencyFigures), ("memory", MemoryFigures), ("energy", EnergyFigures),
                           ("poller", PollerFigures)):
            value = getattr(self, group)
            values = asdict(value) if value is not None else {}
            # every column is always present (None when not measured), so tables have one schema
            row.update({f"{group}.{f.name}": values.get(f.name) for f in fields(typ)})
        for k, v in self.metadata.items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                row[f"meta.{k}"] = v
        return row
