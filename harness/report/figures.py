"""The report's figures (matplotlib, Agg, no pyplot state), each written as PNG and SVG.

Made to be read at the size the report shows them (report.html draws the SVG at about its own size, some
1000 px wide; the PNG is 110 dpi):

- networks are numbered in the paper's order, the same number in every figure, with the key beside the plot;
  each number is put where it covers no other number and no marker (:func:`place_labels`), and a figure with
  several setups draws one small panel per setup, so a dozen networks on four engines stay apart;
- the paper's values are hollow or hatched grey, ours filled: told apart without colour;
- every axis says its unit, a log axis says so and labels its ticks with plain numbers;
- a figure drawn from synthetic records says SYNTHETIC in its title and across every panel made from them.

Every function returns the written :class:`FigureFile`, or None when it has no measured data: the report then
says "not measured here" instead of drawing an empty or made-up plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from harness.analysis.roofline import DeviceSpec
from harness.report import measured

DPI = 110
FONT = 9  # points: about 12 px where report.html shows the SVG at its own size
WIDTH = 11.0  # inches
COLORS = colormaps["tab20"]  # 12 networks need more than the default 10 colours
SETUP_COLORS = colormaps["tab10"]
MARKERS = "osD^v<>ph*"
PAPER = {"marker": "o", "facecolors": "none", "edgecolors": "0.35", "linewidths": 1.1, "s": 38}
OURS = {"marker": "s", "s": 30, "edgecolors": "black", "linewidths": 0.4}
PAPER_BAR = {"color": "0.85", "edgecolor": "0.25", "hatch": "////", "linewidth": 0.5}
SYNTHETIC_RED = "#b00020"
LABEL_GID = "point-label"  # every placed number carries it: tests check that none overlaps another
SYNTHETIC_GID = "synthetic-mark"


@dataclass(frozen=True)
class FigureFile:
    name: str
    title: str
    png: Path
    svg: Path
    caption: str
    synthetic: bool = False  # drawn (partly) from synthetic records: the figure says SYNTHETIC
    figure: Figure | None = field(default=None, compare=False, repr=False)  # for checks of what was drawn


@dataclass(frozen=True)
class Style:
    """What every figure of one report shares: the network numbers and names, and which setups are synthetic."""

    names: dict[str, str]  # zoo network -> display name, in the paper's order
    synthetic_setups: frozenset[str] = frozenset()

    def number(self, network: str) -> int:
        return list(self.names).index(network) + 1 if network in self.names else 0

    def name(self, network: str) -> str:
        return self.names.get(network, network)

    def order(self, networks: Iterable[str]) -> list[str]:
        present = set(networks)
        return [n for n in self.names if n in present] + sorted(present - set(self.names))


# ---- shared pieces ---------------------------------------------------------------------------------


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    return fig


def _title(fig: Figure, title: str, synthetic: bool) -> None:
    if synthetic:
        fig.suptitle(f"SYNTHETIC DATA (made up for tests, not a measurement)\n{title}", fontsize=FONT + 2,
                     color=SYNTHETIC_RED, fontweight="bold")
    else:
        fig.suptitle(title, fontsize=FONT + 2)


def _watermark(ax: Axes) -> None:
    """The mark on a panel drawn from synthetic records: seen at any size, behind the data."""
    ax.text(0.5, 0.5, "SYNTHETIC", transform=ax.transAxes, fontsize=30, fontweight="bold", color=SYNTHETIC_RED,
            alpha=0.16, rotation=20, ha="center", va="center", zorder=10, gid=SYNTHETIC_GID)


def _freeze_layout(fig: Figure) -> None:
    """Lay the figure out once and keep it so: labels are placed in display space, which must not move after."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def _save(fig: Figure, out: Path, name: str, title: str, caption: str, synthetic: bool) -> FigureFile:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})  # no timestamp: same data, same file
    return FigureFile(name, title, png, svg, caption, synthetic, fig)


