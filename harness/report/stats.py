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


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis (one value per row of a resample matrix); NaN where a variable is
    constant (r is undefined there, not zero)."""
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (dx * dy).sum(axis=-1) / np.where(denom > 0, denom, 1), np.nan)


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average rank (as Spearman's rho needs).
    Pairwise comparison: O(n^2) per row, fine for the tens of networks a report correlates."""
    below = (values[..., :, None] > values[..., None, :]).sum(axis=-1)
    equal = (values[..., :, None] == values[..., None, :]).sum(axis=-1)
    return below + (equal + 1) / 2


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
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
    nan_ci = (math.nan, math.nan)
    if n < 2:
        return Correlation(n, math.nan, nan_ci, math.nan, nan_ci)
    r_p, r_s = float(pearson(xa, ya)), float(spearman(xa, ya))
    if n < 3:
        return Correlation(n, r_p, nan_ci, r_s, nan_ci)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    bx, by = xa[idx], ya[idx]
    return Correlation(n, r_p, _interval(pearson(bx, by)), r_s, _interval(spearman(bx, by)))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if len(finite) < 0.5 * len(samples):
        return (float("nan"), float("nan"))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def correlation_difference(x1: Sequence[float], x2: Sequence[float], y: Sequence[float], seed: int = 0,
                           resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[int, float, tuple[float, float]]:
    """(n, r(x1, y) - r(x2, y), its paired percentile bootstrap CI): both coefficients computed on the same
    resampled networks, so what the two correlations share does not widen the interval of their difference."""
    a1, a2, ya = (np.asarray(v, dtype=float) for v in (x1, x2, y))
    keep = np.isfinite(a1) & np.isfinite(a2) & np.isfinite(ya)
    a1, a2, ya = a1[keep], a2[keep], ya[keep]
    n = len(ya)
    if n < 3:
        return n, math.nan, (math.nan, math.nan)
    diff = float(pearson(a1, ya) - pearson(a2, ya))
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return n, diff, _interval(pearson(a1[idx], ya[idx]) - pearson(a2[idx], ya[idx]))


@dataclass(frozen=True)
class Estimate:
    """A measured value with the interval its uncertainty gives (about 95%): what comparisons of two
    measurements read. ``how`` says where the interval came from."""

    value: float
    low: float
    high: float
    how: str

    @classmethod
    def sigma(cls, value: float, sigma: float, how: str, k: float = 2.0) -> Estimate:
        """value +- k sigma (k = 2: about 95% for roughly normal errors)."""
        return cls(value, value - k * sigma, value + k * sigma, how)

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.how)

    def text(self, fmt: str = ".4g") -> str:
        return f"{self.value:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def exceeds(a: Estimate, b: Estimate) -> bool:
    """Whether ``a`` is larger than ``b`` by more than their combined uncertainty: the difference beats the
    root sum of squares of a's lower and b's upper half-widths (intervals of about 95% each)."""
    return a.value - b.value > math.hypot(a.value - a.low, b.high - b.value)


def compare(a: Estimate, b: Estimate) -> int:
    """1 when ``a`` exceeds ``b`` (:func:`exceeds`), -1 when ``b`` exceeds ``a``, 0 when the difference is
    within their combined uncertainty."""
    return 1 if exceeds(a, b) else -1 if exceeds(b, a) else 0
