"""Energy and power derivation (integration, idle subtraction, repeated readings, uncertainty, GMACs/J).

No NVIDIA GPU was available to record real NVML readings, so the timeline used here is the clearly
labelled SYNTHETIC file tests/data/synthetic-nvml-timeline.json, constructed so that every expected
value below can be worked out by hand (see its "description")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.measure import energy
from harness.measure.energy import Span

DATA = Path(__file__).parent / "data" / "synthetic-nvml-timeline.json"
IDLE = Span(1000.0, 1001.98)  # samples 0-99: idle only
TIMED = Span(1002.0, 1006.0)  # samples 100-300


@pytest.fixture(scope="module")
def timeline() -> dict[str, list[float]]:
    doc = json.loads(DATA.read_text())
    assert doc["synthetic"] is True
    return doc["timeline"]


def test_integrate_by_hand() -> None:
    # a ramp 0 -> 10 W over 1 s then flat: [0.5, 1.5] = ramp part 0.5*(5+10)/2 + flat 0.5*10 = 3.75 + 5
    t, p = [0.0, 1.0, 2.0], [0.0, 10.0, 10.0]
    assert energy.integrate(t, p, 0.5, 1.5) == pytest.approx(8.75)
    assert energy.integrate(t, p, 0.0, 2.0) == pytest.approx(15.0)
    # held constant beyond the samples
    assert energy.integrate(t, p, 2.0, 3.0) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        energy.integrate(t, p, 1.0, 1.0)


def test_repeated_readings_and_sensor_refresh(timeline) -> None:
    t, p = timeline["t"], timeline["power_w"]
    # 60 full blocks of 5 equal samples (4 repeats each) and one final single sample
    assert energy.repeated_readings(p) == 240
    assert energy.update_interval(t, p) == pytest.approx(0.1)
    assert energy.achieved_rate(t) == pytest.approx(50.0)
    assert len(energy.distinct_readings(p)) == 61
    figures = energy.poller_figures(t, p, requested_hz=50.0)
    assert (figures.samples, figures.repeated_power_readings) == (301, 240)
    assert energy.repeated_readings([1.0]) == 0 and energy.update_interval([0.0], [1.0]) is None


def test_energy_from_integrated_power_with_idle_subtraction(timeline) -> None:
    # every block-edge interval averages the two alternating values, so the means are exact:
    # idle 60 W; active 250 W over 4 s = 1000 J; above idle 1000 - 60*4 = 760 J
    f = energy.energy_figures(timeline["t"], timeline["power_w"], IDLE, TIMED, forwards=100,
                              macs_per_forward=2_000_000_000)
    assert f.idle_power_w == pytest.approx(60.0)
    assert f.avg_power_w == pytest.approx(250.0)
    assert f.peak_power_w == 260.0
    assert f.energy_integrated_j == pytest.approx(1000.0)
    assert f.energy_counter_j is None and f.energy_j == f.energy_integrated_j
    assert f.energy_above_idle_j == pytest.approx(760.0)
    assert f.energy_per_forward_j == pytest.approx(10.0)
    # 2e9 MACs x 100 forwards = 200 GMAC over 1000 J; above idle 200 / 760
    assert f.gmacs_per_joule == pytest.approx(0.2)
    assert f.gmacs_per_joule_above_idle == pytest.approx(200 / 760)
    # uncertainty: sensor +-5 W and the standard error of the 41 distinct active readings (21x240, 20x260)
    active = np.array([240.0, 260.0] * 20 + [240.0])
    sem_active = active.std(ddof=1) / math.sqrt(41)
    idle = np.array([59.0, 61.0] * 10)
    sem_idle = idle.std(ddof=1) / math.sqrt(20)
    assert f.energy_integrated_unc_j == pytest.approx(4.0 * math.hypot(5.0, sem_active))
    assert f.energy_above_idle_unc_j == pytest.approx(4.0 * math.hypot(sem_active, sem_idle))
    assert f.gmacs_per_joule_unc == pytest.approx(0.2 * f.energy_integrated_unc_j / 1000.0)


def test_energy_counter_takes_precedence(timeline) -> None:
    f = energy.energy_figures(timeline["t"], timeline["power_w"], IDLE, TIMED, forwards=100,
                              macs_per_forward=2_000_000_000, counter_j=1001.5)
    assert f.energy_j == 1001.5 and f.energy_integrated_j == pytest.approx(1000.0)
    # sensor +-5 W over 4 s, and one 0.1 s refresh at each edge at the mean power 250 W
    edge = math.sqrt(2) * 250.0 * 0.1
    assert f.energy_counter_unc_j == pytest.approx(math.hypot(20.0, edge))
    assert f.energy_unc_j == f.energy_counter_unc_j
    sem_idle = np.array([59.0, 61.0] * 10).std(ddof=1) / math.sqrt(20)
    assert f.energy_above_idle_j == pytest.approx(1001.5 - 240.0)
    assert f.energy_above_idle_unc_j == pytest.approx(math.hypot(edge, 4.0 * sem_idle))
    assert f.gmacs_per_joule == pytest.approx(200 / 1001.5)


def test_no_macs_means_no_efficiency(timeline) -> None:
    f = energy.energy_figures(timeline["t"], timeline["power_w"], IDLE, TIMED, forwards=10, macs_per_forward=None)
    assert f.gmacs_per_joule is None and f.gmacs_per_joule_unc is None


def test_counter_only_figures_for_rapl() -> None:
    # idle 20 J over 2 s = 10 W; timed 150 J over 5 s; above idle 150 - 50 = 100 J
    f = energy.counter_figures(20.0, Span(0.0, 2.0), 150.0, Span(3.0, 8.0), forwards=50,
                               macs_per_forward=3_000_000_000, resolution_j=1e-3, source="rapl")
    assert (f.idle_power_w, f.avg_power_w) == (pytest.approx(10.0), pytest.approx(30.0))
    assert f.energy_above_idle_j == pytest.approx(100.0)
    assert f.energy_unc_j == pytest.approx(math.sqrt(2) * 1e-3)
    assert f.gmacs_per_joule == pytest.approx(150 / 150.0)
    assert f.gmacs_per_joule_above_idle == pytest.approx(1.5)
    assert f.peak_power_w is None and f.energy_integrated_j is None
