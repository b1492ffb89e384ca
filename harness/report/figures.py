"""The report's figures (matplotlib, Agg, no pyplot state), each written as PNG and SVG.

Every function returns the written :class:`FigureFile` or None when it has no measured data: the report then
says "not measured here" instead of drawing an empty or made-up plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from harness.analysis.roofline import DeviceSpec
from harness.report import measured

PAPER_STYLE = {"marker": "o", "facecolors": "none", "edgecolors": "0.4", "label": "paper (P100)"}
DPI = 110
COLORS = colormaps["tab20"]  # 12 networks need more than the default 10 colours
MARKERS = "osD^v<>ph*"


@dataclass(frozen=True)
class FigureFile:
    name: str
    title: str
    png: Path
    svg: Path
    caption: str


def _new(width: float = 7.5, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: Path, name: str, title: str, caption: str) -> FigureFile:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})  # no timestamp: same data, same file
    return FigureFile(name, title, png, svg, caption)


def _log_axes(ax, x: bool = True, y: bool = True) -> None:
    """Log scales without minor tick labels (they collide on short decades)."""
    for on, axis, scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if on:
            scale("log")
            axis.set_minor_formatter(NullFormatter())


def _label_points(ax, xs: pd.Series, ys: pd.Series, names: dict[str, str]) -> None:
    for network in xs.index:
        x, y = xs[network], ys[network]
        if np.isfinite(x) and np.isfinite(y):
            ax.annotate(names.get(network, network), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")


Panel = tuple[str, str, str, str]  # (x column, x label, y column, y label)


def ratio_scatter(series: dict[str, pd.DataFrame], paper: pd.DataFrame, panels: list[Panel],
                  names: dict[str, str], out: Path, name: str, title: str, caption: str) -> FigureFile | None:
    """Fig. 3 / Fig. 4 style: per setup, a measured quantity against design-time ratios (log-log), with the
    paper's own points beside them. Not drawn when no setup measured any panel's y."""
    drawn = {s: xy for s, xy in series.items() if any(xy[y].notna().any() for _, _, y, _ in panels)}
    if not drawn:
        return None
    fig = _new(5.2 * len(panels), 4.5)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (x, xlabel, y, ylabel) in zip(axes, panels, strict=True):
        ax.scatter(paper[x], paper[y], **PAPER_STYLE)
        for setup, xy in drawn.items():
            points = xy[[x, y]].dropna()
            if not points.empty:
                ax.scatter(points[x], points[y], label=setup, s=22)
                _label_points(ax, points[x], points[y], names)
        _log_axes(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, out, name, title, caption)


def memory_vs_batch(frame: pd.DataFrame, setup: str, names: dict[str, str], out: Path) -> FigureFile | None:
    """Peak memory against batch for every network of one setup; out-of-memory batches marked."""
    rows = frame[frame["setup"] == setup]
    if rows["batch"].nunique() < 2:
        return None
    foot = measured.footprint_bytes(rows) / measured.MIB
    ok = rows.assign(mib=foot)[(rows["status"] == "ok")].dropna(subset=["mib"])
    oom = rows[measured.measured_oom(rows)]  # an OOM inferred from a smaller batch was not run: not drawn
    if ok.empty:
        return None
    gpu = rows["device_kind"].iloc[0] == "gpu"
    fig = _new()
    ax = fig.subplots()
    top = ok["mib"].max()
    for i, (network, group) in enumerate(ok.groupby("network", sort=False)):
        group = group.sort_values("batch")
        line, = ax.plot(group["batch"], group["mib"], marker=MARKERS[i % len(MARKERS)], ms=3,
                        color=COLORS(i % 20), label=names.get(network, network))
        failed = oom[oom["network"] == network]
        if not failed.empty:
            ax.scatter(failed["batch"], [top * 1.15] * len(failed), marker="x", s=50, color=line.get_color())
            for b in failed["batch"]:
                ax.annotate(names.get(network, network), (b, top * 1.15), fontsize=6, xytext=(-4, -10),
                            textcoords="offset points", ha="right")
    if not oom.empty:
        ax.axhline(top * 1.15, color="0.6", lw=0.5, ls=":")
        ax.text(ok["batch"].min(), top * 1.17, "x = out of memory", fontsize=7, color="0.3")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(rows["batch"].unique()))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size")
    ax.set_ylabel("peak device memory used (MiB)" if gpu else "peak process RSS (MiB, CPU)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    title = f"Memory footprint vs batch size, {setup}"
    fig.suptitle(title, fontsize=10)
    caption = ("Whole-device memory used (nvidia-smi's figure, the paper's)" if gpu else
               "Peak resident set of the benchmark process on the CPU (not the paper's GPU memory)") + \
        ("; x marks a batch that ran out of memory (measured; OOMs inferred from a smaller batch are listed in the "
         "table of configurations that did not complete).")
    return _save(fig, out, f"memory_vs_batch_{_slug(setup)}", title, caption)


def latency_throughput(frame: pd.DataFrame, device_id: str, names: dict[str, str], out: Path) -> FigureFile | None:
    """B=1 latency (median, order-statistic interval) and best throughput of every network, one bar per backend/mode."""
    rows = measured.ok(frame[frame["device_id"] == device_id])
    lat = rows[rows["batch"] == measured.LATENCY_BATCH]
    best = measured.best_throughput_batch(rows)
    if lat.empty and best.empty:
        return None
    setups = sorted(rows["setup"].unique())
    networks = [n for n in names if n in set(rows["network"])] + sorted(set(rows["network"]) - set(names))
    fig = _new(max(7.5, 0.6 * len(networks) * max(1, len(setups)) / 2 + 3), 6)
    ax_lat, ax_fps = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(setups)
    x = np.arange(len(networks))
    for i, setup in enumerate(setups):
        s = lat[lat["setup"] == setup].set_index("network").reindex(networks)
        med = s["latency.median_s"] * 1e3
        err = np.vstack([med - s["latency.ci_low_s"] * 1e3, s["latency.ci_high_s"] * 1e3 - med])
        ax_lat.bar(x + i * width, med, width, yerr=np.nan_to_num(err), capsize=2, label=setup)
        b = best[best["setup"] == setup].set_index("network").reindex(networks)
        ax_fps.bar(x + i * width, b["fps"], width, label=setup)
    ax_lat.set_ylabel(f"latency at B={measured.LATENCY_BATCH} (ms)")
    ax_fps.set_ylabel("best throughput (images/s)")
    for ax in (ax_lat, ax_fps):
        _log_axes(ax, x=False)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    ax_fps.set_xticks(x + width * (len(setups) - 1) / 2, [names.get(n, n) for n in networks], rotation=45,
                      ha="right", fontsize=7)
    title = f"Latency and throughput per backend and mode, {device_id}"
    fig.suptitle(title, fontsize=10)
    coverage = lat["latency.ci_coverage"].dropna() if "latency.ci_coverage" in lat else pd.Series(dtype=float)
    covered = f"{coverage.min():.2f} to {coverage.max():.2f}" if len(coverage) else "unknown"
    caption = (f"Top: median forward latency at B={measured.LATENCY_BATCH} with the order-statistic interval of the "
               f"median (coverage {covered}, by the number of timed iterations). Bottom: the highest throughput over "
               "the measured batches (batch / median latency).")
    return _save(fig, out, f"latency_throughput_{device_id}", title, caption)


def kernel_families(shares: pd.DataFrame, setup: str, names: dict[str, str], out: Path) -> FigureFile | None:
    """Stacked bars: % of GPU kernel time per kernel family, one bar per profiled network."""
    rows = shares[shares["setup"] == setup]
    if rows.empty:
        return None
    table = rows.pivot_table(index="network", columns="family", values="pct", aggfunc="sum").fillna(0.0)
    order = [n for n in names if n in table.index] + sorted(set(table.index) - set(names))
    table = table.reindex(order)
    families = table.sum().sort_values(ascending=False).index
    fig = _new()
    ax = fig.subplots()
    left = np.zeros(len(table))
    for i, family in enumerate(families):
        ax.barh(range(len(table)), table[family], left=left, label=family, color=COLORS(i % 20))
        left += table[family].to_numpy()
    ax.set_yticks(range(len(table)), [names.get(n, n) for n in table.index], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% of GPU kernel time")
    ax.legend(fontsize=6, ncol=3, loc="lower right")
    title = f"Kernel families, {setup}"
    fig.suptitle(title, fontsize=10)
    return _save(fig, out, f"kernel_families_{_slug(setup)}", title,
                 "Share of summed GPU kernel durations per kernel family (harness.kernels.taxonomy).")


def roofline(points: pd.DataFrame, spec: DeviceSpec, device_label: str, device_id: str,
             out: Path) -> FigureFile | None:
    """The device's fp32 roofline with each measured (network, backend, batch) placed at its arithmetic
    intensity and achieved FLOP/s. ``points``: columns setup, network (display name), batch,
    ai_flop_per_byte, achieved_flops."""
    points = points.dropna(subset=["ai_flop_per_byte", "achieved_flops"])
    if points.empty:
        return None
    fig = _new()
    ax = fig.subplots()
    lo = min(points["ai_flop_per_byte"].min(), spec.ridge_point("fp32")) / 4
    hi = max(points["ai_flop_per_byte"].max(), spec.ridge_point("fp32")) * 4
    ai = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(ai, np.minimum(spec.peak_flops["fp32"], ai * spec.bandwidth) / 1e9, color="k", lw=1.2,
            label=f"roofline fp32 ({spec.name})")
    for setup, group in points.groupby("setup", sort=True):
        color = ax.scatter(group["ai_flop_per_byte"], group["achieved_flops"] / 1e9, s=14,
                           label=setup).get_facecolor()[0]
        # one network's batches joined by a line, named once at its smallest batch: readable with 12 networks
        for network, runs in group.sort_values("batch").groupby("network", sort=False):
            ax.plot(runs["ai_flop_per_byte"], runs["achieved_flops"] / 1e9, color=color, lw=0.6, alpha=0.6)
            first = runs.iloc[0]
            ax.annotate(f"{network} B={first['batch']}", (first["ai_flop_per_byte"], first["achieved_flops"] / 1e9),
                        fontsize=5.5, xytext=(2, -7), textcoords="offset points")
    _log_axes(ax)
    ax.set_xlabel("arithmetic intensity (FLOP per byte, fp32, unfused layers)")
    ax.set_ylabel("GFLOP/s (2 x MACs / median latency)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    title = f"Roofline, {device_label}"
    fig.suptitle(title, fontsize=10)
    caption = (f"Peaks from harness/data/device_specs.yaml entry '{spec.name}' (vendor or derived figures, not "
               "measured). Points: measured networks; intensity from the analyzer (harness.analysis.metrics).")
    return _save(fig, out, f"roofline_{device_id}", title, caption)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)
