"""Table V: per-family kernel properties from nvprof ``--metrics`` or Nsight Compute.

nvprof metric names are the reference (the paper used nvvp on a P100). Nsight Compute metrics are
translated with NVIDIA's "nvprof Metric Comparison" table (Nsight Compute CLI documentation,
docs.nvidia.com/nsight-compute/NsightComputeCli, section "nvprof Transition Guide" -> "Metric
Comparison"). Stall reasons are grouped into the paper's four categories and normalised so that
the shares sum to 100 %.

Utilisations: nvprof reports functional-unit and DRAM utilisation as levels 0-10 ("Low (1)"); they
are shown as level x 10 %, so they are coarse. ncu reports percentages of peak directly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from harness.kernels.events import KernelMetrics
from harness.kernels.taxonomy import classify

# nvprof stall metric -> paper category
NVPROF_STALLS = {
    "stall_memory_dependency": "memory dependency",
    "stall_exec_dependency": "instruction dependency",
    "stall_sync": "synchronization",
    "stall_inst_fetch": "other", "stall_texture": "other", "stall_other": "other",
    "stall_constant_memory_dependency": "other", "stall_pipe_busy": "other",
    "stall_memory_throttle": "other", "stall_not_selected": "other",
}
# ncu stall reason (the part after "..._stalled_") -> paper category, per the metric comparison table:
# stall_memory_dependency = long_scoreboard; stall_exec_dependency = short_scoreboard + wait;
# stall_sync = barrier + membar; the rest (no_instruction, misc, dispatch_stall, math_pipe_throttle,
# mio_throttle, drain, lg_throttle, not_selected, imc_miss, tex_throttle, ...) = other.
NCU_STALLS = {"long_scoreboard": "memory dependency", "short_scoreboard": "instruction dependency",
              "wait": "instruction dependency", "barrier": "synchronization", "membar": "synchronization"}
NCU_STALL_PREFIXES = ("smsp__warp_issue_stalled_", "smsp__average_warp_latency_issue_stalled_",
                      "smsp__pcsamp_warps_issue_stalled_")
NCU_EXCLUDED_STALLS = {"selected", "sleeping"}  # "selected" is issuing, not stalling
STALL_CATEGORIES = ("memory dependency", "instruction dependency", "synchronization", "other")

NVPROF_FU = ("single_precision_fu_utilization", "double_precision_fu_utilization", "half_precision_fu_utilization",
             "ldst_fu_utilization", "cf_fu_utilization", "special_fu_utilization", "tex_fu_utilization")
NCU = {
    "occupancy": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "warp_execution_efficiency": "smsp__thread_inst_executed_per_inst_executed.ratio",  # of 32 threads
    "branch_efficiency": "smsp__sass_average_branch_targets_threads_uniform.pct",
    "bandwidth": "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "compute": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
}
#: Table V's attributes: the nvprof metric the paper's nvvp used, the Nsight Compute metric that replaces it
#: (NVIDIA's "nvprof Metric Comparison" table) and how the harness turns each into the attribute.
METRIC_MAPPING: tuple[tuple[str, str, str, str], ...] = (
    ("compute_utilization_pct", "max of *_fu_utilization (levels 0-10)", NCU["compute"],
     "nvprof: level x 10 (coarse); ncu: % of peak as reported"),
    ("bandwidth_utilization_pct", "dram_utilization (level 0-10)", NCU["bandwidth"],
     "nvprof: level x 10 (coarse); ncu: % of peak as reported"),
    ("occupancy_pct", "achieved_occupancy (0-1)", NCU["occupancy"], "nvprof: x 100; ncu: as reported"),
    ("warp_execution_efficiency_pct", "warp_execution_efficiency (%)", NCU["warp_execution_efficiency"],
     "ncu: active threads per instruction / 32 x 100"),
    ("branch_divergence_pct", "100 - branch_efficiency", NCU["branch_efficiency"], "100 - the metric"),
    ("stall_memory_dependency_pct", "stall_memory_dependency", "smsp__warp_issue_stalled_long_scoreboard_*",
     "share of the four categories' sum"),
    ("stall_instruction_dependency_pct", "stall_exec_dependency", "..._short_scoreboard_* + ..._wait_*",
     "share of the four categories' sum"),
    ("stall_synchronization_pct", "stall_sync", "..._barrier_* + ..._membar_*", "share of the four categories' sum"),
    ("stall_other_pct", "every other stall_*", "every other ..._stalled_* except selected, sleeping, *_not_issued",
     "share of the four categories' sum"),
)
ATTRIBUTES = ("compute_utilization_pct", "bandwidth_utilization_pct", "occupancy_pct",
              "warp_execution_efficiency_pct", "branch_divergence_pct")


@dataclass
class FamilyMetrics:
    family: str
    kernels: int
    invocations: int
    values: dict[str, float]  # ATTRIBUTES and "stall_<category>_pct"


def kernel_attributes(m: KernelMetrics) -> dict[str, float]:
    """Table V attributes of one kernel, from nvprof or ncu metric names (whichever are present)."""
    v, out = m.values, {}
    if "achieved_occupancy" in v:
        out["occupancy_pct"] = 100.0 * v["achieved_occupancy"]
    elif NCU["occupancy"] in v:
        out["occupancy_pct"] = v[NCU["occupancy"]]
    if "warp_execution_efficiency" in v:
        out["warp_execution_efficiency_pct"] = v["warp_execution_efficiency"]
    elif NCU["warp_execution_efficiency"] in v:
        out["warp_execution_efficiency_pct"] = 100.0 * v[NCU["warp_execution_efficiency"]] / 32.0
    if "branch_efficiency" in v:
        out["branch_divergence_pct"] = 100.0 - v["branch_efficiency"]
    elif NCU["branch_efficiency"] in v:
        out["branch_divergence_pct"] = 100.0 - v[NCU["branch_efficiency"]]
    if "dram_utilization" in v:
        out["bandwidth_utilization_pct"] = 10.0 * v["dram_utilization"]
    elif NCU["bandwidth"] in v:
        out["bandwidth_utilization_pct"] = v[NCU["bandwidth"]]
    fu = [v[k] for k in NVPROF_FU if k in v]
    if fu:
        out["compute_utilization_pct"] = 10.0 * max(fu)
    elif NCU["compute"] in v:
        out["compute_utilization_pct"] = v[NCU["compute"]]
    out.update(stall_shares(v))
    return out


def stall_shares(values: dict[str, float]) -> dict[str, float]:
    """Stall reasons grouped into the paper's categories, as shares summing to 100 %."""
    raw: dict[str, float] = defaultdict(float)
    for name, value in values.items():
        if name in NVPROF_STALLS:
            raw[NVPROF_STALLS[name]] += value
            continue
        for prefix in NCU_STALL_PREFIXES:
            if name.startswith(prefix):
                reason = name[len(prefix):].split(".")[0].removesuffix("_per_warp_active")
                if reason not in NCU_EXCLUDED_STALLS and not reason.endswith("_not_issued"):
                    raw[NCU_STALLS.get(reason, "other")] += value
                break
    total = sum(raw.values())
    if total <= 0:
        return {}
    return {f"stall_{c.replace(' ', '_')}_pct": 100.0 * raw[c] / total for c in STALL_CATEGORIES}


def table_v(metrics: list[KernelMetrics]) -> list[FamilyMetrics]:
    """Per-family averages weighted by invocations (the way nvvp aggregates a kernel's launches)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for m in metrics:
        fam = classify(m.name)
        counts[fam][0] += 1
        counts[fam][1] += m.invocations
        for key, value in kernel_attributes(m).items():
            acc[fam][key][0] += value * m.invocations
            acc[fam][key][1] += m.invocations
    return [FamilyMetrics(fam, counts[fam][0], counts[fam][1],
                          {k: s / w for k, (s, w) in acc[fam].items() if w})
            for fam in sorted(acc, key=lambda f: -counts[f][1])]