def _tick_text(value: float, _pos: object = None) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def log_axis(ax: Axes, which: str) -> None:
    """A log scale whose ticks are plain numbers: 1-2-5 in each decade over short ranges, decades over long ones
    (call after the data are drawn: the range decides)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    decades = math.log10(high / low) if low > 0 and high > low else 1
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.2 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(_tick_text))
    axis.set_minor_formatter(NullFormatter())


def _key(ax: Axes, style: Style, networks: Sequence[str], handles: Sequence[object] = ()) -> None:
    """The key column: what the markers mean, then every number with its network."""
    ax.axis("off")
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=FONT, frameon=False, borderaxespad=0,
                  handletextpad=0.5)
    lines = [f"{style.number(n):>2}  {style.name(n)}" for n in style.order(networks)]
    below = -(18.0 * len(handles) + 12) if handles else 0.0  # points: under the legend's entries
    ax.annotate("networks\n" + "\n".join(lines), (0, 1), xycoords="axes fraction", xytext=(0, below),
                textcoords="offset points", va="top", ha="left", fontsize=FONT, family="DejaVu Sans Mono",
                linespacing=1.35)


@dataclass
class Label:
    x: float  # data coordinates
    y: float
    text: str
    color: str = "black"
    weight: str = "normal"


#: where a label may go around its point (degrees, tried in this order), and how far (points)
ANGLES = (45, -45, 135, -135, 0, 180, 90, -90, 20, -20, 160, -160, 70, -70, 110, -110)
RADII = (4.0, 7.0, 11.0, 16.0, 22.0, 29.0, 37.0, 46.0)
GAP_PT = 1.5  # the least room between two labels


def place_labels(ax: Axes, labels: Sequence[Label], marker_pt: float = 4.0, fontsize: float = FONT - 0.5,
                 angles: Sequence[float] = ANGLES, others: Sequence[tuple[float, float]] = ()) -> list[Text]:
    """Put each label beside its point where its box overlaps no label placed before it, no point's marker (the
    labelled ones and ``others``, unlabelled points in data coordinates) and does not leave the axes; greedy,
    nearest place first. A label with no free place takes the candidate with the fewest overlaps at the largest
    distance. One moved far from its point is joined to it by a thin line. Call after the layout is frozen
    (:func:`_freeze_layout`): placement happens in display space."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    inside = ax.get_window_extent(renderer).padded(-2)
    anchors = ax.transData.transform([(lab.x, lab.y) for lab in labels]) if labels else np.empty((0, 2))
    markers = ax.transData.transform(list(others)) if len(others) else np.empty((0, 2))
    half = marker_pt * scale
    taken = [Bbox.from_extents(px - half, py - half, px + half, py + half) for px, py in [*anchors, *markers]]
    texts = []
    for lab, (px, py) in zip(labels, anchors, strict=True):
        probe = fig.text(0, 0, lab.text, fontsize=fontsize, fontweight=lab.weight)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = extent.width, extent.height
        best: tuple[int, float, float] | None = None
        for radius in RADII:
            for angle in angles:
                dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
                box = _candidate_box(px + dx * scale, py + dy * scale, w, h, dx, dy)
                spaced = box.padded(GAP_PT * scale)  # two numbers side by side must not read as one
                cost = sum(spaced.overlaps(t) for t in taken) + (0 if _contains(inside, box) else 2)
                if best is None or cost < best[0] or (cost == best[0] and cost > 0):
                    best = (cost, dx, dy)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        cost, dx, dy = best
        text = ax.annotate(lab.text, (lab.x, lab.y), xytext=(dx, dy), textcoords="offset points",
                           ha=_h_align(dx), va=_v_align(dy), fontsize=fontsize, color=lab.color,
                           fontweight=lab.weight, gid=LABEL_GID, annotation_clip=False,
                           arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5, "shrinkA": 0, "shrinkB": 2}
                           if cost or math.hypot(dx, dy) > RADII[2] else None)
        taken.append(_candidate_box(px + dx * scale, py + dy * scale, w, h, dx, dy))
        texts.append(text)
    return texts


