"""``harness kernels``: classify kernel names, attribute profiler files to families, Table V, Caffe BLAS calls."""

from __future__ import annotations

import argparse
import sys

from harness import jsonout
from harness.errors import HarnessError, one_line
from harness.kernels.synthetic import SYNTHETIC_TITLE


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("classify", help="read kernel names on stdin, print family<TAB>name")
    a = sub.add_parser("attribute", help="%% of GPU kernel time per family (and per layer) of profiler files")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--no-memory", action="store_true", help="leave memcpy/memset out of the denominator")
    a.add_argument("--kernels", type=int, default=0, metavar="N", help="also list the N longest kernels")
    a.add_argument("--format", choices=("table", "json"), default="table")
    m = sub.add_parser("metrics", help="Table V per family from nvprof --metrics or ncu CSV files")
    m.add_argument("files", nargs="+", metavar="FILE")
    m.add_argument("--format", choices=("table", "json"), default="table")
    b = sub.add_parser("blas", help="the BLAS calls a Caffe forward makes, their cuBLAS family, timed on this CPU")
    b.add_argument("network", metavar="NET_OR_PATH")
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--cudnn", action="store_true",
                   help="as a cuDNN build of Caffe runs it: convolutions without engine: CAFFE go to cuDNN")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--calls", action="store_true", help="also list every distinct call")
    b.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    return {"classify": _classify, "attribute": _attribute, "metrics": _metrics, "blas": _blas}[args.action](args)


def _classify(args: argparse.Namespace) -> int:
    from harness.kernels.taxonomy import classify

    # Names as bytes, decoded leniently: one undecodable name must not stop the others.
    for raw in sys.stdin.buffer:
        name = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if name.strip():
            sys.stdout.write(f"{classify(name)}\t{name}\n")
    return 0


def _attribute(args: argparse.Namespace) -> int:
    from harness.kernels.attribution import attribute
    from harness.kernels.parsers import load_trace
    from harness.kernels.synthetic import is_synthetic_capture

    results = []
    for f in args.files:
        a = attribute(load_trace(f), include_memory=not args.no_memory)
        if not a.kernels:  # a CPU-only Kineto trace: nothing ran on a GPU, so there is no share to give
            raise HarnessError(f"{f}: no GPU kernels in this {a.source} capture (a CPU-only run?); nothing to "
                               "attribute")
        results.append((f, a, is_synthetic_capture(f)))
    if args.format == "json":
        jsonout.dump([{"file": f, "synthetic": synthetic, **a.to_json()} for f, a, synthetic in results], sys.stdout)
        return 0
    for f, a, synthetic in results:
        print_attribution(SYNTHETIC_TITLE + f if synthetic else f, a, args.kernels)
    return 0


def print_attribution(title: str, a, kernels: int = 0) -> None:  # a: Attribution
    from rich.table import Table

    from harness.cli.console import stdout_console

    console = stdout_console()
    span = f"; GPU span {a.span_ns / 1e6:.3f} ms" if a.span_ns else ""
    t = Table(title=f"{title} [{a.source}]", caption=f"denominator: {a.denominator} = "
                                                     f"{a.total_ns / 1e6:.3f} ms{span}")
    for col in ("family", "time (ms)", "calls", "% of GPU kernel time"):
        t.add_column(col, justify="left" if col == "family" else "right")
    for s in a.families:
        t.add_row(s.family, f"{s.total_ns / 1e6:.3f}", str(s.calls), f"{s.pct:.2f}")
    console.print(t)
    cols = a.paper_columns()
    console.print("Table III columns: " + ", ".join(f"{k} {v:.2f} %" for k, v in cols.items()))
    if kernels:
        k = Table(title="longest kernels")
        for col in ("family", "ms", "calls", "name"):
            k.add_column(col)
        for fam, name, ns, calls in a.kernels[:kernels]:
            k.add_row(fam, f"{ns / 1e6:.3f}", str(calls), name[:100])
        console.print(k)
    if a.layers:
        lt = Table(title="per layer (ms)")
        fams = [s.family for s in a.families]
        lt.add_column("layer")
        for fam in fams:
            lt.add_column(fam, justify="right")
        for layer, by_fam in a.layers.items():
            lt.add_row(layer, *(f"{by_fam.get(f, 0.0) / 1e6:.3f}" for f in fams))
        console.print(lt)
    for note in a.notes:
        console.print(f"note: {note}")


