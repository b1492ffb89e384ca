"""The timer measures what it says, and the median's interval covers the median as often as it says.

Each test would fail if the timer timed the wrong span (warm-up in the timed phase, the synchronisation left
out, a latency shorter than the call) or if the order-statistic ranks were off by one.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.measure.timer import TimingProtocol
from harness.results.median import median_ci_ranks, median_interval


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


@pytest.mark.parametrize("n", [3, 5, 9, 30])
def test_median_interval_covers_the_median_as_often_as_stated(n: int) -> None:
    """Simulated: 20000 samples of n latencies from a skewed distribution with a known median."""
    _, coverage = median_ci_ranks(n)
    rng = np.random.default_rng(n)
    draws = rng.lognormal(mean=0.0, sigma=0.5, size=(20000, n))  # true median exp(0) = 1
    hits = 0
    for row in draws:
        low, high, stated = median_interval(row)
        assert stated == coverage
        hits += low <= 1.0 <= high
    achieved = hits / len(draws)
    se = (coverage * (1 - coverage) / len(draws)) ** 0.5
    assert abs(achieved - coverage) < 4 * se, (achieved, coverage)


def test_three_iterations_give_min_max_at_75_percent() -> None:
    assert median_ci_ranks(3) == (1, pytest.approx(0.75))
    assert median_interval([0.3, 0.1, 0.2]) == (0.1, 0.3, pytest.approx(0.75))
    assert median_ci_ranks(30)[1] >= 0.95
