"""Which capture speaks for a network on a setup when there are several: the report takes one profile per
(setup, network) by tool - nsys, then the PyTorch profiler (both time kernels as they run), then ncu (which
replays each kernel alone), then nvprof - and only then the newest. Made-up records (synthetic: True)."""

from __future__ import annotations

from harness.kernels.profile_record import ProfileRecord
from harness.report.measured import TOOL_PREFERENCE, one_profile_each, profile_rows
from harness.results.records import Config

CONFIG = Config("googlenet", "pytorch", 1, "cuda:0", "eager-fp32", hardware="SYNTHETIC GPU (not a measurement)")


def profile(tool: str, created_at: str, gemv_pct: float) -> ProfileRecord:
    families = [{"family": "gemv2T", "total_ns": gemv_pct, "calls": 1, "pct": gemv_pct},
                {"family": "convolution", "total_ns": 100.0 - gemv_pct, "calls": 1, "pct": 100.0 - gemv_pct}]
    return ProfileRecord(config=CONFIG, tool=tool, host="synthetic", capture=None, capture_range=None,
                         warmup_iters=None, iterations=1, iterations_in_capture=None, gpu_kernels=2,
                         attribution={"families": families}, created_at=created_at, synthetic=True)


def chosen(profiles: list[ProfileRecord]) -> set[str]:
    shares = profile_rows(profiles).assign(setup="pytorch/eager-fp32")
    picked = one_profile_each(shares, profiles)
    assert len(picked["profile"].unique()) == 1  # never the shares of two captures added up
    return {profiles[i].tool for i in picked["profile"]}


def test_the_preferred_tool_wins_over_a_newer_capture() -> None:
    assert TOOL_PREFERENCE == ("nsys", "torch", "ncu", "nvprof")
    # the least preferred tool made the newest capture
    profiles = [profile("nvprof", "2026-12-04T00:00:00+00:00", 40.0), profile("ncu", "2026-12-03T00:00:00+00:00", 30.0),
                profile("torch", "2026-12-02T00:00:00+00:00", 20.0), profile("nsys", "2026-12-01T00:00:00+00:00", 10.0)]
    assert chosen(profiles) == {"nsys"}
    assert chosen(profiles[:3]) == {"torch"}  # no nsys capture
    assert chosen(profiles[:2]) == {"ncu"}  # neither nsys nor the PyTorch profiler
    assert chosen(profiles[:1]) == {"nvprof"}


def test_among_captures_of_one_tool_the_newest_wins() -> None:
    older, newer = profile("ncu", "2026-12-01T00:00:00+00:00", 10.0), profile("ncu", "2026-12-02T00:00:00+00:00", 50.0)
    shares = profile_rows([older, newer]).assign(setup="pytorch/eager-fp32")
    picked = one_profile_each(shares, [older, newer])
    assert set(picked["profile"]) == {1}
