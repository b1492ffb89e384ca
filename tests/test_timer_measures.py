"""The timer measures what it says: each test would fail if the timer timed the wrong span (the
synchronisation left out, a latency shorter than the call, slow warm-up calls in the timed phase).
tests/test_measure_timer.py covers the statistics and the median interval's coverage."""

from __future__ import annotations

import time

import numpy as np

from harness.measure.timer import TimingProtocol


def busy(seconds: float) -> None:
    """Spin for ``seconds`` (sleep can return early on some kernels; a spin cannot)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_every_latency_is_the_whole_call_and_its_sync() -> None:
    """Each timed latency covers the forward call and its synchronisation (their own span, stamped inside them),
    and little else: robust to a loaded machine, since a preempted call stretches both alike."""
    starts: list[float] = []
    ends: list[float] = []

    def forward() -> None:
        starts.append(time.perf_counter())
        busy(0.004)

    def sync() -> None:
        busy(0.002)
        ends.append(time.perf_counter())

    t = TimingProtocol(warmup_iters=1, warmup_s=0.0, min_iters=8, min_s=0.0, sync=sync).run(forward)
    assert t.iterations == 8 and len(starts) == len(ends) == 9
    own = [e - s for s, e in zip(starts[1:], ends[1:], strict=True)]  # the warm-up call is not timed
    assert min(own) >= 0.006
    assert all(lat >= span for lat, span in zip(t.latencies_s, own, strict=True))
    assert float(np.median([lat - span for lat, span in zip(t.latencies_s, own, strict=True)])) < 0.002


def test_warmup_calls_are_not_timed() -> None:
    spans: list[float] = []

    def forward() -> None:
        start = time.perf_counter()
        busy(0.030 if len(spans) < 4 else 0.001)  # the first four calls are slow (lazy initialisation)
        spans.append(time.perf_counter() - start)

    t = TimingProtocol(warmup_iters=4, warmup_s=0.0, min_iters=9, min_s=0.0).run(forward)
    assert (t.warmup_iters, t.iterations, len(spans)) == (4, 9, 13)
    assert t.warmup_s >= sum(spans[:4]) >= 0.120
    # the timed phase holds the fast calls only: its latencies track their spans, not the slow ones'
    assert sum(t.latencies_s) >= sum(spans[4:])
    assert t.median_s < float(np.median(spans[4:])) + 0.002
