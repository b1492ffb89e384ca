"""``harness layers``: where the time goes, layer by layer, on every engine, beside where the MACs go.

Each configuration runs in a fresh worker (:mod:`harness.layertime.measure`) that times the engine's own
rows (Caffe's layers, PyTorch's modules, ONNX Runtime's optimised nodes, OpenCV's fused layers) alternately
with the plain forward; the rows are joined with the analyzer (MACs, parameters, bytes moved, arithmetic
intensity) and summarised per layer kind. ``--out`` keeps the layer profiles in a results directory (resumed
on a rerun), where ``harness report`` finds them.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness import jsonout
from harness.cli.argtypes import output_path, positive_int, positive_int_list
from harness.cli.bench import build_spec
from harness.errors import HarnessError
from harness.layertime.record import LayerProfile
from harness.layertime.store import LayerProfileStore
from harness.results.records import Config

FORMATS = ("table", "csv", "json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", help="zoo names, prototxt paths, or 'all'")
    p.add_argument("--backend", action="append", default=None, metavar="NAME",
                   help="backend(s), repeatable or comma-separated (default: every one available on the device)")
    p.add_argument("--mode", action="append", default=None, metavar="NAME[,NAME...]",
                   help="backend modes; each applies to the selected backends that offer it; 'all': every mode "
                        "(default: each backend's default). PyTorch's compile and cuda-graphs run no layer module "
                        "and are recorded 'unsupported'")
    p.add_argument("--device", action="append", default=None, metavar="DEV", help="cpu or cuda:N (default: cpu, "
                   "or cuda:0 where NVML sees a GPU)")
    p.add_argument("--batch", type=positive_int_list, default=[1], metavar="B,B,...", help="batch sizes (default 1)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--out", type=output_path, default=None, metavar="RESULTS_DIR",
                   help="keep the layer profiles in this results directory (layer-profiles.jsonl; a rerun resumes, "
                        "`harness report` reads them); default: a temporary directory, removed afterwards")
    p.add_argument("--force", action="store_true", help="with --out: profile configurations again even if profiled")
    p.add_argument("--device-spec", default=None, metavar="NAME",
                   help="a device of harness/data/device_specs.yaml: each row's roofline bound on it and the share "
                        "of the measured time that bound is")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="timing protocol, repeatable: min_iters, min_s, warmup_iters, warmup_s, max_s "
                        "(defaults: harness.layertime.run.DEFAULT_SETTINGS)")
    p.add_argument("--top", type=positive_int, default=None, metavar="N",
                   help="table: show each profile's N slowest rows (default: every row, in the engine's order)")


def run(args: argparse.Namespace) -> int:
    from harness.analysis.roofline import device_spec

    spec_device = device_spec(args.device_spec) if args.device_spec else None  # an unknown name: one line, exit 2
    spec = build_spec(args, {})
    if args.out is not None:
        LayerProfileStore(args.out).check_writable()  # an unwritable --out fails before anything runs
        keys, ran = _profile(spec, args.out, args.force)
        profiles = _stored(LayerProfileStore(args.out), keys)
    else:
        if args.force:
            raise HarnessError("--force applies with --out (without it nothing is kept to resume from)")
        with tempfile.TemporaryDirectory(prefix="harness-layers-") as folder:
            keys, ran = _profile(spec, Path(folder), force=True)
            profiles = _stored(LayerProfileStore(folder), keys)
    if args.format == "json":
        from harness.layertime.join import profile_doc, side_by_side

        jsonout.dump({"profiles": [profile_doc(p, spec_device) for p in profiles],
                      "side_by_side": side_by_side(profiles)}, sys.stdout)
        print()
    elif args.format == "csv":
        _write_csv(profiles, spec_device)
    else:
        _print_tables(profiles, spec_device, args.top)
    # Exit 1 only when configurations ran and none was measured (as bench).
    return 1 if ran and not any(p.status == "ok" for p in ran) else 0


def _profile(spec: Any, out: Path, force: bool) -> tuple[list[str], list[LayerProfile]]:
    """Run the configurations with progress on stderr: every planned key, in plan order, and the profiles
    this call made (earlier ones stand for the rest)."""
    from rich.console import Console

    from harness.layertime.run import run_profiles

    console = Console(stderr=True, highlight=False)
    started = time.monotonic()
    keys: list[str] = []

    def on_start(config: Config) -> None:
        console.print(escape(f"layers: {config.network} {config.backend} {config.mode} {config.device} "
                             f"B={config.batch} ..."), soft_wrap=True)

    def on_done(profile: LayerProfile | None, config: Config) -> None:
        keys.append(config.key())
        if profile is not None and profile.status != "ok":
            console.print(f"{config.key()}: {profile.status}: {profile.message}", markup=False, soft_wrap=True)

    run = run_profiles(spec, out, force, on_start, on_done)
    for note in run.notes:
        console.print(note, markup=False, soft_wrap=True)
    console.print(f"{len(run.profiles)} configuration(s) profiled in {time.monotonic() - started:.1f} s"
                  + (f"; {len(run.skipped)} already profiled in {out} (--force profiles them again)"
                     if run.skipped else ""), markup=False)
    return keys, run.profiles


def _stored(store: LayerProfileStore, keys: list[str]) -> list[LayerProfile]:
    """The stored profiles of ``keys``, in that order (the store's merge rule decides between records)."""
    merged = store.read()
    for warning in merged.warnings():
        print(warning, file=sys.stderr)
    by_key = merged.by_key()
    return [by_key[k] for k in keys if k in by_key]


def _ms(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _print_tables(profiles: list[LayerProfile], spec: Any, top: int | None) -> None:
    from rich.table import Table

    from harness.cli.console import stdout_console
    from harness.layertime.join import profile_doc, side_by_side

    console = stdout_console()
    for profile in profiles:
        doc = profile_doc(profile, spec)
        title = f"{profile.config.network} on {doc['backend']} ({doc['mode']}), {doc['device']}, B={doc['batch']}"
        if profile.status != "ok":
            console.print(escape(f"{title}: {profile.status}: {profile.message}"))
            continue
        whole = doc["whole_forward_ms"]
        console.print(escape(
            f"\n{title}\n  whole forward {whole['median']:.3f} ms (median of {doc['iterations']}), sum of rows "
            f"{doc['sum_of_rows_ms']:.3f} ms (of their medians {doc['sum_of_row_medians_ms']:.3f} ms), gap "
            f"{doc['gap_pct']:+.1f}% of the whole; an instrumented pass "
            f"{doc['instrumented_pass_ms']:.3f} ms ({doc['timing_overhead_pct']:+.1f}%)\n"
            f"  per-layer time: {doc['mechanism']}"
            + (f"\n  CONTENDED: {'; '.join(doc['contended'])}" if doc["contended"] else "")), soft_wrap=True)
        rows = doc["rows"]
        if top is not None:
            rows = sorted(rows, key=lambda r: -r["median_ms"])[:top]
        table = Table(title=f"rows as {profile.config.backend} ran them" + (f" ({top} slowest)" if top else ""),
                      title_justify="left")
        columns = ["row", "kind", "ms", "% time", "MMACs", "% MACs", "GMAC/s", "GB/s", "MAC/B", "note"]
        if spec is not None:
            columns[-1:-1] = ["bound", "% of roofline"]
        for column in columns:
            table.add_column(column, justify="left" if column in ("row", "kind", "note", "bound") else "right",
                             overflow="fold")
        for r in rows:
            cells = [r["row"], r["category"], _ms(r["median_ms"]), _ms(r["time_pct"], ".1f"),
                     _ms(r["macs"] / 1e6 if r["macs"] else None, ".2f"), _ms(r["macs_pct"], ".1f"),
                     _ms(r["gmacs_per_s"], ".2f"), _ms(r["gb_per_s"], ".2f"), _ms(r["ai_mac_per_byte"], ".2f")]
            if spec is not None:
                cells += [r["bound"] or "-", _ms(r["roofline_pct"], ".1f")]
            table.add_row(*map(escape, cells), escape(r["note"]))
        console.print(table)
        summary = Table(title="where the time goes, by layer kind", title_justify="left")
        for column in ("kind", "rows", "ms", "% time", "% MACs"):
            summary.add_column(column, justify="left" if column == "kind" else "right")
        kinds = doc["summary"]
        for s in kinds:
            summary.add_row(escape(s["category"]), str(s["rows"]), _ms(s["time_ms"]), _ms(s["time_pct"], ".1f"),
                            _ms(s["macs_pct"], ".1f"))
        console.print(summary)
        # the kinds whose time is far above their MACs: where a MAC costs most on this engine
        costly = [s for s in kinds if (s["time_pct"] or 0) >= 5 and (s["time_pct"] or 0) > 2 * (s["macs_pct"] or 0)]
        if costly:
            console.print(escape("  time well above MACs: " + "; ".join(
                f"{s['category']}: {s['macs_pct']:.1f}% of MACs, {s['time_pct']:.1f}% of time" for s in costly)),
                soft_wrap=True)
    for group in side_by_side(profiles):
        table = Table(title=f"{group['network']}, {group['device']}, B={group['batch']}: share of time by engine "
                            "vs share of MACs", title_justify="left")
        table.add_column("kind")
        table.add_column("% MACs", justify="right")
        for engine in group["engines"]:
            table.add_column(f"% time {engine}", justify="right")
        for row in group["categories"]:
            table.add_row(escape(row["category"]), _ms(row["macs_pct"], ".1f"),
                          *(_ms(row["time_pct"][e], ".1f") for e in group["engines"]))
        console.print(table)


def _write_csv(profiles: list[LayerProfile], spec: Any) -> None:
    from harness.layertime.join import row_figures

    out = csv.writer(sys.stdout, lineterminator="\n")
    header: list[str] | None = None
    for profile in profiles:
        if profile.status != "ok":
            continue
        c = profile.config
        for row in profile.rows:
            figures = row_figures(profile, row, spec)
            if header is None:
                header = ["network", "backend", "mode", "device", "batch", *figures]
                out.writerow(header)
            out.writerow([c.network, c.backend, c.mode, c.device, c.batch,
                          *("" if v is None else v for v in figures.values())])