def _metrics(args: argparse.Namespace) -> int:
    from harness.kernels.metrics import ATTRIBUTES, table_v
    from harness.kernels.parsers import load_trace
    from harness.kernels.synthetic import is_synthetic_capture

    metrics, notes = [], []
    for f in args.files:
        trace = load_trace(f)
        if not trace.metrics:
            raise HarnessError(f"{f}: no kernel metrics in this {trace.source} file "
                               "(expected nvprof --metrics --csv or ncu --csv output)")
        metrics += trace.metrics
        notes += trace.notes
    for note in notes:  # rows skipped (and counted) by the parser: on stderr, so that the JSON stays whole
        print(f"note: {one_line(note)}", file=sys.stderr)
    synthetic = [f for f in args.files if is_synthetic_capture(f)]
    rows = table_v(metrics)
    if args.format == "json":
        jsonout.dump([{"family": r.family, "kernels": r.kernels, "invocations": r.invocations,
                       "synthetic": bool(synthetic), **r.values} for r in rows], sys.stdout)
        return 0
    from rich.table import Table

    from harness.cli.console import stdout_console

    keys = [*ATTRIBUTES, *sorted({k for r in rows for k in r.values if k.startswith("stall_")})]
    t = Table(title=(SYNTHETIC_TITLE if synthetic else "") +
              "Kernel properties per family (Table V); stall shares sum to 100 %",
              caption=f"synthetic input: {', '.join(synthetic)}" if synthetic else None)
    t.add_column("attribute")
    for r in rows:
        t.add_column(f"{r.family} ({r.invocations})", justify="right")
    for key in keys:
        t.add_row(key, *(f"{r.values[key]:.1f}" if key in r.values else "-" for r in rows))
    stdout_console().print(t)
    return 0


def _blas(args: argparse.Namespace) -> int:
    from harness import zoo
    from harness.kernels.caffe_blas import profile

    if args.batch < 1 or args.repeats < 1:
        raise HarnessError("--batch and --repeats must be positive")
    graph = zoo.resolve(args.network)
    prof = profile(graph, args.network, args.batch, args.cudnn, args.repeats)
    data = prof.to_json()
    if args.format == "json":
        jsonout.dump(data, sys.stdout)
        return 0
    from rich.table import Table

    from harness.cli.console import stdout_console

    console = stdout_console()
    t = Table(title=f"{args.network} batch {args.batch}: BLAS calls of a Caffe forward "
                    f"({'cuDNN build' if args.cudnn else 'engine CAFFE'}), timed on this CPU",
              caption=f"denominator: {data['denominator']}")
    for col in ("cuBLAS family", "seconds", "% of BLAS time"):
        t.add_column(col, justify="left" if col == "cuBLAS family" else "right")
    for fam, v in data["families"].items():
        t.add_row(fam, f"{v['seconds']:.6f}", f"{v['pct']:.2f}")
    console.print(t)
    if args.calls:
        c = Table(title="calls")
        for col in ("layer", "Caffe call", "count", "cuBLAS call", "family", "ms each"):
            c.add_column(col)
        for call in prof.calls:
            caffe = (f"{call.routine}({call.trans_a}{call.trans_b}, {call.m}, {call.n}, {call.k})"
                     if call.routine != "cudnn" else "cuDNN")
            c.add_row(call.layer, caffe, str(call.count), call.cublas,
                      call.family + (" (heuristic)" if call.heuristic else ""),
                      "-" if call.seconds_each is None else f"{call.seconds_each * 1e3:.4f}")
        console.print(c)
    return 0
