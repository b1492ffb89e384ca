"""Energy and power figures derived from a sampled power timeline and an energy counter.

Pure functions over arrays, so they are tested against recorded (or clearly labelled synthetic)
timelines without a GPU. Formulas and the derivation of each uncertainty: docs/measurement.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.results.records import EnergyFigures, PollerFigures

#: nvidia-smi documents board power draw as "accurate to within +/- 5 watts".
NVML_POWER_ACCURACY_W = 5.0


def integrate(t: Sequence[float], p: Sequence[float], t0: float, t1: float) -> float:
    """Trapezoid integral of p(t) over [t0, t1]; p is linearly interpolated at the bounds
    (held constant beyond the first/last sample)."""
    ta, pa = np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if ta.size == 0 or t1 <= t0:
        raise ValueError("need samples and t1 > t0 to integrate")
    inside = (ta > t0) & (ta < t1)
    ts = np.concatenate(([t0], ta[inside], [t1]))
    ps = np.concatenate(([np.interp(t0, ta, pa)], pa[inside], [np.interp(t1, ta, pa)]))
    return float(np.sum((ps[1:] + ps[:-1]) * np.diff(ts)) / 2.0)


def in_window(t: Sequence[float], values: Sequence[float], t0: float, t1: float) -> np.ndarray:
    ta, va = np.asarray(t, dtype=np.float64), np.asarray(values, dtype=np.float64)
    return va[(ta >= t0) & (ta <= t1)]


def repeated_readings(values: Sequence[float]) -> int:
    """Samples equal to the one before: the sensor had not refreshed between the two reads."""
    va = np.asarray(values)
    return int(np.count_nonzero(va[1:] == va[:-1])) if va.size > 1 else 0


def distinct_readings(values: Sequence[float]) -> np.ndarray:
    """The readings that start a new sensor value (first sample, then each change)."""
    va = np.asarray(values, dtype=np.float64)
    if va.size == 0:
        return va
    return va[np.concatenate(([True], va[1:] != va[:-1]))]


def update_interval(t: Sequence[float], values: Sequence[float]) -> float | None:
    """Median time between changes of the reading: the sensor's effective refresh period."""
    ta, va = np.asarray(t, dtype=np.float64), np.asarray(values)
    if va.size < 2:
        return None
    changes = ta[1:][va[1:] != va[:-1]]
    return float(np.median(np.diff(changes))) if changes.size > 1 else None


def achieved_rate(t: Sequence[float]) -> float:
    ta = np.asarray(t, dtype=np.float64)
    return float((ta.size - 1) / (ta[-1] - ta[0])) if ta.size > 1 and ta[-1] > ta[0] else 0.0


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of the DISTINCT readings (repeats are not independent samples)."""
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


@dataclass(frozen=True)
class Span:
    """A time interval in ``time.time()`` seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def poller_figures(t: Sequence[float], power_w: Sequence[float], requested_hz: float) -> PollerFigures:
    return PollerFigures(requested_hz=requested_hz, achieved_hz=achieved_rate(t), samples=len(t),
                         repeated_power_readings=repeated_readings(power_w),
                         power_update_interval_s=update_interval(t, power_w))


