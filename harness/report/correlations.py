"""Table IV and the correlations quoted for Figs. 3 and 4, recomputed: from each setup's measurements, and
from the paper's own Tables II and III (does its PPMCC follow from its printed numbers?)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from harness.analysis.paper import paper_table
from harness.report import measured
from harness.report.stats import Correlation, correlate

PARAM_BYTES = 4  # model size = params x fp32, as the paper's footprint/model-size ratio (AlexNet 4.16) implies
PAPER_MB = 1e6  # the paper's "MB": AlexNet 1015 MB / (60.97M x 4 B) = 4.16 only with 10^6-byte MB

# One row per network: design-time x quantities (analyzer, paper convention, batch 1) and measured y ones.
# Columns: params, activations, params_plus_activations, acts_per_param, macs_per_param, macs_per_act,
# memory_footprint (bytes), footprint_per_model_size, energy_efficiency.
XY = pd.DataFrame


@dataclass(frozen=True)
class Pair:
    x: str
    y: str
    paper: float
    label: str


def pairs() -> list[Pair]:
    labels = {"params": "# params", "activations": "# activations",
              "params_plus_activations": "# params + # activations", "acts_per_param": "activations/params",
              "macs_per_param": "MACs/params", "macs_per_act": "MACs/activations",
              "memory_footprint": "memory footprint", "footprint_per_model_size": "memory footprint/model size",
              "energy_efficiency": "energy efficiency"}
    return [Pair(r["x"], r["y"], float(r["ppmcc"]), f"{labels[r['x']]} vs {labels[r['y']]}")
            for r in paper_table("table4")]


def design_columns(totals: dict[str, dict[str, float]]) -> pd.DataFrame:
    """x quantities per network from analyzer totals ({network: Totals.as_dict()})."""
    rows = {n: {"params": t["params"], "activations": t["activations"],
                "params_plus_activations": t["params"] + t["activations"],
                "acts_per_param": t["acts_per_param"], "macs_per_param": t["macs_per_param"],
                "macs_per_act": t["macs_per_act"]} for n, t in totals.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def measured_xy(frame: pd.DataFrame, design: pd.DataFrame, setup: str) -> XY:
    """One setup's networks: design x columns joined with measured footprint (B=1) and efficiency (B=4), and
    the keys of the records they came from (``memory_key``, ``energy_key``)."""
    rows = measured.ok(frame[frame["setup"] == setup])
    xy = design.copy()
    for column, key, batch, value in (("memory_footprint", "memory_key", measured.MEMORY_BATCH,
                                       measured.footprint_bytes),
                                      ("energy_efficiency", "energy_key", measured.ENERGY_BATCH,
                                       measured.energy_efficiency)):
        at = rows[rows["batch"] == batch].assign(value=lambda f, v=value: v(f)).dropna(subset=["value"])
        best = at.loc[at.groupby("network")["value"].idxmax()] if not at.empty else at
        xy[column] = best.set_index("network")["value"].reindex(xy.index)
        xy[key] = best.set_index("network")["key"].reindex(xy.index)
    xy["footprint_per_model_size"] = xy["memory_footprint"] / (xy["params"] * PARAM_BYTES)
    return xy


def paper_xy(paper_names: dict[str, str]) -> XY:
    """The same quantities from the paper's printed Tables II and III (P100), by zoo network name."""
    t2 = {r["model"]: r for r in paper_table("table2")}
    t3 = {r["model"]: r for r in paper_table("table3")}
    rows = {}
    for network, name in paper_names.items():
        if name not in t2 or name not in t3:
            continue
        a, b = t2[name], t3[name]
        params, acts = float(a["params_m"]) * 1e6, float(a["acts_m"]) * 1e6
        footprint = float(b["memory_footprint_mb"]) * PAPER_MB
        rows[network] = {"params": params, "activations": acts, "params_plus_activations": params + acts,
                         "acts_per_param": float(a["acts_per_param"]),
                         "macs_per_param": float(a["macs_per_param"]), "macs_per_act": float(a["macs_per_act"]),
                         "memory_footprint": footprint, "footprint_per_model_size": footprint / (params * PARAM_BYTES),
                         "energy_efficiency": float(b["energy_efficiency_gmacs_per_j"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def correlation_rows(xy: XY, source: str, kind: str) -> list[dict[str, object]]:
    rows = []
    for p in pairs():
        c: Correlation = correlate(xy[p.x].to_numpy(float), xy[p.y].to_numpy(float))
        rows.append({"pair": p.label, "x": p.x, "y": p.y, "paper PPMCC": p.paper, "source": source, "kind": kind,
                     **c.as_dict()})
    return rows


def table4(frame: pd.DataFrame, design: pd.DataFrame, paper_names: dict[str, str],
           memory_quantity: Callable[[str], str]) -> pd.DataFrame:
    """Long table: for every Table IV pair, the paper's PPMCC, the one recomputed from the paper's tables,
    and each setup's, with n and bootstrap CIs. ``memory_quantity(kind)`` names what "footprint" is."""
    rows = correlation_rows(paper_xy(paper_names), "paper tables (P100)", "paper")
    if not frame.empty:
        for setup in measured.setup_order(frame["setup"]):
            group = frame[frame["setup"] == setup]
            kind = str(group["device_kind"].iloc[0])
            rows += correlation_rows(measured_xy(frame, design, str(setup)), str(setup), kind)
    table = pd.DataFrame(rows)
    table["synthetic"] = table["source"].isin(measured.synthetic_setups(frame))
    table["memory measured as"] = [memory_quantity(k) if y in ("memory_footprint", "footprint_per_model_size")
                                   else "" for k, y in zip(table["kind"], table["y"], strict=True)]
    return table[[c for c in table.columns if c not in ("x", "y")]]



def _r_cell(row: pd.Series) -> str:
    if not math.isfinite(row["pearson"]):
        return f"no figure (n = {int(row['n'])})"
    ci = f" [{row['pearson_ci_low']:.2f}, {row['pearson_ci_high']:.2f}]" if math.isfinite(row["pearson_ci_low"]) \
        else ""
    return f"{row['pearson']:.2f}{ci}, n = {int(row['n'])}"


def beside_paper(t4: pd.DataFrame, setups: list[str]) -> pd.DataFrame:
    """Table IV as a reader compares it: one row per pair, the paper's PPMCC, the one its own tables give, then
    each setup's Pearson r with its 95% bootstrap interval and n (a correlation is compared by its interval,
    not by a ratio)."""
    rows = []
    for pair, group in t4.groupby("pair", sort=False):
        by_source = group.set_index("source")
        row: dict[str, object] = {"pair": pair, "paper PPMCC": float(group["paper PPMCC"].iloc[0]),
                                  "from the paper's tables": _r_cell(by_source.loc["paper tables (P100)"])}
        for setup in setups:
            row[f"{setup} r [95% CI]"] = _r_cell(by_source.loc[setup]) if setup in by_source.index else "–"
        row["synthetic"] = bool(by_source.loc[[s for s in setups if s in by_source.index], "synthetic"].any())
        rows.append(row)
    return pd.DataFrame(rows)
