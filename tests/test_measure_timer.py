"""The timing protocol and its statistics: known latency sequences, and a real (numpy matmul) workload."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from harness.measure.timer import Timing, TimingProtocol
from harness.results.median import median_ci_ranks, median_interval


def test_statistics_of_a_known_sequence() -> None:
    # 1..10 ms: median 5.5, mean 5.5, p90 (linear interpolation) 9.1, min 1, max 10,
    # sample stddev sqrt(sum((k-5.5)^2)/9) = sqrt(82.5/9) = 3.02765...
    t = Timing(latencies_s=[k / 1000 for k in range(1, 11)])
    assert t.iterations == 10
    assert t.total_s == pytest.approx(0.055)
    assert t.median_s == pytest.approx(0.0055)
    assert t.mean_s == pytest.approx(0.0055)
    assert t.p90_s == pytest.approx(0.0091)
    assert (t.min_s, t.max_s) == (pytest.approx(0.001), pytest.approx(0.010))
    assert t.stddev_s == pytest.approx(np.sqrt(82.5 / 9) / 1000)
    assert t.throughput(4) == pytest.approx(4 / 0.0055)


def test_median_interval_from_order_statistics_with_its_coverage() -> None:
    # n = 10: P(Binomial(10, 1/2) <= 1) = 11/1024, so [x_(2), x_(9)] covers the median with 1 - 22/1024
    t = Timing(latencies_s=[k / 1000 for k in range(1, 11)])
    assert t.median_ci() == (pytest.approx(0.002), pytest.approx(0.009), pytest.approx(1 - 22 / 1024))
    # n = 3 cannot reach 95%: [min, max], and the 75% it really has is said
    assert Timing(latencies_s=[0.3, 0.1, 0.2]).median_ci() == (0.1, 0.3, 0.75)
    assert median_ci_ranks(1) == (1, 0.0) and median_ci_ranks(6) == (1, 1 - 2 / 64)
    # the textbook ranks of the 95% interval of a median (x_(10), x_(21) at n=30; x_(40), x_(61) at n=100)
    assert median_ci_ranks(30)[0] == 10 and median_ci_ranks(100)[0] == 40
    assert median_ci_ranks(100)[1] == pytest.approx(0.9648, abs=1e-4)


def test_the_stated_coverage_is_the_real_one() -> None:
    """4000 samples of 10 exponential draws: the share of intervals holding the true median (ln 2)
    matches the stated coverage, 0.9785, within three binomial standard errors."""
    rng = np.random.default_rng(7)
    draws = rng.exponential(1.0, size=(4000, 10))
    hits = [low <= np.log(2) <= high for low, high, _ in (median_interval(row) for row in draws)]
    stated = median_interval(draws[0])[2]
    assert abs(np.mean(hits) - stated) < 3 * np.sqrt(stated * (1 - stated) / len(hits))


def test_no_iterations_is_an_error_not_a_number() -> None:
    with pytest.raises(ValueError):
        _ = Timing(latencies_s=[]).median_s


def matmul_workload() -> tuple[list[float], object]:
    a = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    calls: list[float] = []

    def forward() -> None:
        a @ a
        calls.append(time.perf_counter())

    return calls, forward


def test_protocol_reaches_both_minimums_of_each_phase() -> None:
    calls, forward = matmul_workload()
    syncs: list[int] = []
    protocol = TimingProtocol(warmup_iters=3, warmup_s=0.05, min_iters=7, min_s=0.1, sync=lambda: syncs.append(1))
    t = protocol.run(forward)
    assert t.warmup_iters >= 3 and t.warmup_s >= 0.05
    assert t.iterations >= 7 and t.total_s >= 0.1
    assert len(calls) == t.warmup_iters + t.iterations == len(syncs)


def test_iterations_are_timed_back_to_back_on_the_wall_clock_of_the_poller() -> None:
    """Each latency is the work of one call (sleeps of known length), and ``wall_start`` is the wall-clock
    time (the NVML poller's clock) of the timed phase's start, after the warmup, not before it."""
    ends: list[float] = []
    durations = iter([0.03, 0.01, 0.02] * 10)

    def forward() -> None:
        time.sleep(next(durations))
        ends.append(time.time())

    before = time.time()
    t = TimingProtocol(warmup_iters=3, warmup_s=0.0, min_iters=6, min_s=0.0).run(forward)
    assert [round(x, 2) for x in t.latencies_s] == pytest.approx([0.03, 0.01, 0.02] * 2, abs=0.008)
    assert ends[2] <= t.wall_start + 0.005 and t.wall_start >= before + 0.06
    assert t.wall_end == pytest.approx(ends[-1], abs=0.005)


def test_count_dominates_when_duration_is_short() -> None:
    _, forward = matmul_workload()
    t = TimingProtocol(warmup_iters=5, warmup_s=0.0, min_iters=25, min_s=0.0).run(forward)
    assert (t.warmup_iters, t.iterations) == (5, 25)


def test_max_s_caps_a_slow_configuration_but_runs_at_least_once() -> None:
    t = TimingProtocol(warmup_iters=0, warmup_s=0, min_iters=1000, min_s=0, max_s=0.05).run(
        lambda: time.sleep(0.02))
    assert 1 <= t.iterations <= 5
    t = TimingProtocol(warmup_iters=0, warmup_s=0, min_iters=3, min_s=0, max_s=0.0).run(lambda: None)
    assert t.iterations == 1


def test_warmup_only_and_timed_only_split_the_protocol() -> None:
    p = TimingProtocol(warmup_iters=4, warmup_s=0.0, min_iters=6, min_s=0.0)
    warm = p.warmup_only().run(lambda: None)
    assert (warm.warmup_iters, warm.iterations) == (4, 0)
    timed = p.timed_only(min_s=0.02).run(lambda: None)
    assert timed.warmup_iters == 0 and timed.iterations >= 6 and timed.total_s >= 0.02


def test_protocol_pickles_without_its_sync_hook() -> None:
    p = TimingProtocol(min_iters=3, sync=lambda: None)
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.sync is None
    t = Timing(latencies_s=[0.1, 0.2], warmup_iters=2)
    assert Timing.from_dict(pickle.loads(pickle.dumps(t.to_dict()))) == t


def test_negative_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        TimingProtocol(min_iters=-1)
