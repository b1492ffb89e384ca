"""The paper's published tables, shipped as package data, and Netscope's way of displaying numbers."""

from __future__ import annotations

import csv
import math
from functools import cache
from importlib import resources

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
