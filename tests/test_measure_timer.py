"""The timing protocol and its statistics: known latency sequences, and a real (numpy matmul) workload."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from harness.measure.timer import Timing, TimingProtocol


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


def test_bootstrap_interval_brackets_the_median_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    t = Timing(latencies_s=list(0.010 + rng.exponential(0.001, size=200)))
    low, high = t.median_ci()
    assert low < t.median_s < high
    assert (low, high) == t.median_ci()  # fixed seed
    # the median of 200 exponential draws (scale 1 ms) is known to within roughly +-0.15 ms
    assert high - low < 0.0005
    wider = t.median_ci(0.99)
    assert wider[0] <= low and wider[1] >= high


def test_constant_sequence_has_zero_spread() -> None:
    t = Timing(latencies_s=[0.002] * 5)
    assert t.stddev_s == 0.0
    assert t.median_ci() == (pytest.approx(0.002), pytest.approx(0.002))
    assert Timing(latencies_s=[0.003]).stddev_s == 0.0


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
    # back-to-back timing: the latencies add up to the timed phase's wall-clock span
    assert t.wall_end - t.wall_start == pytest.approx(t.total_s, abs=1e-6)


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
