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
