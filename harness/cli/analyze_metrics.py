"""The design-time metric options of ``harness analyze`` (--metrics, --device-spec, --weights) and their
output; the numbers come from :func:`harness.analysis.metrics.metric_columns`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from harness.analysis.analyzer import NetAnalysis
from harness.errors import HarnessError
from harness.ir.graph import Graph

GROUPS = ("reuse", "roofline", "storage")
Extras = list[tuple[list[dict[str, Any]], dict[str, Any]]]
# Per-layer columns the table shows (csv and json carry every column).
TABLE_LAYER_COLUMNS = ("ai", "ai_fp32", "r_f", "r_ia", "r_oa", "di_harness", "bound_fp32", "t_bound_fp32_s",
                       "w_sparsity", "w_entropy_bits", "bits_csr", "bits_cer", "bits_cser")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", metavar="LIST", default=None,
                   help="design-time metrics, comma-separated: reuse (arithmetic intensity, R_F/R_IA/R_OA, DI), "
                        "roofline (needs --device-spec), storage (needs --weights), or all (docs/metrics.md)")
    p.add_argument("--device-spec", metavar="NAME", default=None,
                   help="device of harness/data/device_specs.yaml for roofline latency bounds")
    p.add_argument("--weights", metavar="FILE.caffemodel", default=None,
                   help="trained weights for entropy/sparsity and dense/CSR/CER/CSER storage and op counts")
    p.add_argument("--quantize-bits", metavar="K", type=int, default=None,
                   help="quantise the weights uniformly to K bits before the storage analysis")
    p.add_argument("--index-bits", metavar="B", type=int, default=32,
                   help="bits per stored index (colI, wI, rowPtr, ΩI) in the storage analysis (default 32)")
    p.add_argument("--di-weights", metavar="F,IA,OA", default=None,
                   help="per-data-type weights of the harness DI (default 1,1,2; not the DI paper's weighting)")


def requested_groups(args: argparse.Namespace) -> set[str]:
    """--metrics all = reuse plus whatever --device-spec and --weights make possible; naming a group
    whose input is missing is an error. --device-spec / --weights alone imply their group."""
    names = {n.strip() for n in (args.metrics or "").split(",") if n.strip()}
    unknown = names - {*GROUPS, "all"}
    if unknown:
        raise HarnessError(f"--metrics: unknown group(s) {', '.join(sorted(unknown))} (choose from "
                           f"{', '.join(GROUPS)}, all)")
    if "all" in names:
        names = {"reuse"} | ({"roofline"} if args.device_spec else set()) | ({"storage"} if args.weights else set())
    if args.device_spec:
        names.add("roofline")
    if args.weights:
        names.add("storage")
    if "roofline" in names and not args.device_spec:
        raise HarnessError("--metrics roofline needs --device-spec NAME")
    if "storage" in names and not args.weights:
        raise HarnessError("--metrics storage needs --weights FILE.caffemodel")
    if args.index_bits <= 0:
        raise HarnessError(f"--index-bits must be positive, got {args.index_bits}")
    if args.quantize_bits is not None and "storage" not in names:
        raise HarnessError("--quantize-bits applies to the weight-storage analysis: give --weights too")
    if args.di_weights is not None and not names:
        raise HarnessError("--di-weights weighs the harness DI of the design-time metrics: give --metrics too")
    return names


def compute(args: argparse.Namespace, graphs: Sequence[Graph], results: Sequence[NetAnalysis]) -> Extras | None:
    """Metric columns of every analysed network, or None when no metric was asked for."""
    groups = requested_groups(args)
    if not groups:
        return None
    # numpy and the metric modules are imported only when metrics are asked for: `analyze` starts fast.
    from harness.analysis.metrics import DIWeights, metric_columns
    from harness.analysis.roofline import device_spec

    device = device_spec(args.device_spec) if args.device_spec else None
    weights = None
    if args.weights:
        from harness.convert.caffemodel import read_source_layers
        from harness.convert.weights import check_weights

        if len(results) != 1:
            raise HarnessError("--weights belongs to one network: analyse one network at a time")
        # every layer the file has for this network must have its blob shapes (another network's weights
        # are refused, naming the layer); layers the file lacks are left out of the storage analysis
        # (as Caffe's CopyTrainedLayersFrom: a layer of the network given with other blobs, none included, is
        # refused); the other layers' names are kept for the warning below
        source = read_source_layers(args.weights)
        weights = {**{layer.name: [] for layer in source},
                   **check_weights(graphs[0], source, partial=True, where=str(args.weights))}
    di = DIWeights.parse(args.di_weights) if args.di_weights else None
    extras = []
    for r in results:
        per_layer, totals = metric_columns(r, device, weights, di, args.quantize_bits, index_bits=args.index_bits)
        unmatched = totals.get("weights_unmatched_layers")
        if unmatched:
            print(f"warning: {args.weights}: {len(unmatched)} layer(s) not in {r.network}, ignored: "
                  + ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""), file=sys.stderr)
        if weights is not None and not any("bits_dense" in row for row in per_layer):
            raise HarnessError(f"{args.weights}: no Convolution/InnerProduct weights of {r.network} in it")
        extras.append((per_layer, totals))
    return extras


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Union of the rows' keys, in order of first appearance."""
    return list(dict.fromkeys(k for row in rows for k in row))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ";".join(map(str, value))
    return str(value)


def labels() -> dict[str, str]:
    from harness.analysis import metrics, roofline, weight_storage

    return {**metrics.COLUMN_LABELS, **roofline.COLUMN_LABELS, **weight_storage.COLUMN_LABELS}


def print_tables(results: Sequence[NetAnalysis], extras: Extras, per_layer: bool) -> None:
    from rich.table import Table

    from harness.cli.console import stdout_console

    console = stdout_console()
    names = labels()
    for r, (layer_rows, totals) in zip(results, extras, strict=True):
        if per_layer:
            shown = [c for c in TABLE_LAYER_COLUMNS if any(c in row for row in layer_rows)]
            t = Table(title=f"{r.network}: design-time metrics per layer ({r.convention.value} convention)")
            t.add_column("layer")
            for c in shown:
                t.add_column(names.get(c, c), justify="right")
            for s, row in zip(r.layers, layer_rows, strict=True):
                t.add_row(s.name, *(_short(row.get(c)) for c in shown))
            console.print(t)
        t = Table(title=f"{r.network}: design-time metrics, whole network (sums over layers; docs/metrics.md)")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for key, value in totals.items():
            t.add_row(names.get(key, key), _short(value) or "-")
        console.print(t)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return cell(value)
