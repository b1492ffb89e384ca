"""The uncertainty of each measured quantity, as the interval (about 95%) a verdict compares.

- Latency: the record's order-statistic interval of the median (``ci_low_s``, ``ci_high_s``), whose coverage
  ``ci_coverage`` is exact and stated (0.75 for 3 iterations: a short run gives a weaker interval, and says so).
  Per-image latency and throughput are the same interval divided or inverted.
- Energy efficiency: ``gmacs_per_joule +- 2 x gmacs_per_joule_unc`` (the record's uncertainty is one-sigma-style,
  docs/measurement.md). A record without an uncertainty gives an unbounded interval: it decides nothing.
- Memory: one reading per configuration, so the record carries no spread. The noise model: a standard
  uncertainty of ``max(MEMORY_FLOOR_BYTES, MEMORY_REL x reading)`` = max(4 MiB, 1%), interval +- 2 of it. Why:
  in 5 repeated runs of 3 networks (PyTorch, B=1, this project's 2-core CPU; the records are in
  tests/data/cpu-memory-repeats-2026-11-29/) the peak RSS varied with a standard deviation of at most
  2.45 MiB (0.75% of that reading); the model is above every one of them. Two readings of 1 GB must then differ
  by about 2 x sqrt(2) x 10 MB = 29 MB to count. No GPU repeats exist yet: the same model is applied to NVML's
  device memory, unverified there (the GPU acceptance run is where to measure it).
"""

from __future__ import annotations

import math

import pandas as pd

from harness.report.stats import Estimate

MIB = 2**20
MEMORY_FLOOR_BYTES = 4 * MIB
MEMORY_REL = 0.01
SIGMAS = 2.0  # interval half-width in standard uncertainties (about 95% for roughly normal errors)


def memory_sigma(reading: float) -> float:
    return max(MEMORY_FLOOR_BYTES, MEMORY_REL * reading)


def memory(reading_bytes: float) -> Estimate:
    return Estimate.sigma(reading_bytes, memory_sigma(reading_bytes), "memory noise model", SIGMAS)


def _coverage(row: pd.Series) -> str:
    cov = row.get("latency.ci_coverage")
    return "median interval, coverage unknown" if cov is None or not math.isfinite(cov) else \
        f"median interval, coverage {cov:.3g}"


def latency_s(row: pd.Series) -> Estimate:
    """The median latency of a record and its order-statistic interval."""
    return Estimate(float(row["latency.median_s"]), float(row["latency.ci_low_s"]), float(row["latency.ci_high_s"]),
                    _coverage(row))


def per_image_s(row: pd.Series) -> Estimate:
    lat, batch = latency_s(row), int(row["batch"])
    return Estimate(lat.value / batch, lat.low / batch, lat.high / batch, lat.how)


def throughput(row: pd.Series) -> Estimate:
    """Images per second (batch / median) with the interval of the median, inverted."""
    lat, batch = latency_s(row), int(row["batch"])
    return Estimate(batch / lat.value, batch / lat.high, batch / lat.low, lat.how)


def efficiency(row: pd.Series) -> Estimate:
    value, unc = row.get("energy.gmacs_per_joule"), row.get("energy.gmacs_per_joule_unc")
    if unc is None or not math.isfinite(float(unc)):
        return Estimate(float(value), -math.inf, math.inf, "no uncertainty recorded")
    return Estimate.sigma(float(value), float(unc), "energy uncertainty", SIGMAS)


def ratio(a: Estimate, b: Estimate) -> Estimate:
    """a / b with the interval from the extreme ends (conservative: at least the coverage of either)."""
    return Estimate(a.value / b.value, a.low / b.high, a.high / b.low, f"ratio of intervals ({a.how})")