def _h_align(dx: float) -> str:
    return "left" if dx > 0.5 else "right" if dx < -0.5 else "center"


def _v_align(dy: float) -> str:
    return "bottom" if dy > 0.5 else "top" if dy < -0.5 else "center"


def _candidate_box(x: float, y: float, w: float, h: float, dx: float, dy: float) -> Bbox:
    left = x if _h_align(dx) == "left" else x - w if _h_align(dx) == "right" else x - w / 2
    bottom = y if _v_align(dy) == "bottom" else y - h if _v_align(dy) == "top" else y - h / 2
    return Bbox.from_bounds(left, bottom, w, h)


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0 and inner.y1 <= outer.y1


def overlapping_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of placed labels (:data:`LABEL_GID`) of one panel whose boxes overlap: none in a readable figure."""
    fig.canvas.draw()  # annotations take their place when drawn
    renderer = fig.canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_gid() == LABEL_GID]
        boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text alone, not its leader line
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i].overlaps(boxes[j]):
                    pairs.append((texts[i].get_text(), texts[j].get_text()))
    return pairs


def _grid(fig: Figure, panels: int, columns: int, key: bool = True) -> tuple[list[Axes], Axes | None]:
    rows = math.ceil(panels / columns)
    gs = fig.add_gridspec(rows, columns + (1 if key else 0),
                          width_ratios=[1.0] * columns + ([0.42 if columns > 1 else 0.55] if key else []))
    axes = [fig.add_subplot(gs[i // columns, i % columns]) for i in range(panels)]
    return axes, fig.add_subplot(gs[:, columns]) if key else None


# ---- Figs. 3 and 4 ---------------------------------------------------------------------------------

Panel = tuple[str, str, str, str]  # (x column, x axis label, y column, y axis label): labels with unit and scale


def ratio_scatter(series: dict[str, pd.DataFrame], paper: pd.DataFrame, panels: list[Panel], style: Style,
                  out: Path, name: str, title: str, caption: str, cpu_setups: Iterable[str] = ()) -> FigureFile | None:
    """Fig. 3 / Fig. 4: a measured quantity against design-time ratios (log-log), one panel per setup (and per
    x quantity), the paper's P100 points in every panel, each network numbered where it was drawn, our point and
    the paper's joined by a faint line. Not drawn when no setup measured any panel's y."""
    cells = [(setup, panel) for setup, xy in series.items() for panel in panels if xy[panel[2]].notna().any()]
    if not cells:
        return None
    cpu = set(cpu_setups)
    columns = len(panels) if len(panels) > 1 else min(2, len(cells))
    rows = math.ceil(len(cells) / columns)
    fig = _new(WIDTH, 0.9 + 3.7 * rows)
    axes, key = _grid(fig, len(cells), columns)
    synthetic = False
    shown: set[str] = set()
    for ax, (setup, (x, xlabel, y, ylabel)) in zip(axes, cells, strict=True):
        ours = series[setup][[x, y]].dropna()
        theirs = paper[[x, y]].dropna()
        for network in ours.index.intersection(theirs.index):
            ax.plot([theirs.at[network, x], ours.at[network, x]], [theirs.at[network, y], ours.at[network, y]],
                    color="0.75", lw=0.7, zorder=1)
        ax.scatter(theirs[x], theirs[y], zorder=2, **PAPER)
        ax.scatter(ours[x], ours[y], color=SETUP_COLORS(0), zorder=3, **OURS)
        ax.margins(0.12)
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set_xlabel(xlabel, fontsize=FONT)
        ax.set_ylabel(ylabel, fontsize=FONT)
        ax.tick_params(labelsize=FONT - 0.5)
        ax.grid(True, which="major", alpha=0.3)
        note = " (CPU: peak RSS)" if setup in cpu and "footprint" in y else ""
        ax.set_title(f"{setup}{note}", fontsize=FONT + 0.5, loc="left")
        if setup in style.synthetic_setups:
            synthetic = True
            _watermark(ax)
        shown |= set(ours.index) | set(theirs.index)
    handles = [Line2D([], [], linestyle="none", markerfacecolor="none", markeredgecolor="0.35", marker="o",
                      markersize=7, label="paper (P100)"),
               Line2D([], [], linestyle="none", marker="s", markerfacecolor=SETUP_COLORS(0), markeredgecolor="black",
                      markersize=6.5, label="ours (panel's setup)"),
               Line2D([], [], color="0.75", lw=0.8, label="same network")]
    assert key is not None
    _key(key, style, sorted(shown), handles)
    _title(fig, title, synthetic)
    _freeze_layout(fig)
    for ax, (setup, (x, _, y, _)) in zip(axes, cells, strict=True):
        ours, theirs = series[setup][[x, y]].dropna(), paper[[x, y]].dropna()
        labels = [Label(ours.at[n, x], ours.at[n, y], str(style.number(n)), weight="bold") for n in ours.index]
        labels += [Label(theirs.at[n, x], theirs.at[n, y], str(style.number(n)), color="0.45")
                   for n in theirs.index]
        place_labels(ax, labels)
    return _save(fig, out, name, title, caption, synthetic)


# ---- latency and throughput ------------------------------------------------------------------------


def latency_throughput(frame: pd.DataFrame, device: measured.Device, style: Style, paper: pd.DataFrame | None,
                       out: Path) -> FigureFile | None:
    """B=1 latency (median and the order-statistic interval of the median) and the best throughput of every
    network, one bar per backend/mode of the device; on a GPU the paper's P100 bars (hatched) first.
    ``paper``: the paper's Table III by zoo network (inference_time_ms, throughput_fps), or None."""
    rows = measured.ok(frame[frame["device_id"] == device.id])
    lat = rows[rows["batch"] == measured.LATENCY_BATCH]
    best = measured.best_throughput_batch(rows)
    if lat.empty and best.empty:
        return None
    setups = sorted(rows["setup"].unique())
    networks = style.order(rows["network"])
    show_paper = paper is not None and device.kind == "gpu"
    bars = (1 if show_paper else 0) + len(setups)
    width = 0.82 / bars
    x = np.arange(len(networks))
    fig = _new(WIDTH, 7.6)
    ax_lat, ax_fps = fig.subplots(2, 1, sharex=True)
    synthetic = any(s in style.synthetic_setups for s in setups)
    offset = 0
    if show_paper:
        assert paper is not None
        theirs = paper.reindex(networks)
        ax_lat.bar(x, theirs["inference_time_ms"], width, label="paper (Caffe, P100)", **PAPER_BAR)
        ax_fps.bar(x, theirs["throughput_fps"], width, **PAPER_BAR)
        offset = 1
    for i, setup in enumerate(setups):
        color = SETUP_COLORS(i % 10)
        s = lat[lat["setup"] == setup].set_index("network").reindex(networks)
        med = s["latency.median_s"] * 1e3
        err = np.vstack([med - s["latency.ci_low_s"] * 1e3, s["latency.ci_high_s"] * 1e3 - med])
        at = x + (offset + i) * width
        ax_lat.bar(at, med, width, yerr=np.nan_to_num(err), capsize=1.5, color=color, label=f"ours: {setup}",
                   error_kw={"lw": 0.7})
        b = best[best["setup"] == setup].set_index("network").reindex(networks)
        ax_fps.bar(at, b["fps"], width, color=color)
    for ax, label in ((ax_lat, f"latency at B={measured.LATENCY_BATCH} (ms, log scale)"),
                      (ax_fps, "best throughput (images/s, log scale)")):
        log_axis(ax, "y")
        ax.set_ylabel(label, fontsize=FONT)
        ax.tick_params(labelsize=FONT - 0.5)
        ax.grid(True, axis="y", which="major", alpha=0.35)
        if synthetic:
            _watermark(ax)
    ax_lat.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=min(bars, 5), fontsize=FONT, frameon=False,
                  borderaxespad=0)
    ax_fps.set_xticks(x + width * (bars - 1) / 2, [style.name(n) for n in networks], rotation=30, ha="right",
                      fontsize=FONT)
    title = f"Latency and throughput, {device.label}"
    _title(fig, title, synthetic)
    coverage = lat["latency.ci_coverage"].dropna() if "latency.ci_coverage" in lat else pd.Series(dtype=float)
    covered = f"coverage {coverage.min():.2f} to {coverage.max():.2f}" if len(coverage) else "coverage unknown"
    caption = (f"Top: median forward latency at B={measured.LATENCY_BATCH}, with the order-statistic interval of "
               f"the median ({covered}, by the number of timed iterations). Bottom: the highest throughput over the "
               "measured batches (batch / median latency)." +
               (" Hatched grey: the paper's Table III (Caffe on a P100; its throughput at a large batch)."
                if show_paper else ""))
    return _save(fig, out, f"latency_throughput_{device.id}", title, caption, synthetic)


