"""The one timing protocol every backend runs: warm up, then time forward passes one by one.

In the style of ``torch.utils.benchmark.Timer.blocked_autorange``: warmup lasts until BOTH a minimum
count and a minimum duration are reached (cuDNN autotuning and lazy initialisation happen in the
first calls), then timed iterations run until BOTH a minimum count and a minimum duration are
reached. Every iteration is timed on its own (``perf_counter`` around one synchronised call), so the
per-iteration latencies are kept and the statistics are robust (median, p90, and an order-statistic
interval of the median whose achieved coverage is recorded).

Both classes are plain data and picklable: a backend living in a worker process (Caffe) receives a
:class:`TimingProtocol`, runs it there and sends the :class:`Timing` back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.results.median import MEDIAN_CI_TARGET, median_interval


@dataclass(frozen=True)
class TimingProtocol:
    """How long to warm up and how long to measure. Both minimums of a phase must be reached."""

    warmup_iters: int = 10
    warmup_s: float = 2.0
    min_iters: int = 30
    min_s: float = 5.0
    #: stop the timed phase after this long even if ``min_iters`` is not reached (very slow configs);
    #: at least one timed iteration always runs. None: no cap.
    max_s: float | None = None
    #: called after every forward pass, inside the timed interval. Session.forward() is already
    #: synchronised, so this is for bare callables (e.g. torch.cuda.synchronize). Dropped when pickled:
    #: a worker process synchronises its own session.
    sync: Callable[[], None] | None = field(default=None, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The protocol as data (JSON, a record's settings): every field but ``sync``, a callable."""
        return {k: v for k, v in self.__dict__.items() if k != "sync"}

    def __post_init__(self) -> None:
        if min(self.warmup_iters, self.min_iters) < 0 or min(self.warmup_s, self.min_s) < 0:
            raise ValueError("timing protocol counts and durations must be >= 0")

    def warmup_only(self) -> TimingProtocol:
        """This protocol's warmup with no timed iterations (a measurement window warms up separately)."""
        return replace(self, min_iters=0, min_s=0.0, max_s=None)

    def timed_only(self, min_s: float | None = None) -> TimingProtocol:
        """This protocol's timed phase with no warmup, optionally stretched to at least ``min_s``."""
        return replace(self, warmup_iters=0, warmup_s=0.0, min_s=max(self.min_s, min_s or 0.0))

    def run(self, fn: Callable[[], Any]) -> Timing:
        sync = self.sync
        clock = time.perf_counter
        start = clock()
        warmup_iters = 0
        while warmup_iters < self.warmup_iters or clock() - start < self.warmup_s:
            fn()
            if sync is not None:
                sync()
            warmup_iters += 1
        warmup_s = clock() - start

        latencies: list[float] = []
        wall_start = time.time()
        t_begin = clock()
        t_prev = t_begin
        while len(latencies) < self.min_iters or t_prev - t_begin < self.min_s:
            if self.max_s is not None and latencies and t_prev - t_begin >= self.max_s:
                break
            fn()
            if sync is not None:
                sync()
            t_now = clock()
            latencies.append(t_now - t_prev)
            t_prev = t_now
        return Timing(latencies_s=latencies, warmup_iters=warmup_iters, warmup_s=warmup_s,
                      wall_start=wall_start, wall_end=wall_start + (t_prev - t_begin))


@dataclass
class Timing:
    """Per-iteration latencies of one timed phase and the statistics derived from them.

    Iterations are timed back to back: iteration i ends where i+1 begins, so the sum of latencies is
    exactly the timed phase's duration (nothing between iterations is left unmeasured).
    ``wall_start``/``wall_end`` are ``time.time()`` values, comparable with the NVML poller's timestamps.
    """

    latencies_s: list[float]
    warmup_iters: int = 0
    warmup_s: float = 0.0
    wall_start: float = 0.0
    wall_end: float = 0.0

    @property
    def iterations(self) -> int:
        return len(self.latencies_s)

    @property
    def total_s(self) -> float:
        return float(np.sum(self.latencies_s)) if self.latencies_s else 0.0

    def _array(self) -> np.ndarray:
        if not self.latencies_s:
            raise ValueError("no timed iterations")
        return np.asarray(self.latencies_s, dtype=np.float64)

    @property
    def median_s(self) -> float:
        return float(np.median(self._array()))

    @property
    def mean_s(self) -> float:
        return float(np.mean(self._array()))

    @property
    def p90_s(self) -> float:
        return float(np.percentile(self._array(), 90))

    @property
    def min_s(self) -> float:
        return float(np.min(self._array()))

    @property
    def max_s(self) -> float:
        return float(np.max(self._array()))

    @property
    def stddev_s(self) -> float:
        """Sample standard deviation (ddof=1); 0 for a single iteration."""
        x = self._array()
        return float(np.std(x, ddof=1)) if x.size > 1 else 0.0

    def median_ci(self, confidence: float = MEDIAN_CI_TARGET) -> tuple[float, float, float]:
        """Distribution-free interval of the median latency from order statistics, and its coverage.

        For n independent iterations the number below the true median is Binomial(n, 1/2), so
        ``[x_(k), x_(n+1-k)]`` covers the median with probability ``1 - 2 P(B <= k-1)``. The largest k
        whose coverage reaches ``confidence`` is used; with too few iterations for that (n < 6 at 95%)
        the interval is ``[min, max]`` and the coverage it really has is returned (0.75 for n = 3),
        never a nominal "95%"."""
        return median_interval(self._array(), confidence)

    def throughput(self, batch: int) -> float:
        """Images per second at the median latency: batch / latency."""
        return batch / self.median_s

    def summary(self) -> dict[str, float | int]:
        low, high, coverage = self.median_ci()
        return {"iterations": self.iterations, "total_s": self.total_s, "median_s": self.median_s,
                "mean_s": self.mean_s, "p90_s": self.p90_s, "min_s": self.min_s, "max_s": self.max_s,
                "stddev_s": self.stddev_s, "ci_low_s": low, "ci_high_s": high, "ci_coverage": coverage,
                "warmup_iters": self.warmup_iters, "warmup_s": self.warmup_s}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return cls(**data)
