"""benchmarks/energy_sources.py: the counter, integrated instant power and integrated averaged power over ONE
span. Against SYNTHETIC NVML (tests/data/synthetic_nvml: a made-up GPU drawing a constant 150 W, its counter
growing at exactly that rate), with the GPU load replaced by sleeping; nothing here is a measurement. The
operands' set-up takes a second, as a large allocation and cuBLAS's first products do: a counter read before it
(as the script once did) would exceed the integrated powers by two thirds."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_measure_nvml import UUID_A, synthetic_nvml  # noqa: F401  (a fixture)

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "energy_sources.py"


def test_the_three_sources_share_one_span(synthetic_nvml, monkeypatch, capsys) -> None:  # noqa: F811
    torch = pytest.importorskip("torch")
    synthetic_nvml(gpus=[{"uuid": UUID_A, "name": "Synthetic A", "cc": [9, 0]}], power_w=150.0)
    spec = importlib.util.spec_from_file_location("energy_sources_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "identify", lambda device: SimpleNamespace(uuid=UUID_A))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(module, "prepared_operands", lambda device, size: (time.sleep(1.0), None))
    monkeypatch.setattr(module, "steady_load", lambda a, b, seconds: (time.sleep(seconds), 40)[1])
    monkeypatch.setattr(sys, "argv", ["energy_sources.py", "--seconds", "1.5", "--idle", "0.5"])
    assert module.main() == 0
    out = capsys.readouterr().out
    joules = {name: float(value) for name, value in
              re.findall(r"^  (energy counter|integrated \S+|integrated averaged reading) +([\d.]+) J", out, re.M)}
    assert set(joules) == {"energy counter", "integrated nvml-instant", "integrated averaged reading"}, out
    counter = joules["energy counter"]
    assert counter == pytest.approx(150.0 * 1.5, rel=0.05)
    for name in ("integrated nvml-instant", "integrated averaged reading"):
        assert joules[name] == pytest.approx(counter, rel=0.005), out  # one span: the same energy
    assert "one span for all three sources" in out and "energy counter refresh:" in out