# ---- memory against batch --------------------------------------------------------------------------


def memory_vs_batch(frame: pd.DataFrame, device: measured.Device, style: Style, out: Path) -> FigureFile | None:
    """Peak memory against batch for every network, one panel per setup of the device that ran two batches or
    more; a measured out-of-memory batch marked x at the top of its panel."""
    rows = frame[frame["device_id"] == device.id]
    rows = rows.assign(mib=measured.footprint_bytes(rows) / measured.MIB)
    setups = [s for s, g in rows.groupby("setup", sort=True)
              if g["batch"].nunique() >= 2 and not measured.ok(g).dropna(subset=["mib"]).empty]
    if not setups:
        return None
    columns = min(2, len(setups))
    fig = _new(WIDTH, 0.9 + 3.5 * math.ceil(len(setups) / columns))
    axes, key = _grid(fig, len(setups), columns)
    gpu = device.kind == "gpu"
    synthetic, shown, pending = False, set(), []
    for ax, setup in zip(axes, setups, strict=True):
        group = rows[rows["setup"] == setup]
        ok = measured.ok(group).dropna(subset=["mib"])
        oom = group[measured.measured_oom(group)]  # an OOM inferred from a smaller batch was not run: not drawn
        top = ok["mib"].max() * 1.12
        labels, others = [], []
        for network in style.order(ok["network"]):
            line = ok[ok["network"] == network].sort_values("batch")
            number = style.number(network)
            color = COLORS((number - 1) % 20)
            ax.plot(line["batch"], line["mib"], marker=MARKERS[(number - 1) % len(MARKERS)], ms=3.5, lw=1.1,
                    color=color)
            last = line.iloc[-1]
            labels.append(Label(float(last["batch"]), float(last["mib"]), str(number)))
            others += [(float(b), float(m)) for b, m in zip(line["batch"][:-1], line["mib"][:-1], strict=True)]
            shown.add(network)
        for _, failed in oom.iterrows():
            number = style.number(failed["network"])
            ax.scatter([failed["batch"]], [top], marker="x", s=45, color=COLORS((number - 1) % 20), zorder=3)
            labels.append(Label(float(failed["batch"]), float(top), str(number), color=SYNTHETIC_RED))
            shown.add(failed["network"])
        if not oom.empty:
            ax.axhline(top, color="0.6", lw=0.5, ls=":")
            ax.text(0.01, 0.99, "x: out of memory (measured)", transform=ax.transAxes, fontsize=FONT - 1,
                    va="top", color="0.3")
        ax.set_xscale("log", base=2)
        batches = sorted(group["batch"].unique())
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(batches[0] / 1.6, batches[-1] * 1.6)
        ax.set_ylim(0, top * 1.08)
        ax.set_xlabel("batch size (images, log scale)", fontsize=FONT)
        ax.set_ylabel("peak device memory used (MiB)" if gpu else "peak process RSS (MiB)", fontsize=FONT)
        ax.tick_params(labelsize=FONT - 0.5)
        ax.grid(True, alpha=0.3)
        ax.set_title(setup, fontsize=FONT + 0.5, loc="left")
        if setup in style.synthetic_setups:
            synthetic = True
            _watermark(ax)
        pending.append((ax, labels, others))
    assert key is not None
    _key(key, style, sorted(shown))
    title = f"Memory footprint vs batch size, {device.label}"
    _title(fig, title, synthetic)
    _freeze_layout(fig)
    for ax, labels, others in pending:
        place_labels(ax, labels, angles=(0, 30, -30, 60, -60, 180, 150, -150, 90, -90), others=others)
    caption = ("Whole-device memory used at its peak (what nvidia-smi shows: the paper's quantity)" if gpu else
               "Peak resident set of the benchmark process on the CPU (not the paper's GPU memory)") + \
        "; each line numbered at its largest batch. x marks a batch that ran out of memory (measured; an OOM " \
        "inferred from a smaller batch is listed in the table of configurations that did not complete)."
    return _save(fig, out, f"memory_vs_batch_{device.id}", title, caption, synthetic)


