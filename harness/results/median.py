"""The median's confidence interval from order statistics, with the coverage it really achieves.

Latency records carry it (``ci_low_s``, ``ci_high_s``, ``ci_coverage``) and older records are upgraded
with it, so it lives at the bottom of the house, beside the records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: the coverage the median's interval aims for; what it achieves is recorded beside it
MEDIAN_CI_TARGET = 0.95


def median_ci_ranks(n: int, confidence: float = MEDIAN_CI_TARGET) -> tuple[int, float]:
    """(k, coverage): the 1-based rank k such that ``[x_(k), x_(n+1-k)]`` is the narrowest symmetric
    order-statistic interval of the median with coverage >= ``confidence``, or k = 1 ([min, max]) when
    even that falls short; coverage is exact (binomial with p = 1/2; 0 for a single iteration, whose
    value covers the median with probability zero)."""
    if n < 1:
        raise ValueError("no timed iterations")
    def pmf(i: int) -> float:  # P(B = i), B ~ Binomial(n, 1/2), in log space: 0.5**n underflows for large n
        return math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0))

    cdf = 0.0  # P(B <= k-1), accumulated term by term
    best_k, best_cov = 1, 1.0 - 2.0 * pmf(0)
    for k in range(1, (n + 1) // 2 + 1):
        cdf += pmf(k - 1)
        coverage = 1.0 - 2.0 * cdf
        if coverage < confidence:
            break
        best_k, best_cov = k, coverage
    return best_k, best_cov


def median_interval(values: Sequence[float] | np.ndarray,
                    confidence: float = MEDIAN_CI_TARGET) -> tuple[float, float, float]:
    """(low, high, coverage) of the median of ``values`` (see :func:`median_ci_ranks`)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    k, coverage = median_ci_ranks(x.size, confidence)
    return float(x[k - 1]), float(x[x.size - k]), coverage
