"""What the report can say without running anything: Table II from the analyzer beside the paper's, and the
Fig. 2 filter factorisation (one 5x5 convolution vs two stacked 3x3 convolutions)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pandas as pd

from harness.analysis.analyzer import NetAnalysis, analysis_of
from harness.analysis.paper import TABLE2_COLUMNS, paper_table, table2_cells
from harness.ir.graph import Graph

# The paper's Fig. 2 / Section II percentages: change from one 5x5 conv to two 3x3 convs.
FIG2_PAPER_CHANGE_PCT = {"params": -52.0, "macs": -51.3, "activations": 102.0, "macs_per_param": 1.34,
                         "macs_per_act": -61.0}
FIG2_PAPER_DECIMALS = {"params": 0, "macs": 1, "activations": 0, "macs_per_param": 2, "macs_per_act": 0}
#: Why the Fig. 2 figures cannot reproduce anything (docs/zoo.md, "Why these counts").
FIG2_FITTED = ("the paper gives only percentages; the pair's channel counts (384/128/128 at 224x224) were chosen "
               "by searching for counts that give them, so agreement is by construction, not evidence")


@cache
def zoo_graph(network: str) -> Graph:
    """The zoo graph, parsed once per report (the report analyses it at several batches)."""
    from harness import zoo

    return zoo.zoo_graph(network)


def zoo_analysis(network: str, batch: int = 1) -> NetAnalysis:
    """A zoo network analysed as Table II counts it: Netscope rules, the paper's input size (computed once
    per batch and shared by the tables, the claims and the roofline)."""
    from harness import zoo

    return analysis_of(zoo_graph(network), "paper", batch=batch, input_size=zoo.paper_input_size(network),
                       network=network)


def paper_rows() -> dict[str, dict[str, str]]:
    """The paper's Table II keyed by its model name."""
    return {row["model"]: row for row in paper_table("table2")}


def table2() -> pd.DataFrame:
    """Every zoo network, every Table II column: ours computed the paper's way and printed at its precision,
    the paper's cell as printed, whether they are equal, and our exact value (from the exact counts)."""
    from harness import zoo

    paper = paper_rows()
    rows = []
    for network in zoo.zoo_names():
        theirs = paper[zoo.paper_name(network)]
        row: dict[str, object] = {"network": zoo.paper_name(network), "input": int(theirs["image_size"])}
        cells = table2_cells(zoo_analysis(network).totals, theirs)
        for cell in cells:
            label = TABLE2_COLUMNS[cell.column]
            row[f"{label} ours"] = cell.ours
            row[f"{label} paper"] = cell.paper
            row[f"{label} exact"] = cell.exact
        row["cells equal"] = f"{sum(c.matches for c in cells)}/{len(cells)}"
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Factorisation:
    """Fig. 2: totals of the 5x5 graph and of the 3x3+3x3 graph, and the change in percent."""

    five: dict[str, float]
    two_threes: dict[str, float]

    def change_pct(self) -> dict[str, float]:
        return {k: (self.two_threes[k] - self.five[k]) / self.five[k] * 100 for k in FIG2_PAPER_CHANGE_PCT}

    def at_paper_precision(self) -> dict[str, bool]:
        """Whether each change, rounded as the paper prints it, equals the paper's figure."""
        change = self.change_pct()
        return {k: round(change[k], d) == FIG2_PAPER_CHANGE_PCT[k] for k, d in FIG2_PAPER_DECIMALS.items()}

    def frame(self) -> pd.DataFrame:
        change, equal = self.change_pct(), self.at_paper_precision()
        return pd.DataFrame([{"quantity": k, "one 5x5": self.five[k], "two 3x3": self.two_threes[k],
                              "change % (analyzer)": change[k], "change % (paper)": FIG2_PAPER_CHANGE_PCT[k],
                              "equal as printed": "yes" if equal[k] else "no"} for k in FIG2_PAPER_CHANGE_PCT])


def factorisation() -> Factorisation:
    """Analyse the zoo's Fig. 2 pair, counting as the paper does (:func:`harness.zoo.fig2.quantities`)."""
    from harness.zoo import fig2

    five, threes = (analysis_of(zoo_graph(name), "paper") for name in ("fig2_5x5", "fig2_3x3x2"))
    return Factorisation(fig2.quantities(five), fig2.quantities(threes))
