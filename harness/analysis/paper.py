"""The paper's published tables, shipped as package data, and the way the paper computed and printed Table II."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
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


TABLE2_COLUMNS = {
    "macs_m": "MACs (M)", "params_m": "params (M)", "acts_m": "acts (M)",
    "acts_per_param": "acts/params", "macs_per_param": "MACs/params", "macs_per_act": "MACs/acts",
}
RATIO_COLUMNS = ("acts_per_param", "macs_per_param", "macs_per_act")
#: How the paper computed Table II, found by reproducing all 36 of its ratio cells from our exact counts.
TABLE2_RULE = ("each of MACs, params and activations as Netscope displays it (two decimals of G for values "
               ">= 1e9, of M for values >= 1e6, three significant digits below), and the ratios computed from "
               "those displayed values")
#: How the paper prints the columns (and how the comparison rounds ours).
TABLE2_PRECISION = ("MACs (M) to 3 significant digits; params (M), acts (M) and the ratios to 2 decimals (the "
                    "paper printed SqueezeNet's activations with one: 12.3 and 7.2)")
_M = Decimal(10) ** 6


def displayed(count: int) -> Decimal:
    """``count`` as Netscope displays it, back in units: 722,941,184 -> 722.94M -> 722,940,000;
    1,586,685,952 -> 1.59G; 543,072 -> 543K. Exact decimal arithmetic, half-up like a display."""
    value = Decimal(count)
    for unit in (Decimal(10) ** 9, _M):
        if abs(value) >= unit:
            return (value / unit).quantize(Decimal("0.01"), ROUND_HALF_UP) * unit
    return _significant(value, 3)


def _significant(value: Decimal, digits: int) -> Decimal:
    if value == 0:
        return value
    exponent = value.adjusted() - digits + 1  # the place of the last kept digit
    return value.quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)


@dataclass(frozen=True)
class Table2Row:
    """One network's Table II computed the paper's way, beside the exact figures.

    ``paper_method``: the six columns from the displayed counts (:func:`displayed`), unrounded; ``exact``:
    the same six from the exact counts. :meth:`printed` rounds a column as the paper prints it."""

    displayed: dict[str, Decimal]  # macs, params, activations as displayed (in units)
    paper_method: dict[str, Decimal]
    exact: dict[str, float]

    @classmethod
    def of(cls, totals: Totals) -> Table2Row:
        shown = {"macs": displayed(totals.macs), "params": displayed(totals.params),
                 "activations": displayed(totals.activations)}
        m, p, a = shown["macs"], shown["params"], shown["activations"]
        method = {"macs_m": m / _M, "params_m": p / _M, "acts_m": a / _M,
                  "acts_per_param": _div(a, p), "macs_per_param": _div(m, p), "macs_per_act": _div(m, a)}
        exact = {"macs_m": totals.macs / 1e6, "params_m": totals.params / 1e6, "acts_m": totals.activations / 1e6,
                 "acts_per_param": totals.acts_per_param, "macs_per_param": totals.macs_per_param,
                 "macs_per_act": totals.macs_per_act}
        return cls(shown, method, exact)

    def printed(self, column: str, paper_text: str | None = None) -> str:
        """The paper-method value of ``column`` as the paper prints it: MACs (M) to 3 significant digits,
        the others to the decimals of ``paper_text`` (the paper's printed cell), 2 without one."""
        value = self.paper_method[column]
        if value.is_nan():
            return "nan"
        if column == "macs_m":
            return f"{_significant(value, 3):f}"
        decimals = len(paper_text.partition(".")[2]) if paper_text is not None else 2
        return f"{value.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP):f}"

    def to_json(self) -> dict[str, object]:
        """The ``table2`` object of ``harness analyze --format json``."""
        return {"rule": TABLE2_RULE, "precision": TABLE2_PRECISION,
                **{c: float(self.printed(c)) if not self.paper_method[c].is_nan() else None for c in TABLE2_COLUMNS},
                "displayed": {k: int(v) for k, v in self.displayed.items()},
                "exact": self.exact}


def _div(a: Decimal, b: Decimal) -> Decimal:
    return a / b if b else Decimal("NaN")


@dataclass(frozen=True)
class Table2Cell:
    """One column of ours beside the paper's printed cell, compared as printed."""

    column: str
    ours: str  # the paper-method value at the paper's printed precision
    paper: str  # the paper's cell, as printed
    exact: float  # the same column from the exact counts

    @property
    def matches(self) -> bool:
        return self.ours == self.paper


def table2_cells(totals: Totals, row: dict[str, str]) -> list[Table2Cell]:
    """Our totals against one row of the paper's Table II, cell by cell, as printed (string equality)."""
    ours = Table2Row.of(totals)
    return [Table2Cell(c, ours.printed(c, row[c]), row[c], ours.exact[c]) for c in TABLE2_COLUMNS]
