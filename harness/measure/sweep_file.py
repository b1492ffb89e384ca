"""Sweep files: the YAML form of a sweep (networks, backends, batches, devices, modes, seed, settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.measure.settings import CPU_SETTINGS, apply_overrides


def load_sweep_yaml(path: Path) -> dict[str, Any]:
    """A sweep file: keys networks, backends, batches, devices, modes, seed, settings (all optional)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read sweep config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            problem = getattr(exc, "problem", None) or "syntax error"
            raise HarnessError(f"{path}:{mark.line + 1}:{mark.column + 1}: {problem} (not valid YAML)") from None
        raise HarnessError(f"{path}: not valid YAML ({exc})") from None
    data = data or {}
    allowed = ("networks", "backends", "batches", "devices", "modes", "seed", "settings")
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: must be a mapping of {'/'.join(allowed)}, got a {type(data).__name__}")
    extra = set(data) - set(allowed)
    if extra:
        raise HarnessError(f"{path}: unknown sweep key(s) {', '.join(sorted(map(str, extra)))} "
                           f"(allowed: {', '.join(sorted(allowed))})")
    for key in ("networks", "backends", "batches", "devices", "modes"):
        if key in data and not isinstance(data[key], list):
            raise HarnessError(f"{path}: '{key}' must be a list")
    if "batches" in data and not all(isinstance(b, int) and b > 0 for b in data["batches"]):
        raise HarnessError(f"{path}: 'batches' must be positive integers")
    if not isinstance(data.get("settings", {}), dict):
        raise HarnessError(f"{path}: 'settings' must be a mapping")
    apply_overrides(CPU_SETTINGS, data.get("settings", {}), where=f"{path}: settings.")  # names the file
    return data