# ---- kernel families -------------------------------------------------------------------------------

PAPER_FAMILY_HATCH = {"gemv2T": "////", "gemv2N": "\\\\\\\\", "gemmk1": "xxx"}
REST = "rest (the paper gives no breakdown)"


def kernel_families(shares: pd.DataFrame, setup: str, style: Style, paper: dict[str, dict[str, str]],
                    out: Path) -> FigureFile | None:
    """Stacked bars: % of GPU kernel time per kernel family, per profiled network ours and, where the paper
    has the network, its gemv2T / gemv2N / gemmk1 shares (hatched in both bars, so they match without colour).
    ``paper``: the paper's Table III rows by paper name."""
    rows = shares[shares["setup"] == setup]
    if rows.empty:
        return None
    table = rows.pivot_table(index="network", columns="family", values="pct", aggfunc="sum").fillna(0.0)
    table = table.reindex(style.order(table.index))
    named = [f for f in PAPER_FAMILY_HATCH if f in table.columns]
    families = named + [f for f in table.sum().sort_values(ascending=False).index if f not in named]
    bars: list[tuple[str, dict[str, float]]] = []
    for network in table.index:
        bars.append((f"{style.name(network)}: ours", {f: float(table.at[network, f]) for f in families}))
        theirs = paper.get(style.name(network))
        if theirs is not None:
            cut = {f: float(theirs[f"{f}_pct"]) for f in PAPER_FAMILY_HATCH}
            bars.append((f"{style.name(network)}: paper (P100)", {**cut, REST: max(0.0, 100 - sum(cut.values()))}))
    fig = _new(WIDTH, 1.9 + 0.42 * len(bars))
    ax = fig.subplots()
    colors = {f: COLORS(i % 20) for i, f in enumerate(families)}
    colors[REST] = "0.92"
    handles = []
    for family in [*families, REST]:
        values = np.array([b.get(family, 0.0) for _, b in bars])
        if not values.any():
            continue
        left = np.array([sum(v for f, v in b.items() if _order(f, families) < _order(family, families))
                         for _, b in bars])
        ax.barh(range(len(bars)), values, left=left, color=colors[family], edgecolor="0.2", linewidth=0.4,
                hatch=PAPER_FAMILY_HATCH.get(family), height=0.72)
        handles.append(Patch(facecolor=colors[family], edgecolor="0.2", hatch=PAPER_FAMILY_HATCH.get(family),
                             label=family))
        for i, (v, l0) in enumerate(zip(values, left, strict=True)):
            if v >= 9 and family != REST:
                ax.text(l0 + v / 2, i, f"{family}\n{v:.0f}%", ha="center", va="center", fontsize=FONT - 1.5,
                        bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=FONT)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of GPU kernel time", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 0.5)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=FONT - 0.5, frameon=False,
              title="kernel family", title_fontsize=FONT - 0.5, borderaxespad=0)
    synthetic = bool(rows["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in rows else False
    synthetic = synthetic or setup in style.synthetic_setups
    if synthetic:
        _watermark(ax)
    title = f"Kernel families, {setup}"
    _title(fig, title, synthetic)
    return _save(fig, out, f"kernel_families_{_slug(setup)}", title,
                 "Share of summed GPU kernel durations per kernel family (harness.kernels.taxonomy); the paper's "
                 "bars hold its three columns of Table III (the rest of its time is not broken down).", synthetic)


def _order(family: str, families: Sequence[str]) -> int:
    return families.index(family) if family in families else len(families)


# ---- roofline --------------------------------------------------------------------------------------


def roofline(points: pd.DataFrame, spec: DeviceSpec, device: measured.Device, style: Style,
             out: Path) -> FigureFile | None:
    """The device's fp32 roofline with each measured (network, setup, batch) at its arithmetic intensity and
    achieved FLOP/s; one network's batches joined by a line, numbered at its smallest batch. ``points``:
    columns setup, network (zoo name), batch, ai_flop_per_byte, achieved_flops."""
    points = points.dropna(subset=["ai_flop_per_byte", "achieved_flops"])
    if points.empty:
        return None
    fig = _new(WIDTH, 5.6)
    axes, key = _grid(fig, 1, 1)
    ax = axes[0]
    ridge = spec.ridge_point("fp32")
    lo = min(points["ai_flop_per_byte"].min(), ridge) / 4
    hi = max(points["ai_flop_per_byte"].max(), ridge) * 4
    ai = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(ai, np.minimum(spec.peak_flops["fp32"], ai * spec.bandwidth) / 1e9, color="k", lw=1.3,
            label=f"roofline fp32 ({spec.name})")
    labels = []
    setups = sorted(points["setup"].unique())
    for i, setup in enumerate(setups):
        group = points[points["setup"] == setup]
        color = SETUP_COLORS(i % 10)
        ax.scatter(group["ai_flop_per_byte"], group["achieved_flops"] / 1e9, s=18, color=color,
                   marker=MARKERS[i % len(MARKERS)], label=f"ours: {setup}", zorder=3)
        for network, runs in group.sort_values("batch").groupby("network", sort=False):
            ax.plot(runs["ai_flop_per_byte"], runs["achieved_flops"] / 1e9, color=color, lw=0.7, alpha=0.6)
            first = runs.iloc[0]
            labels.append(Label(float(first["ai_flop_per_byte"]), float(first["achieved_flops"]) / 1e9,
                                str(style.number(str(network)))))
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("arithmetic intensity (FLOP/byte, fp32, unfused layers; log scale)", fontsize=FONT)
    ax.set_ylabel("achieved GFLOP/s (2 x MACs / median latency; log scale)", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 0.5)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=FONT - 0.5, loc="lower right")
    synthetic = any(s in style.synthetic_setups for s in setups)
    if synthetic:
        _watermark(ax)
    assert key is not None
    _key(key, style, sorted(points["network"].unique()))
    title = f"Roofline, {device.label}"
    _title(fig, title, synthetic)
    _freeze_layout(fig)
    place_labels(ax, labels, others=list(zip(points["ai_flop_per_byte"], points["achieved_flops"] / 1e9,
                                             strict=True)))
    caption = (f"Peaks from harness/data/device_specs.yaml entry '{spec.name}' (vendor or derived figures, not "
               "measured). Points: measured networks, joined across batches and numbered at the smallest; "
               "intensity from the analyzer (harness.analysis.metrics).")
    return _save(fig, out, f"roofline_{device.id}", title, caption, synthetic)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)