def energy_figures(t: Sequence[float], power_w: Sequence[float], idle: Span, timed: Span, forwards: int,
                   macs_per_forward: int | None, counter_j: float | None = None,
                   sensor_accuracy_w: float = NVML_POWER_ACCURACY_W, source: str = "nvml") -> EnergyFigures:
    """Power/energy figures of the timed span from a power timeline (W) sampled over idle and timed spans.

    ``counter_j``: the device energy counter's increase over ``timed`` (None where unsupported).
    """
    duration = timed.duration
    idle_power = integrate(t, power_w, idle.start, idle.end) / idle.duration
    avg_power = integrate(t, power_w, timed.start, timed.end) / duration
    active = in_window(t, power_w, timed.start, timed.end)
    peak_power = float(active.max()) if active.size else avg_power
    sem_active = standard_error(distinct_readings(active))
    sem_idle = standard_error(distinct_readings(in_window(t, power_w, idle.start, idle.end)))

    integrated = avg_power * duration
    integrated_unc = duration * float(np.hypot(sensor_accuracy_w, sem_active))
    # The counter is exact between its updates; each window edge is uncertain by up to one sensor refresh.
    edge = float(np.sqrt(2.0) * avg_power * (update_interval(t, power_w) or 0.0))
    counter_unc = None if counter_j is None else float(np.hypot(sensor_accuracy_w * duration, edge))
    if counter_j is not None:
        energy, energy_unc = counter_j, counter_unc
        # A constant sensor offset cancels in (energy - idle); the counter's edges and the idle mean remain.
        above_unc = float(np.hypot(edge, duration * sem_idle))
    else:
        energy, energy_unc = integrated, integrated_unc
        above_unc = duration * float(np.hypot(sem_active, sem_idle))
    above = energy - idle_power * duration
    gmacs, gmacs_unc, gmacs_above = efficiency(macs_per_forward, forwards, energy, energy_unc, above)
    return EnergyFigures(
        source=source, duration_s=duration, forwards=forwards, idle_power_w=idle_power, avg_power_w=avg_power,
        peak_power_w=peak_power, energy_counter_j=counter_j, energy_counter_unc_j=counter_unc,
        energy_integrated_j=integrated, energy_integrated_unc_j=integrated_unc, energy_above_idle_j=above,
        energy_above_idle_unc_j=above_unc, energy_j=energy, energy_unc_j=energy_unc,
        energy_per_forward_j=energy / forwards if forwards else None, gmacs_per_joule=gmacs,
        gmacs_per_joule_unc=gmacs_unc, gmacs_per_joule_above_idle=gmacs_above)


def efficiency(macs_per_forward: int | None, forwards: int, energy_j: float, energy_unc_j: float | None,
               above_idle_j: float | None) -> tuple[float | None, float | None, float | None]:
    """(GMACs/J, its uncertainty, GMACs/J above idle): 1e9 MACs per joule, the paper's efficiency."""
    if macs_per_forward is None or energy_j <= 0:
        return None, None, None
    work = macs_per_forward * forwards / 1e9
    gmacs = work / energy_j
    unc = None if energy_unc_j is None else gmacs * energy_unc_j / energy_j
    return gmacs, unc, (work / above_idle_j if above_idle_j is not None and above_idle_j > 0 else None)


def counter_figures(idle_j: float, idle: Span, timed_j: float, timed: Span, forwards: int,
                    macs_per_forward: int | None, resolution_j: float, source: str) -> EnergyFigures:
    """Figures from an energy counter alone (CPU RAPL: no sampled power timeline).

    Uncertainty: the counter's resolution at both reads of each span; the meter's own accuracy is not
    documented for RAPL and is not included (docs/measurement.md).
    """
    idle_power = idle_j / idle.duration
    unc = float(np.sqrt(2.0) * resolution_j)
    above = timed_j - idle_power * timed.duration
    above_unc = float(np.hypot(unc, unc * timed.duration / idle.duration))
    gmacs, gmacs_unc, gmacs_above = efficiency(macs_per_forward, forwards, timed_j, unc, above)
    return EnergyFigures(
        source=source, duration_s=timed.duration, forwards=forwards, idle_power_w=idle_power,
        avg_power_w=timed_j / timed.duration, energy_counter_j=timed_j, energy_counter_unc_j=unc,
        energy_above_idle_j=above, energy_above_idle_unc_j=above_unc, energy_j=timed_j, energy_unc_j=unc,
        energy_per_forward_j=timed_j / forwards if forwards else None, gmacs_per_joule=gmacs,
        gmacs_per_joule_unc=gmacs_unc, gmacs_per_joule_above_idle=gmacs_above)
