"""When a window's energy is evidence: the counter's own refresh bounds its edges, all sources share one span,
records say when a window is too short, and the report leaves those energies out.

The GPU windows run against tests/data/synthetic_nvml (SYNTHETIC: made-up GPUs whose energy counter moves in
steps of ``energy_refresh_s``); nothing here is a measurement."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_measure_nvml import UUID_A, SleepSession, synthetic_nvml  # noqa: F401  (a fixture)

from harness.measure import energy
from harness.measure.energy import Span
from harness.measure.timer import TimingProtocol
from harness.measure.window import GpuTarget, MeasurementWindow, WindowSettings

SYNTHETIC_RESULTS = Path(__file__).parent / "data" / "synthetic-gpu-results"


def steady_timeline(seconds: float, power_w: float, counter_refresh_s: float, rate_hz: float = 50.0) -> dict:
    """A 50 Hz timeline of a load that holds still: constant instant power (it never changes, so its own
    refresh is not seen) and a counter that moves every ``counter_refresh_s``."""
    t = np.arange(0.0, seconds, 1.0 / rate_hz)
    counter = np.floor(t / counter_refresh_s) * counter_refresh_s * power_w
    return {"t": list(t), "power_instant_w": [power_w] * len(t), "energy_j": list(counter)}


def test_the_counter_edges_take_the_counters_own_refresh() -> None:
    timeline = steady_timeline(6.0, 200.0, 0.1)
    idle, timed = Span(0.0, 1.0), Span(1.5, 5.5)
    figures, notes = energy.timeline_energy(timeline, idle, timed, 100, 10**9, 800.0, True)
    assert figures is not None and figures.counter_refresh_s == pytest.approx(0.1)
    edge = math.sqrt(2.0) * 200.0 * 0.1  # one refresh of the COUNTER at each edge, at the window's power
    assert figures.energy_counter_unc_j == pytest.approx(math.hypot(energy.NVML_POWER_ACCURACY_W * 4.0, edge))
    assert figures.window_too_short is None and not notes  # 28 J of edges in 800 J: 3.5 %


def test_a_window_shorter_than_its_edges_allow_says_so() -> None:
    timeline = steady_timeline(3.0, 200.0, 0.1)
    figures, _ = energy.timeline_energy(timeline, Span(0.0, 1.0), Span(1.5, 2.0), 10, 10**9, 100.0, True)
    assert figures is not None and figures.window_too_short is not None
    assert "energy counter" in figures.window_too_short and "at least 2.8 s" in figures.window_too_short


def test_an_integrated_one_second_average_needs_a_long_window() -> None:
    """Without counter or instant field, the energy is the integral of a 1-s averaged reading, which lags
    the load by up to a second at each edge: 3 s is far too short, 30 s is enough."""
    t = list(np.arange(0.0, 40.0, 0.02))
    power = [150.0 + 10.0 * math.sin(x) for x in t]
    timeline = {"t": t, "power_average_w": power}
    short, _ = energy.timeline_energy(timeline, Span(0.0, 2.0), Span(3.0, 6.0), 10, 10**9, None, True)
    long, _ = energy.timeline_energy(timeline, Span(0.0, 2.0), Span(3.0, 33.0), 10, 10**9, None, True)
    assert short.power_source == "nvml-average-1s" and short.energy_source == "integrated"
    assert short.window_too_short and "1000 ms each" in short.window_too_short
    assert long.window_too_short is None


def test_a_counter_with_no_refresh_seen_is_not_evidence() -> None:
    figures = energy.counter_figures_without_idle(30.0, Span(0.0, 0.2), 5, 10**9)
    assert figures.window_too_short and "cannot be bounded" in figures.window_too_short


def _window(min_window_s: float) -> MeasurementWindow:
    settings = WindowSettings(protocol=TimingProtocol(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0),
                              min_window_s=min_window_s, idle_s=0.3, poll_hz=50.0)
    return MeasurementWindow("cuda:0", settings, GpuTarget(UUID_A))


def _measure(window: MeasurementWindow):
    window.begin()
    return window.measure(SleepSession(), batch=1, macs_per_forward=10**9)  # type: ignore[arg-type]


def test_a_gpu_window_samples_the_counter_and_spans_its_reads(synthetic_nvml) -> None:  # noqa: F811
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A", "cc": [9, 0]}], power_w=150.0,
                   energy_refresh_s=0.1)
    result = _measure(_window(3.2))
    e = result.energy
    assert e.counter_refresh_s == pytest.approx(0.1, abs=0.021)  # the poller samples it at 50 Hz
    # one span for every source: the counter (stepping every 0.1 s) and the integral agree within its edges
    assert e.energy_integrated_j == pytest.approx(e.energy_counter_j, abs=2 * 150.0 * 0.1)
    assert e.duration_s >= result.timing.wall_end - result.timing.wall_start  # the counter's reads bracket it
    assert e.window_too_short is None

    short = _measure(_window(0.4)).energy
    assert short.window_too_short is not None and "energy counter" in short.window_too_short


def test_the_report_leaves_out_energies_of_short_windows(tmp_path: Path) -> None:
    from harness.report import measured

    results = tmp_path / "results"
    shutil.copytree(SYNTHETIC_RESULTS, results)
    lines = (results / "results.jsonl").read_text().splitlines()
    marked = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("energy") and record["config"]["network"] == "alexnet" and record["config"]["batch"] == 4:
            record["energy"]["window_too_short"] = "energy counter: edges uncertain by 9 % of the energy"
            lines[i] = json.dumps(record)
            marked.append(record["key"])
    assert len(marked) == 1
    (results / "results.jsonl").write_text("\n".join(lines) + "\n")
    frame = measured.load([results]).frame
    row = frame[frame["key"] == marked[0]].iloc[0]
    assert math.isnan(row["energy.gmacs_per_joule"]) and math.isnan(row["energy.energy_j"])
    assert row["latency.median_s"] > 0  # the record's latency stays
    others = frame[(frame["batch"] == measured.ENERGY_BATCH) & (frame["key"] != marked[0])]
    assert others["energy.gmacs_per_joule"].notna().sum() >= 11
    # and the report says so, rather than leaving a blank cell unexplained
    from harness.report.build import build

    intro = build([results], tmp_path / "report").markdown.read_text().split("## Summary")[0]
    assert "Energy left out: 1 record(s) whose window was too short" in intro
