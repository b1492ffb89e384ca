"""Per-layer timing in the worker (job kind ``layers`` of :mod:`harness.worker`): load, time, record.

The worker loads the configuration as a timing worker does (``Backend.load_in_worker``), asks the session
for its engine's per-layer timer (:meth:`harness.backends.base.Session.layer_timer`) and then alternates,
pass after pass, one plain forward (``Session.forward``, timed with ``perf_counter`` as ``harness bench``
times it) and one instrumented pass whose rows the engine times itself. Alternating puts both under the same
conditions (warm caches, the same neighbours on a shared machine), so the gap between the whole forward and
the sum of the rows says what runs between layers, or what the instruments cost, rather than what changed
on the machine between two phases. The timing protocol's warmup and minimums (iterations and seconds)
apply to the pairs.

Standard library and numpy at the top: under pycaffe's interpreter for Caffe, like the worker itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.backends.base import LayerTimer, RunTarget, Session, get_backend
from harness.convert.weights import INPUT_DISTRIBUTION
from harness.errors import LayerTimingUnsupported
from harness.layertime.record import LayerProfile
from harness.layertime.store import LayerProfileStore
from harness.measure.contention import ContentionGuard
from harness.measure.timer import Timing, TimingProtocol
from harness.measure.window import GpuTarget, WindowSettings
from harness.results.metadata import run_metadata
from harness.results.records import Config, LatencyFigures, utc_now
from harness.worker import GraphResolver, JobKind, SessionLoader, load_session, record_failure, resolve_network


@dataclass
class Passes:
    """The timed pairs of one configuration: plain forwards, instrumented passes, and each instrumented
    pass's seconds per row."""

    whole_s: list[float]
    instrumented_s: list[float]
    rows_s: list[list[float]]
    warmup_iters: int
    warmup_s: float


def run_passes(session: Session, timer: LayerTimer, protocol: TimingProtocol,
               guard: ContentionGuard | None = None) -> Passes:
    """Warm up, then time plain and instrumented passes in alternation until the protocol's minimums (at
    least one pair; at most ``max_s`` seconds once one pair ran)."""
    clock = time.perf_counter

    def pair() -> tuple[float, float]:
        start = clock()
        session.forward()
        plain = clock() - start
        timer.attach()
        try:
            start = clock()
            timer.forward()
            instrumented = clock() - start
        finally:
            timer.detach()
        return plain, instrumented

    start, warmup = clock(), 0
    while warmup < protocol.warmup_iters or clock() - start < protocol.warmup_s:
        pair()
        warmup += 1
    warmup_s = clock() - start
    if guard is not None:
        guard.timed_start()
    whole: list[float] = []
    instrumented: list[float] = []
    begin = clock()
    while not whole or len(whole) < protocol.min_iters or clock() - begin < protocol.min_s:
        if protocol.max_s is not None and whole and clock() - begin >= protocol.max_s:
            break
        plain, timed = pair()
        whole.append(plain)
        instrumented.append(timed)
    if guard is not None:
        guard.timed_end()
    rows = timer.passes()
    if len(rows) != warmup + len(whole):
        raise RuntimeError(f"the per-layer timer reports {len(rows)} passes, {warmup + len(whole)} ran")
    return Passes(whole, instrumented, [list(p) for p in rows[warmup:]], warmup, warmup_s)


def latency(samples: list[float], batch: int, warmup_iters: int, warmup_s: float) -> LatencyFigures:
    timing = Timing(latencies_s=samples, warmup_iters=warmup_iters, warmup_s=warmup_s)
    return LatencyFigures(**timing.summary(), throughput_fps=timing.throughput(batch))


def measure_layers(config: Config, settings: WindowSettings, device: str | None = None, gpu: GpuTarget | None = None,
                   resolve: GraphResolver = resolve_network, load: SessionLoader = load_session) -> LayerProfile:
    """Per-layer times of one configuration in this process; every failure becomes the record's status.
    ``gpu`` is not sampled: a layer profile measures no power or memory (the window's NVML poller is not
    started), and its contention guard watches the CPU only."""
    from harness.analysis.analyzer import analysis_of
    from harness.layertime.join import bytes_per_element, join_rows

    profile = LayerProfile(config=config, status="ok", started_at=utc_now())
    guard = ContentionGuard(settings.contention_cpu_share, settings.contention_runnable_share, gpu=False)
    try:
        refusal = get_backend(config.backend).no_layer_timing(config.mode)
        if refusal is not None:  # said before a costly load (a compile)
            raise LayerTimingUnsupported(refusal)
        graph = resolve(config.network)
        analysis = analysis_of(graph, "caffe", batch=config.batch, network=config.network)
        target = RunTarget(graph=graph, network=config.network, batch=config.batch, device=device or config.device,
                           mode=config.mode, seed=config.seed)
        guard.begin()
        with load(config.backend, target) as session:
            timer = session.layer_timer()
            try:
                passes = run_passes(session, timer, settings.protocol, guard)
                units = timer.units()
            finally:
                timer.close()
            info = dict(session.info)
        contention = guard.end()
        precision = str(info.get("precision", "fp32"))
        profile.precision, profile.bytes_per_element = precision, bytes_per_element(precision)
        profile.mechanism = timer.mechanism
        profile.rows, profile.layers = join_rows(units, passes.rows_s, analysis, profile.bytes_per_element)
        profile.whole = latency(passes.whole_s, config.batch, passes.warmup_iters, passes.warmup_s)
        profile.instrumented = latency(passes.instrumented_s, config.batch, passes.warmup_iters, passes.warmup_s)
        profile.whole_s, profile.instrumented_s = passes.whole_s, passes.instrumented_s
        profile.pass_sums_s = [sum(p) for p in passes.rows_s]
        profile.metadata = run_metadata(info, {}, {"protocol": settings.protocol.as_dict(),
                                                   "analysis": "caffe convention"})
        profile.metadata["input_distribution"] = INPUT_DISTRIBUTION
        profile.metadata["contention"] = contention.observed
        profile.contended = contention.flag()
    except Exception as exc:  # every failure becomes the record's status (KeyboardInterrupt is no Exception)
        guard.stop()
        record_failure(profile, exc)
    profile.finished_at = utc_now()
    return profile


#: the job kind ``layers`` (harness.worker.JOB_KINDS)
LAYERS = JobKind(measure=measure_layers, record=LayerProfile, store=LayerProfileStore)
