"""Host memory (peak RSS with reset) and CPU energy (RAPL through powercap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.measure import cpu_energy
from harness.measure.memory import peak_rss_bytes, reset_peak_rss

linux = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


@linux
def test_peak_rss_sees_a_large_allocation_and_resets() -> None:
    assert reset_peak_rss(), "this kernel refuses /proc/self/clear_refs"
    before = peak_rss_bytes()
    block = np.ones(256 * 2**20 // 8)  # 256 MiB, touched; large margins so page reclaim elsewhere cannot matter
    peak = peak_rss_bytes()
    del block
    assert peak - before >= 200 * 2**20
    assert reset_peak_rss()
    assert peak_rss_bytes() < peak - 128 * 2**20


def test_no_such_process_gives_none() -> None:
    assert peak_rss_bytes(2**22 + 12345) is None


def write_zone(root: Path, name: str, energy_uj: int, max_uj: int) -> None:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_reads_package_zones_and_handles_wraparound(tmp_path: Path) -> None:
    # files laid out as the kernel's powercap sysfs (Documentation/power/powercap/powercap.rst)
    write_zone(tmp_path, "intel-rapl:0", 1_000_000, 262_143_328_850)
    write_zone(tmp_path, "intel-rapl:1", 262_143_000_000, 262_143_328_850)
    write_zone(tmp_path, "intel-rapl:0:0", 5, 10)  # a subzone: part of package 0, not counted again
    zones = cpu_energy.rapl_zones(tmp_path)
    assert [z.path.name for z in zones] == ["intel-rapl:0", "intel-rapl:1"]
    counter = cpu_energy.RaplCounter(zones)
    start = counter.read()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3500000\n")  # +2.5 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("171150\n")  # wrapped: +328850 + 171150 uJ = 0.5 J
    assert counter.joules_between(start, counter.read()) == pytest.approx(3.0)


def test_rapl_absent_or_unreadable_is_unavailable(tmp_path: Path) -> None:
    assert cpu_energy.rapl_zones(tmp_path / "missing") == []
    (tmp_path / "intel-rapl:0").mkdir()  # no readable energy_uj (as for non-root since Linux 5.10)
    assert cpu_energy.rapl_zones(tmp_path) == []
    with pytest.raises(ValueError):
        cpu_energy.RaplCounter([])
