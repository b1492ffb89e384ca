"""CPU package energy from Intel/AMD RAPL through /sys/class/powercap, where the kernel exposes it.

Where RAPL is absent or unreadable (VMs, containers, non-root since Linux 5.10), CPU power and energy
are reported as unavailable (None) - never as zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
#: Top-level package zones only (intel-rapl:0, amd-rapl:1...); subzones (intel-rapl:0:0) are parts of them.
PACKAGE_ZONE = re.compile(r"^(intel|amd)-rapl:\d+$")


@dataclass(frozen=True)
class RaplZone:
    path: Path
    max_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())


def rapl_zones(root: Path = POWERCAP) -> list[RaplZone]:
    """Readable package zones; empty where RAPL is not available here."""
    zones = []
    for path in sorted(root.glob("*-rapl:*")) if root.is_dir() else []:
        if not PACKAGE_ZONE.match(path.name):
            continue
        try:
            int((path / "energy_uj").read_text())
            zones.append(RaplZone(path, int((path / "max_energy_range_uj").read_text())))
        except (OSError, ValueError):
            continue
    return zones


class RaplCounter:
    """Sum of all package zones' energy counters, with wrap-around handled."""

    def __init__(self, zones: list[RaplZone]) -> None:
        if not zones:
            raise ValueError("no readable RAPL zone")
        self.zones = zones

    def read(self) -> list[int]:
        return [z.read_uj() for z in self.zones]

    def joules_between(self, start: list[int], end: list[int]) -> float:
        total = 0
        for zone, a, b in zip(self.zones, start, end, strict=True):
            total += b - a if b >= a else b + zone.max_uj - a  # the counter wrapped once
        return total / 1e6


def open_rapl() -> RaplCounter | None:
    """A counter over every readable package zone, or None: CPU energy unavailable here."""
    zones = rapl_zones()
    return RaplCounter(zones) if zones else None
