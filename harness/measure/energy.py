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
#: A window's energy is evidence only when the uncertainty of its two edges (each up to one refresh of the
#: source, at the window's average power) is at most this share of the energy: beyond it, where the window
#: starts and ends relative to the sensor's updates decides the figure more than the network does.
MAX_EDGE_SHARE = 0.05
#: NVIDIA documents nvmlDeviceGetPowerUsage on Ampere and newer (GA100 excepted) as an average over 1 s: an
#: integral of that reading lags the load by up to this long at each edge.
AVERAGED_POWER_LAG_S = 1.0


def valid_samples(t: Sequence[float], values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """(t, values) without the samples a poller could not read (None) or that are not finite."""
    ta = np.asarray(t, dtype=np.float64)
    va = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    keep = np.isfinite(va) & np.isfinite(ta)
    return ta[keep], va[keep]


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


#: power series of a poller timeline, most direct first, with the label each figure records
POWER_SERIES = (("power_instant_w", "nvml-instant"), ("power_average_w", "nvml-power-usage"))


def counter_refresh(timeline: dict[str, list], span: Span) -> float | None:
    """The energy counter's own refresh interval: the median time between changes of the counter the poller
    sampled (column ``energy_j``) over ``span``; None where it was not sampled or changed less than twice."""
    if not timeline.get("energy_j"):
        return None
    t, j = valid_samples(timeline["t"], timeline["energy_j"])
    inside = (t >= span.start) & (t <= span.end)
    return update_interval(t[inside], j[inside])


def timeline_energy(timeline: dict[str, list], idle: Span, timed: Span, forwards: int, macs_per_forward: int | None,
                    counter_j: float | None, usage_is_average: bool | None) -> tuple[EnergyFigures | None, list[str]]:
    """Figures of one window from the poller's timeline: instant power where the GPU gave any, for idle,
    average and peak power and the integrated energy; the averaged reading as the second series; the
    energy counter, where it exists, as the primary energy, its edges uncertain by its own refresh interval
    (sampled by the poller). Samples the poller could not read are left out; a series with no sample in a
    span is not used. Returns the figures (None when no power series has samples in both spans) and notes
    on what was missing."""
    notes: list[str] = []
    refresh = counter_refresh(timeline, timed) if counter_j is not None else None
    series = []
    for column, label in POWER_SERIES:
        if not timeline.get(column):
            continue  # a series this GPU does not answer (the poller lists it as unsupported)
        t, p = valid_samples(timeline["t"], timeline[column])
        missing = len(timeline[column]) - p.size
        if missing:
            notes.append(f"{column}: {missing} sample(s) unreadable, left out")
        if _covers(t, idle) and _covers(t, timed):
            if column == "power_average_w":
                label = {True: "nvml-average-1s", False: "nvml-power-usage-instant"}.get(usage_is_average, label)
            series.append((t, p, label))
    if not series:
        notes.append("no power samples in the idle and timed spans: power and integrated energy not measured")
        return None, notes
    t, p, label = series[0]
    if counter_j is not None and refresh is None:
        notes.append("the energy counter's refresh was not seen in the timed phase (not sampled, or fewer than "
                     "two changes): its edges take the power series' refresh interval")
    figures = energy_figures(t, p, idle, timed, forwards, macs_per_forward, counter_j=counter_j, power_source=label,
                             counter_refresh_s=refresh)
    if len(series) > 1:
        t2, p2, _ = series[1]
        figures.avg_power_averaged_w = integrate(t2, p2, timed.start, timed.end) / timed.duration
        active = in_window(t2, p2, timed.start, timed.end)
        figures.peak_power_averaged_w = float(active.max()) if active.size else None
        figures.energy_integrated_averaged_j = figures.avg_power_averaged_w * timed.duration
    return figures, notes


def _covers(t: np.ndarray, span: Span) -> bool:
    """At least one sample inside ``span`` (integration holds the nearest value beyond the samples)."""
    return bool(np.any((t >= span.start) & (t <= span.end)))


def window_too_short(duration_s: float, energy_j: float, avg_power_w: float, edge_s: float | None,
                     source: str) -> str | None:
    """Why a window's energy is not evidence, or None when it is: ``edge_s`` is how far each edge of the
    window may be off in the energy's source (one refresh of the counter or power series; the averaging
    time of a 1-s averaged reading); the edges' uncertainty sqrt(2)·P·edge_s must stay within
    :data:`MAX_EDGE_SHARE` of the energy. A source whose refresh was never seen cannot bound its edges."""
    if edge_s is None:
        return f"{source}: no refresh seen in the {duration_s:.2f} s window, so its edges cannot be bounded"
    if energy_j <= 0:
        return f"{source}: no energy measured in the {duration_s:.2f} s window"
    share = float(np.sqrt(2.0)) * avg_power_w * edge_s / energy_j
    if share <= MAX_EDGE_SHARE:
        return None
    needed = float(np.sqrt(2.0)) * edge_s / MAX_EDGE_SHARE
    return (f"{source}: edges uncertain by {100 * share:.0f} % of the energy ({edge_s * 1e3:.0f} ms each) in a "
            f"{duration_s:.2f} s window; at least {needed:.1f} s keeps them within {100 * MAX_EDGE_SHARE:.0f} %")


def energy_figures(t: Sequence[float], power_w: Sequence[float], idle: Span, timed: Span, forwards: int,
                   macs_per_forward: int | None, counter_j: float | None = None,
                   sensor_accuracy_w: float = NVML_POWER_ACCURACY_W, source: str = "nvml",
                   power_source: str | None = None, counter_refresh_s: float | None = None) -> EnergyFigures:
    """Power/energy figures of the timed span from a power timeline (W) sampled over idle and timed spans.

    ``counter_j``: the device energy counter's increase over ``timed`` (None where unsupported).
    ``power_source``: which power series ``power_w`` is (recorded with the figures).
    ``counter_refresh_s``: the counter's own refresh interval (None: unknown, the power series' is used).
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
    power_refresh = update_interval(in_window(t, t, timed.start, timed.end),
                                    in_window(t, power_w, timed.start, timed.end)) or update_interval(t, power_w)
    # The counter is exact between its updates; each window edge is uncertain by up to one of ITS refreshes.
    counter_edge_s = counter_refresh_s if counter_refresh_s is not None else power_refresh
    edge = float(np.sqrt(2.0) * avg_power * (counter_edge_s or 0.0))
    counter_unc = None if counter_j is None else float(np.hypot(sensor_accuracy_w * duration, edge))
    if counter_j is not None:
        energy, energy_unc = counter_j, counter_unc
        # A constant sensor offset cancels in (energy - idle); the counter's edges and the idle mean remain.
        above_unc = float(np.hypot(edge, duration * sem_idle))
        too_short = window_too_short(duration, energy, avg_power, counter_edge_s, "energy counter")
    else:
        energy, energy_unc = integrated, integrated_unc
        above_unc = duration * float(np.hypot(sem_active, sem_idle))
        # an averaged reading lags the load by its averaging time; an instant one by a refresh
        lag = AVERAGED_POWER_LAG_S if power_source == "nvml-average-1s" else power_refresh
        too_short = window_too_short(duration, energy, avg_power, lag, f"integrated {power_source or 'power'}")
    above = energy - idle_power * duration
    gmacs, gmacs_unc, gmacs_above = efficiency(macs_per_forward, forwards, energy, energy_unc, above)
    return EnergyFigures(
        source=source, duration_s=duration, forwards=forwards, power_source=power_source,
        energy_source="counter" if counter_j is not None else "integrated", idle_power_w=idle_power,
        avg_power_w=avg_power,
        peak_power_w=peak_power, energy_counter_j=counter_j, energy_counter_unc_j=counter_unc,
        energy_integrated_j=integrated, energy_integrated_unc_j=integrated_unc, energy_above_idle_j=above,
        energy_above_idle_unc_j=above_unc, energy_j=energy, energy_unc_j=energy_unc,
        energy_per_forward_j=energy / forwards if forwards else None, gmacs_per_joule=gmacs,
        gmacs_per_joule_unc=gmacs_unc, gmacs_per_joule_above_idle=gmacs_above, counter_refresh_s=counter_refresh_s,
        window_too_short=too_short)


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
        source=source, duration_s=timed.duration, forwards=forwards, power_source=source, energy_source="counter",
        idle_power_w=idle_power,
        avg_power_w=timed_j / timed.duration, energy_counter_j=timed_j, energy_counter_unc_j=unc,
        energy_above_idle_j=above, energy_above_idle_unc_j=above_unc, energy_j=timed_j, energy_unc_j=unc,
        energy_per_forward_j=timed_j / forwards if forwards else None, gmacs_per_joule=gmacs,
        gmacs_per_joule_unc=gmacs_unc, gmacs_per_joule_above_idle=gmacs_above)


def counter_figures_without_idle(counter_j: float, timed: Span, forwards: int, macs_per_forward: int | None,
                                 refresh_s: float | None = None) -> EnergyFigures:
    """Figures from a GPU's energy counter when no power sample could be read (no idle baseline, so
    nothing above idle): the counter's resolution is 1 mJ, the sensor's accuracy as for sampled power; its
    edges are as uncertain as its refresh (``refresh_s``, None: unknown, and the window is not evidence)."""
    unc = NVML_POWER_ACCURACY_W * timed.duration
    gmacs, gmacs_unc, _ = efficiency(macs_per_forward, forwards, counter_j, unc, None)
    return EnergyFigures(
        source="nvml", duration_s=timed.duration, forwards=forwards, energy_source="counter",
        avg_power_w=counter_j / timed.duration, energy_counter_j=counter_j, energy_counter_unc_j=unc,
        energy_j=counter_j, energy_unc_j=unc, energy_per_forward_j=counter_j / forwards if forwards else None,
        gmacs_per_joule=gmacs, gmacs_per_joule_unc=gmacs_unc, counter_refresh_s=refresh_s,
        window_too_short=window_too_short(timed.duration, counter_j, counter_j / timed.duration, refresh_s,
                                          "energy counter"))
