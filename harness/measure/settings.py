"""Measurement settings: the window and timing defaults per device kind, and user overrides of them
(``--set KEY=VALUE``, a sweep file's ``settings:``) checked field by field against their types."""

from __future__ import annotations

import contextlib
import math
from dataclasses import Field, fields, replace
from typing import Any

from harness.errors import HarnessError
from harness.measure.timer import TimingProtocol
from harness.measure.window import WindowSettings

#: CPU runs are short by default so that `bench all` on a small machine finishes in minutes; there is no
#: power sensor to feed, so the window need not be long. GPU windows are stretched for energy.
CPU_SETTINGS = WindowSettings(protocol=TimingProtocol(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.5,
                                                      max_s=10.0),
                              min_window_s=0.5, idle_s=0.2)
GPU_SETTINGS = WindowSettings(protocol=TimingProtocol(warmup_iters=20, warmup_s=3.0, min_iters=50, min_s=5.0,
                                                      max_s=120.0),
                              min_window_s=10.0, idle_s=3.0)


def default_settings(device: str) -> WindowSettings:
    return GPU_SETTINGS if device.startswith("cuda") else CPU_SETTINGS


def apply_overrides(base: WindowSettings, overrides: dict[str, Any], where: str = "--set ") -> WindowSettings:
    """``base`` with WindowSettings / TimingProtocol fields replaced; ``where`` prefixes the setting's name in
    errors (``--set min_s``, ``sweep.yaml: settings.min_s``)."""
    window_fields = {f.name: f for f in fields(WindowSettings) if f.name != "protocol"}
    protocol_fields = {f.name: f for f in fields(TimingProtocol) if f.name != "sync"}
    known = window_fields | protocol_fields
    unknown = set(overrides) - set(known)
    if unknown:
        raise HarnessError(f"unknown measurement setting(s): {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(known))})")
    values = {key: _setting_value(f"{where}{key}", value, known[key]) for key, value in overrides.items()}
    if values.get("poll_hz") == 0:
        raise HarnessError(f"{where}poll_hz: must be > 0, got 0")
    protocol = replace(base.protocol, **{k: v for k, v in values.items() if k in protocol_fields})
    return replace(base, protocol=protocol, **{k: v for k, v in values.items() if k in window_fields})


def _setting_value(name: str, value: Any, spec: Field) -> int | float | None:
    """``value`` checked against the field's annotation: every setting is a count (``int``) or a duration,
    rate or temperature (``float``, some ``float | None``), never negative."""
    annotation = str(spec.type)  # a string: the dataclasses' modules use postponed annotations
    kind = int if annotation == "int" else float
    if value is None and "None" in annotation:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # PyYAML reads '1e3' as a string: YAML 1.1 floats need a dot
            value = kind(value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not is_number or (kind is int and not float(value).is_integer()):
        expected = "an integer" if kind is int else "a number"
        raise HarnessError(f"{name}: expected {expected}{' or null' if 'None' in annotation else ''}, "
                           f"got {value!r}")
    if value < 0:
        raise HarnessError(f"{name}: must be >= 0, got {value!r}")
    return kind(value)
