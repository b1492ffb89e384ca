"""The paper's published tables, shipped as package data, and Netscope's way of displaying numbers."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.analysis.analyzer import Totals

TABLES = {
    "table2": "table2_characteristics.csv",
    "table3": "table3_measurements_p100.csv",
    "table4": "table4_correlations.csv",
    "table5": "table5_kernels_p100.csv",
}


@cache
def paper_table(table: str) -> list[dict[str, str]]:
    """Rows of one of the paper's tables (Jha, Mittal, Mattela), as printed; see data/paper/README.md."""
    text = resources.files("harness.data").joinpath("paper", TABLES[table]).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def significant(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits, as Netscope shows MACs (1586.7M -> 1.59G)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class Table2Cell:
    """One figure of ours beside the paper's Table II value, compared at the paper's printed precision."""

    column: str
    ours: float
    paper: float
    matches: bool


TABLE2_COLUMNS = {
    "macs_m": "MACs (M)", "params_m": "params (M)", "acts_m": "acts (M)",
    "acts_per_param": "acts/params", "macs_per_param": "MACs/params", "macs_per_act": "MACs/acts",
}
RATIO_TOLERANCE = 0.01  # the ratio columns agree within 1% (or are equal at the printed 2 decimals)


def table2_values(totals: Totals) -> dict[str, float]:
    """One network's Table II figures, unrounded, keyed like the paper's CSV columns."""
    return {"macs_m": totals.macs / 1e6, "params_m": totals.params / 1e6, "acts_m": totals.activations / 1e6,
            "acts_per_param": totals.acts_per_param, "macs_per_param": totals.macs_per_param,
            "macs_per_act": totals.macs_per_act}


def table2_cells(totals: Totals, row: dict[str, str]) -> list[Table2Cell]:
    """Our totals against one row of the paper's Table II.

    MACs are compared at 3 significant digits (Netscope shows 1586.7M as 1.59G), params and activations at
    the printed 2 decimals in millions, and the ratios within 1% (or equal once rounded to 2 decimals).
    """
    ours = table2_values(totals)
    ours = {**ours, "macs_m": significant(ours["macs_m"]), "params_m": round(ours["params_m"], 2),
            "acts_m": round(ours["acts_m"], 2)}
    cells = []
    for column in TABLE2_COLUMNS:
        paper = float(row[column])
        value = ours[column]
        if column.endswith("_m"):
            matches = value == paper
        else:
            matches = round(value, 2) == paper or abs(value - paper) <= RATIO_TOLERANCE * abs(paper)
        cells.append(Table2Cell(column, value, paper, matches))
    return cells
