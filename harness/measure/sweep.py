"""Sweeps: networks x backends x batch sizes x devices, each configuration measured in one window and
stored at once, so that a sweep killed mid-way loses at most the configuration that was running.

A configuration that fails is recorded with its status (``oom`` for DeviceOutOfMemory - the paper's
Inception-V2 at B=128 on a P100 -, ``unsupported``, ``unavailable``, ``failed``) and the sweep goes on.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from harness.analysis.analyzer import analyze
from harness.backends.base import RunTarget, Session, get_backend
from harness.errors import BackendUnavailable, DeviceOutOfMemory, HarnessError, UnsupportedLayer
from harness.ir.graph import Graph
from harness.measure.settings import apply_overrides, default_settings
from harness.measure.window import MeasurementWindow, WindowResult, WindowSettings
from harness.results.metadata import host_metadata, run_metadata
from harness.results.records import Config, LatencyFigures, Record
from harness.results.store import ResultsStore

#: The paper's batch sizes on the P100 (Table III at B=1, efficiency at B=4, memory growth up to 128).
PAPER_GPU_BATCHES = (1, 4, 8, 16, 32, 64, 128)
CPU_BATCHES = (1, 4)


@dataclass
class SweepSpec:
    networks: list[str]
    backends: list[str]
    batches: list[int]
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    modes: list[str | None] = field(default_factory=lambda: [None])
    seed: int = 0
    #: overrides of WindowSettings / TimingProtocol fields (from YAML), applied on top of the device default
    settings: dict[str, Any] = field(default_factory=dict)

    def configs(self) -> list[Config]:
        return [Config(network=n, backend=b, batch=bs, device=d, mode=m, seed=self.seed)
                for d, b, n, bs, m in itertools.product(self.devices, self.backends, self.networks,
                                                        self.batches, self.modes)]

    def window_settings(self, device: str) -> WindowSettings:
        return apply_overrides(default_settings(device), self.settings)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


#: resolves a network name (zoo name or prototxt path) to a Graph
GraphResolver = Callable[[str], Graph]


def resolve_network(name: str) -> Graph:
    from harness import zoo

    return zoo.resolve(name)


#: loads a configuration into a session: (backend name, target) -> Session
SessionLoader = Callable[[str, RunTarget], Session]


def load_session(backend: str, target: RunTarget) -> Session:
    return get_backend(backend).load(target)


def open_session(backend: str, network: str, batch: int, device: str = "cpu", mode: str | None = None) -> Session:
    """A loaded session for a zoo network or prototxt (what the benchmarks/ scripts measure)."""
    target = RunTarget(graph=resolve_network(network), network=network, batch=batch, device=device, mode=mode)
    return load_session(backend, target)


def run_config(config: Config, settings: WindowSettings, resolve: GraphResolver = resolve_network,
               load: SessionLoader = load_session) -> Record:
    """Measure one configuration; every failure becomes a record with its status, never an exception
    (KeyboardInterrupt excepted)."""
    record = Record(config=config, status="ok", started_at=now_iso())
    settings_dict = asdict(replace(settings, protocol=replace(settings.protocol, sync=None)))
    del settings_dict["protocol"]["sync"]
    try:
        graph = resolve(config.network)
        record.macs_per_forward = analyze(graph, "paper", batch=config.batch, network=config.network).totals.macs
        window = MeasurementWindow(config.device, settings)
        window.begin()
        try:
            target = RunTarget(graph=graph, network=config.network, batch=config.batch, device=config.device,
                               mode=config.mode, seed=config.seed)
            with load(config.backend, target) as session:
                result = window.measure(session, config.batch, record.macs_per_forward)
                info = dict(session.info)
        except BaseException:
            window.abort()
            raise
        _fill(record, result, config.batch)
        record.metadata = run_metadata(info, result.device_info, settings_dict)
        if result.notes:
            record.metadata["notes"] = result.notes
    except DeviceOutOfMemory as exc:
        _fail(record, "oom", exc)
    except UnsupportedLayer as exc:
        _fail(record, "unsupported", exc)
    except BackendUnavailable as exc:
        _fail(record, "unavailable", exc)
    except HarnessError as exc:
        _fail(record, "failed", exc)
    except Exception as exc:  # a backend bug must not end the sweep: record where it happened
        _fail(record, "failed", exc, detail="".join(traceback.format_exception(exc)[-3:]))
    record.finished_at = now_iso()
    return record


def _fill(record: Record, result: WindowResult, batch: int) -> None:
    t = result.timing
    record.latency = LatencyFigures(**t.summary(), throughput_fps=t.throughput(batch))
    record.latencies_s = list(t.latencies_s)
    record.memory = result.memory
    record.energy = result.energy
    record.poller = result.poller
    record.timeline = result.timeline


def _fail(record: Record, status: str, exc: BaseException, detail: str | None = None) -> None:
    record.status = status  # type: ignore[assignment]  # one of STATUSES by construction
    record.message = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
    if detail:
        record.metadata["traceback"] = detail
    record.metadata = {**host_metadata(), **record.metadata}


def run_sweep(configs: Iterable[Config], store: ResultsStore, settings_for: Callable[[str], WindowSettings],
              force: bool = False, on_start: Callable[[Config], None] | None = None,
              on_done: Callable[[Record | None, Config], None] | None = None,
              resolve: GraphResolver = resolve_network, load: SessionLoader = load_session) -> list[Record]:
    """Run every configuration not already finished in ``store`` (all of them with ``force``), storing
    each record as soon as it exists. ``on_done`` gets None for a skipped configuration."""
    finished = set() if force else store.finished()
    done = []
    for config in configs:
        if config.key() in finished:
            if on_done:
                on_done(None, config)
            continue
        if on_start:
            on_start(config)
        record = run_config(config, settings_for(config.device), resolve, load)
        store.append(record)
        done.append(record)
        if on_done:
            on_done(record, config)
    return done
