"""Table V from nvprof --metrics and ncu CSVs; stall shares sum to 100 %."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernels.events import KernelMetrics
from harness.kernels.metrics import kernel_attributes, stall_shares, table_v
from harness.kernels.parsers import load_trace

PROFILES = Path(__file__).resolve().parent.parent / "kernels_profiles"


def test_nvprof_metrics_table_v() -> None:
    rows = {r.family: r.values for r in table_v(load_trace(PROFILES / "synthetic-nvprof-metrics.csv").metrics)}
    assert set(rows) == {"gemv2T", "gemv2N", "gemmk1"}
    t = rows["gemv2T"]
    assert t["occupancy_pct"] == pytest.approx(6.2)
    assert t["warp_execution_efficiency_pct"] == pytest.approx(80.7)
    assert t["branch_divergence_pct"] == pytest.approx(25.0)
    assert t["bandwidth_utilization_pct"] == pytest.approx(10.0)  # dram_utilization "Low (1)"
    stalls = {k: v for k, v in t.items() if k.startswith("stall_")}
    assert sum(stalls.values()) == pytest.approx(100.0)
    assert stalls["stall_memory_dependency_pct"] == pytest.approx(100 * 40 / 90.6)


def test_ncu_names_map_to_the_same_attributes() -> None:
    m = KernelMetrics("gemv2N_kernel", 1, {
        "sm__warps_active.avg.pct_of_peak_sustained_active": 6.2,
        "smsp__thread_inst_executed_per_inst_executed.ratio": 31.776,
        "smsp__sass_average_branch_targets_threads_uniform.pct": 100.0,
        "smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct": 1.0,
        "smsp__warp_issue_stalled_short_scoreboard_per_warp_active.pct": 2.0,
        "smsp__warp_issue_stalled_wait_per_warp_active.pct": 2.0,
        "smsp__warp_issue_stalled_barrier_per_warp_active.pct": 3.0,
        "smsp__warp_issue_stalled_selected_per_warp_active.pct": 50.0,  # issuing: not a stall
        "smsp__warp_issue_stalled_misc_per_warp_active.pct": 2.0})
    a = kernel_attributes(m)
    assert a["occupancy_pct"] == 6.2 and a["branch_divergence_pct"] == 0.0
    assert a["warp_execution_efficiency_pct"] == pytest.approx(99.3)
    assert a["stall_memory_dependency_pct"] == pytest.approx(10.0)
    assert a["stall_instruction_dependency_pct"] == pytest.approx(40.0)
    assert a["stall_synchronization_pct"] == pytest.approx(30.0)
    assert a["stall_other_pct"] == pytest.approx(20.0)


def test_no_stalls_no_shares() -> None:
    assert stall_shares({"achieved_occupancy": 0.5}) == {}


def test_weighted_by_invocations() -> None:
    rows = table_v([KernelMetrics("gemmk1_kernel", 3, {"achieved_occupancy": 0.1}),
                    KernelMetrics("gemmk1_kernel<x>", 1, {"achieved_occupancy": 0.5})])
    assert rows[0].values["occupancy_pct"] == pytest.approx(20.0) and rows[0].invocations == 4
