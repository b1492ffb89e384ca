"""What the report can say without running anything: Table II from the analyzer beside the paper's, and the
Fig. 2 filter factorisation (one 5x5 convolution vs two stacked 3x3 convolutions)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pandas as pd

from harness.analysis.analyzer import NetAnalysis, analyze
from harness.analysis.paper import TABLE2_COLUMNS, paper_table, table2_values
from harness.ir.graph import Graph

# The paper's Fig. 2 / Section II percentages: change from one 5x5 conv to two 3x3 convs.
FIG2_PAPER_CHANGE_PCT = {"params": -52.0, "macs": -51.3, "activations": 102.0, "macs_per_param": 1.34,
                         "macs_per_act": -61.0}


@cache
def zoo_graph(network: str) -> Graph:
    """The zoo graph, parsed once per report (the report analyses it at several batches)."""
    from harness import zoo

    return zoo.zoo_graph(network)


@cache
def zoo_analysis(network: str, batch: int = 1) -> NetAnalysis:
    """A zoo network analysed as Table II counts it: Netscope rules, the paper's input size."""
    from harness import zoo

    return analyze(zoo_graph(network), "paper", batch=batch, input_size=zoo.paper_input_size(network),
                   network=network)


def paper_rows() -> dict[str, dict[str, str]]:
    """The paper's Table II keyed by its model name."""
    return {row["model"]: row for row in paper_table("table2")}


def table2() -> pd.DataFrame:
    """Every zoo network: analyzer value, paper value and analyzer/paper ratio for each Table II column."""
    from harness import zoo

    paper = paper_rows()
    rows = []
    for network in zoo.zoo_names():
        ours = table2_values(zoo_analysis(network).totals)
        theirs = paper[zoo.paper_name(network)]
        row: dict[str, object] = {"network": zoo.paper_name(network), "input": int(theirs["image_size"])}
        for key, label in TABLE2_COLUMNS.items():
            paper_value = float(theirs[key])
            row[f"{label} analyzer"] = ours[key]
            row[f"{label} paper"] = paper_value
            row[f"{label} ratio"] = ours[key] / paper_value if paper_value else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Factorisation:
    """Fig. 2: totals of the 5x5 graph and of the 3x3+3x3 graph, and the change in percent."""

    five: dict[str, float]
    two_threes: dict[str, float]

    def change_pct(self) -> dict[str, float]:
        return {k: (self.two_threes[k] - self.five[k]) / self.five[k] * 100 for k in FIG2_PAPER_CHANGE_PCT}

    def frame(self) -> pd.DataFrame:
        change = self.change_pct()
        return pd.DataFrame([{"quantity": k, "one 5x5": self.five[k], "two 3x3": self.two_threes[k],
                              "change % (analyzer)": change[k], "change % (paper)": FIG2_PAPER_CHANGE_PCT[k]}
                             for k in FIG2_PAPER_CHANGE_PCT])


def factorisation() -> Factorisation:
    """Analyse the zoo's Fig. 2 pair, counting as the paper does (:func:`harness.zoo.fig2.quantities`)."""
    from harness import zoo
    from harness.zoo import fig2

    five, threes = (analyze(zoo.zoo_graph(name), "paper") for name in ("fig2_5x5", "fig2_3x3x2"))
    return Factorisation(fig2.quantities(five), fig2.quantities(threes))
