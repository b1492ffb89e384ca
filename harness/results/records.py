"""One result record per configuration: status, every figure, the raw timeline and the metadata.

A record is plain data (nested dataclasses of numbers and strings) that round-trips through JSON.
``None`` always means "not measured / not available" - never zero. :meth:`Record.flat` gives one
pandas row (nested fields joined with dots; raw timelines and per-iteration latencies left out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict

from harness.results.median import median_interval
from harness.results.schema import SchemaError, Timestamp, build

Status = Literal["ok", "oom", "unsupported", "failed", "unavailable"]
STATUSES: tuple[str, ...] = ("ok", "oom", "unsupported", "failed", "unavailable")
#: 2: the median's interval became ci_low_s/ci_high_s/ci_coverage (order statistics, achieved coverage)
#: instead of a bootstrap "95%"; Config.hardware, Record.inferred_from/contended/placement, power sources.
SCHEMA_VERSION = 2


def utc_now() -> str:
    """A record's timestamps: ISO 8601 in UTC, to the millisecond (comparable as text: the merge rule's
    "newest")."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Config:
    """What was run. Its :meth:`key` identifies the configuration in the results store."""

    network: str
    backend: str
    batch: int
    device: str = "cpu"
    mode: str | None = None  # None: the backend's default mode
    seed: int = 0
    #: the device's model (GPU name from NVML, CPU model name): part of the key, so results of two GPU
    #: models never stand for each other on resume. None while not yet known (a Slurm task learns it on
    #: its node) and in schema-1 records.
    hardware: str | None = None

    @property
    def device_kind(self) -> str:
        """"cpu" or "cuda": which GPU of a model ran a configuration is placement, not configuration."""
        return self.device.partition(":")[0]

    def key(self) -> str:
        device = self.device_kind if self.hardware else self.device
        where = f"{device}[{self.hardware}]" if self.hardware else device
        return f"{self.network}|{self.backend}|{self.mode or 'default'}|{where}|b{self.batch}|s{self.seed}"

    def plan_key(self) -> str:
        """The key without the hardware: what a sweep asks for before it knows where it will run."""
        return replace(self, hardware=None, device=self.device_kind).key()


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
    ci_low_s: float  # order-statistic interval of the median (harness.measure.timer.median_ci_ranks)
    ci_high_s: float
    ci_coverage: float | None  # the probability that interval really has of covering the median (0.75 at n=3)
    warmup_iters: int
    warmup_s: float
    throughput_fps: float  # batch / median latency


@dataclass
class MemoryFigures:
    """Memory footprint. Device figures come from NVML; host RSS from /proc; framework from the session."""

    device_used_peak_bytes: int | None = None  # whole-device "memory used" as nvidia-smi shows (the paper's)
    device_used_start_bytes: int | None = None  # the same at window start, before the network was loaded
    process_device_start_bytes: int | None = None  # NVML's figure for our process at window start (a fresh
    #   worker has none: anything here is memory a previous configuration left behind)
    process_device_peak_bytes: int | None = None  # NVML per-process figure of the benchmarked process(es)
    host_rss_peak_bytes: int | None = None  # peak resident set of the process running the network
    framework_bytes: int | None = None  # what the framework itself reports


@dataclass
class EnergyFigures:
    """Power and energy of the timed phase. Every energy figure has a one-sigma-style uncertainty
    (see docs/measurement.md for how each is derived).

    ``power_source`` names the power series idle/avg/peak power and ``energy_integrated_j`` come from:
    ``nvml-instant`` (NVML_FI_DEV_POWER_INSTANT), ``nvml-average`` (nvmlDeviceGetPowerUsage, a 1-second
    average on Ampere and newer) or ``rapl``. ``energy_source`` names where ``energy_j`` came from:
    ``counter`` (NVML's energy counter / RAPL) or ``integrated``. The ``*_averaged`` figures are the
    second series (the averaged reading) where the instant one is primary."""

    source: str  # "nvml" or "rapl"
    duration_s: float
    forwards: int
    power_source: str | None = None
    energy_source: str | None = None
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
    avg_power_averaged_w: float | None = None  # from the averaged reading, where instant power is primary
    peak_power_averaged_w: float | None = None
    energy_integrated_averaged_j: float | None = None
    #: median time between updates of the energy counter, sampled by the poller (its edges' uncertainty)
    counter_refresh_s: float | None = None
    #: why this window is too short for its energy to be evidence (None: it is long enough); the report
    #: leaves such energies out (harness.measure.energy.window_too_short says the rule)
    window_too_short: str | None = None


