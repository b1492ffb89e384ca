"""Correlation with honest uncertainty: Pearson (the paper's PPMCC) and Spearman, with n and a bootstrap
confidence interval. NumPy only, so the report does not need SciPy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 4000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Correlation:
    n: int
    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "pearson": self.pearson, "pearson_ci_low": self.pearson_ci[0],
                "pearson_ci_high": self.pearson_ci[1], "spearman": self.spearman,
                "spearman_ci_low": self.spearman_ci[0], "spearman_ci_high": self.spearman_ci[1]}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r; NaN when either variable is constant (r is undefined, not zero)."""
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom > 0 else float("nan")


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as Spearman's rho needs)."""
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values), dtype=float)
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


def correlate(x: Sequence[float], y: Sequence[float], seed: int = 0,
              resamples: int = BOOTSTRAP_RESAMPLES) -> Correlation:
    """Both coefficients over the finite pairs, each with a percentile bootstrap CI over resampled pairs.

    Resamples in which a variable is constant have no defined r and are dropped; with very few points the
    interval is therefore wide or undefined (NaN), which is the honest answer."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    nan_ci = (float("nan"), float("nan"))
    if n < 3:
        return Correlation(n, pearson(xa, ya) if n else float("nan"), nan_ci,
                           spearman(xa, ya) if n else float("nan"), nan_ci)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    boot_p = np.array([pearson(xa[i], ya[i]) for i in idx])
    boot_s = np.array([spearman(xa[i], ya[i]) for i in idx])
    return Correlation(n, pearson(xa, ya), _interval(boot_p), spearman(xa, ya), _interval(boot_s))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if len(finite) < 0.5 * len(samples):
        return (float("nan"), float("nan"))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))
