"""``harness analyze``: params, MACs, activations and their ratios, per network and per layer."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence

from harness import jsonout
from harness.analysis.analyzer import NetAnalysis, analysis_of
from harness.analysis.paper import TABLE2_COLUMNS, Table2Row, paper_table, table2_cells
from harness.cli import analyze_metrics
from harness.cli.argtypes import positive_int
from harness.cli.phase import add_phase_argument, phase_of
from harness.errors import HarnessError
from harness.layers import Convention

TOTAL_COLUMNS = ("macs", "params", "activations", "acts_per_param", "macs_per_param", "macs_per_act",
                 "param_bytes", "activation_bytes", "workspace_bytes", "memory_bytes")
LAYER_COLUMNS = ("name", "type", "output_shapes", "params", "macs", "activations")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NET_OR_PATH",
                   help="zoo network names, prototxt paths, or 'all' (the paper's 12, beside its Table II)")
    p.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the file's, 1 for 'all')")
    p.add_argument("--input-size", type=positive_int, default=None, metavar="S",
                   help="input height and width (default: the file's; 224, or 231 for inception_v2, for 'all')")
    p.add_argument("--channels", type=positive_int, default=None, metavar="C",
                   help="input channels (default: the file's; 3 assumed, and said, for a Data layer)")
    p.add_argument("--convention", choices=[c.value for c in Convention], default="paper",
                   help="paper: Netscope's rules (reproduces Table II); caffe: what BVLC Caffe builds")
    add_phase_argument(p, "the layers of this phase (Caffe's include/exclude rules); default: train for the paper "
                          "convention, as Netscope's website parses, test for the caffe convention")
    p.add_argument("--per-layer", action="store_true", help="also print every layer")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--allow-unknown", action="store_true",
                   help="treat unknown layer types as zero-cost, shape-preserving layers (and say so); in the caffe "
                        "convention, count the layer types and fields of Caffe forks as those forks do")
    analyze_metrics.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from harness import zoo

    compare = args.networks == ["all"]
    if "all" in args.networks and not compare:
        raise HarnessError("'all' (the paper's 12 networks) cannot be combined with other networks")
    names = zoo.zoo_names() if compare else args.networks
    phase = phase_of(args, args.convention)
    results, graphs = [], []
    for name in names:
        graph = zoo.resolve(name, phase)
        graphs.append(graph)
        size = args.input_size or (zoo.paper_input_size(name) if compare else None)
        batch = args.batch or (1 if compare else None)
        result = _analysis(graph, args, batch, size, name if zoo.is_zoo_name(name) else None)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        results.append(result)
    extras = analyze_metrics.compute(args, graphs, results)
    if args.format == "json":
        docs = [{**r.to_json(per_layer=True), "table2": Table2Row.of(r.totals).to_json()} for r in results]
        for doc, (layer_rows, totals) in zip(docs, extras or [], strict=False):
            doc["metrics"] = {"totals": totals, "layers": layer_rows}
        jsonout.dump(docs, sys.stdout)
    elif args.format == "csv":
        _write_csv(results, args.per_layer, extras)
    else:
        _print_tables(results, args.per_layer, compare and args.convention == "paper")
        if extras:
            analyze_metrics.print_tables(results, extras, args.per_layer)
    return 0


def _analysis(graph, args: argparse.Namespace, batch: int | None, size: int | None,
              network: str | None) -> NetAnalysis:
    """The shared analysis (:func:`analysis_of`), which the metrics reuse."""
    return analysis_of(graph, args.convention, batch=batch, input_size=size, network=network,
                       allow_unknown=args.allow_unknown, channels=args.channels)


def _write_csv(results: Sequence[NetAnalysis], per_layer: bool,
               extras: analyze_metrics.Extras | None = None) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    if per_layer:
        rows = [row for layer_rows, _ in extras or [] for row in layer_rows]
        more = analyze_metrics.columns(rows)
        out.writerow(["network", "convention", "phase", "batch", *LAYER_COLUMNS, "workspace", *more])
        for i, r in enumerate(results):
            for j, s in enumerate(r.layers):
                shapes = ";".join("x".join(map(str, shape)) for shape in s.output_shapes)
                metric = extras[i][0][j] if extras else {}
                out.writerow([r.network, r.convention.value, r.phase.lower(), r.batch, s.name, s.type, shapes,
                              s.params, s.macs, s.activations, s.workspace,
                              *(analyze_metrics.cell(metric.get(c)) for c in more)])
        return
    more = analyze_metrics.columns([totals for _, totals in extras or []])
    out.writerow(["network", "convention", "phase", "batch", "input_shape", *TOTAL_COLUMNS, *more])
    for i, r in enumerate(results):
        totals = r.totals.as_dict()
        metric = extras[i][1] if extras else {}
        out.writerow([r.network, r.convention.value, r.phase.lower(), r.batch, "x".join(map(str, r.input_shape)),
                      *(_csv_number(totals[c]) for c in TOTAL_COLUMNS),
                      *(analyze_metrics.cell(metric.get(c)) for c in more)])


def _csv_number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _print_tables(results: Sequence[NetAnalysis], per_layer: bool, beside_paper: bool) -> None:
    from rich.table import Table

    from harness.cli.console import stdout_console

    console = stdout_console()
    if per_layer:
        for r in results:
            t = Table(title=f"{r.network} ({r.convention.value} convention, {r.phase.lower()} phase, batch {r.batch})")
            for col in ("layer", "type", "output", "params", "MACs", "activations"):
                t.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
            for s in r.layers:
                t.add_row(s.name, s.type, " ".join("x".join(map(str, x)) for x in s.output_shapes),
                          f"{s.params:,}", f"{s.macs:,}", f"{s.activations:,}")
            console.print(t)
    if beside_paper:
        console.print(_table2(results))
        return
    t = Table(title=f"Network totals ({results[0].convention.value} convention, {results[0].phase.lower()} phase)")
    for col in ("network", "input", "MACs (M)", "params (M)", "acts (M)", "acts/params", "MACs/params",
                "MACs/acts", "memory (MB)"):
        t.add_column(col, justify="left" if col in ("network", "input") else "right")
    for r in results:
        tot = r.totals
        t.add_row(r.network, "x".join(map(str, r.input_shape)), f"{tot.macs / 1e6:,.1f}", f"{tot.params / 1e6:.2f}",
                  f"{tot.activations / 1e6:.2f}", f"{tot.acts_per_param:.2f}", f"{tot.macs_per_param:.2f}",
                  f"{tot.macs_per_act:.2f}", f"{tot.memory_bytes / 2**20:,.1f}")
    console.print(t)


def _table2(results: Sequence[NetAnalysis]):  # -> rich.table.Table
    """Table II as the paper computed it (:data:`harness.analysis.paper.TABLE2_RULE`), each cell at the
    paper's printed precision; a cell is marked only where it differs from the paper's as printed."""
    from rich.table import Table

    from harness import zoo

    paper = {row["model"]: row for row in paper_table("table2")}
    t = Table(title="Table II, Netscope rules, computed the paper's way: ours at the paper's printed precision "
                    "(the paper's value beside a cell that differs)")
    t.add_column("network")
    t.add_column("input")
    for header in TABLE2_COLUMNS.values():
        t.add_column(header, justify="right")
    t.add_column("= paper", justify="right")
    for r in results:
        row = paper.get(zoo.paper_name(r.network))
        if row is None:
            raise HarnessError(f"no Table II row for {r.network}")
        cells = table2_cells(r.totals, row)
        shown = [c.ours if c.matches else f"[red]{c.ours} ({c.paper})[/red]" for c in cells]
        matched = sum(c.matches for c in cells)
        t.add_row(zoo.paper_name(r.network), "x".join(map(str, r.input_shape[2:])), *shown,
                  f"{matched}/{len(cells)}" + (" ✓" if matched == len(cells) else ""))
    return t