@dataclass
class Placement:
    """Where a configuration ran: recorded with every record, never part of its key."""

    executor: str  # local, multi-gpu, slurm
    host: str
    worker_pid: int | None = None
    gpu_uuid: str | None = None
    gpu_index: int | None = None  # NVML index on the host
    cuda_visible_devices: str | None = None  # what the worker was pinned to
    job_id: str | None = None  # scheduler job and array task (Slurm)
    task_id: str | None = None
    shard: str | None = None  # the results file this record was written to


@dataclass
class PollerFigures:
    """How well the power poller kept up."""

    requested_hz: float
    achieved_hz: float
    samples: int
    repeated_power_readings: int  # samples whose power equals the previous sample's (sensor not refreshed)
    power_update_interval_s: float | None  # median time between changes of the power reading


class ContendedFlag(TypedDict):
    """A record's ``contended``: why its window was disturbed, with what was observed beside the reasons
    (harness.measure.contention)."""

    reasons: list[str]


class RunMetadata(TypedDict, total=False):
    """The metadata keys readers compute with (the report's device groups and flags); every other key is
    kept as recorded (harness.results.metadata.run_metadata)."""

    host: str | None
    cpu: str | None
    gpu_name: str | None
    gpu_uuid: str | None
    memory_total_bytes: int | None
    synthetic: bool


@dataclass
class Record:
    config: Config
    status: Status
    message: str | None = None  # why it is not ok (one line)
    # Analyzer MACs (paper convention) at this batch: a float only where Netscope's Deconvolution rule gives a
    # fraction (a kernel its stride does not divide), as the analyzer's totals do.
    macs_per_forward: int | float | None = None
    latency: LatencyFigures | None = None
    latencies_s: list[float] = field(default_factory=list)  # every timed iteration
    memory: MemoryFigures = field(default_factory=MemoryFigures)
    energy: EnergyFigures | None = None
    poller: PollerFigures | None = None
    #: raw samples, column-wise: {"t": [...], "power_w": [...], "memory_used_bytes": [...], ...}
    timeline: dict[str, list[Any]] = field(default_factory=dict)
    metadata: RunMetadata = field(default_factory=dict)  # type: ignore[assignment]
    started_at: Timestamp | None = None  # ISO 8601, UTC
    finished_at: Timestamp | None = None
    #: an ``oom`` not measured but inferred: the key of the measured ``oom`` at a smaller batch
    inferred_from: str | None = None
    #: what disturbed the window (other GPU processes, CPU load), or None; a flag, not a status
    contended: ContendedFlag | None = None
    placement: Placement | None = None
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
    def from_dict(cls, data: Any) -> Record:
        """A record from its JSON form, of this schema or an older one (upgraded on the way in), every
        value's type checked (:mod:`harness.results.schema`). Raises SchemaError (a ValueError) naming
        the first field that does not fit."""
        if not isinstance(data, dict):
            raise SchemaError("", f"a record is a JSON object, not {type(data).__name__}")
        return build(cls, _upgrade(data))

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
        row["device_kind"] = self.config.device_kind
        row["inferred_from"] = self.inferred_from
        row["contended"] = None if not self.contended else "; ".join(self.contended.get("reasons", [])) or True
        placement = asdict(self.placement) if self.placement is not None else {}
        row.update({f"placement.{f.name}": placement.get(f.name) for f in fields(Placement)})
        for k, v in self.metadata.items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                row[f"meta.{k}"] = v
        return row


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: the bootstrap "95%" interval of the median is recomputed from the stored
    iterations with order statistics (its real coverage); the memory figure read at window start
    kept its value under its new name."""
    schema = build(int, data.get("schema", 1), "schema")
    if schema < 1:
        raise SchemaError("schema", f"record schema {schema} does not exist (the first is 1)")
    if schema >= SCHEMA_VERSION:
        return data
    data = dict(data)
    latency = data.get("latency")
    if isinstance(latency, dict) and "ci95_low_s" in latency:
        latency = dict(latency)
        low, high = latency.pop("ci95_low_s"), latency.pop("ci95_high_s", None)
        coverage = None
        samples = build(list[float], data.get("latencies_s") or [], "latencies_s")
        if samples and all(x == x for x in samples):  # null iterations (NaN) leave the stored interval
            low, high, coverage = median_interval(samples)
        latency.update(ci_low_s=low, ci_high_s=high, ci_coverage=coverage)
        data["latency"] = latency
    memory = data.get("memory")
    if isinstance(memory, dict) and "device_used_idle_bytes" in memory:
        memory = dict(memory)
        memory["device_used_start_bytes"] = memory.pop("device_used_idle_bytes")
        data["memory"] = memory
    return data
