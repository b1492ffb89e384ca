"""The report's "Where the time goes" section: layer profiles (``harness layers --out``) read back, per network
and setup the share of time against the share of MACs by layer kind (compact networks beside AlexNet), a
per-layer roofline scatter, and the paper's claim that per-layer data decides: 1x1 convolutions, with their
low data reuse, achieve less per MAC than larger filters.

A setup is a device with one engine and mode, named as the rest of the report names it (``D1 opencv/cpu``). A
profile flagged contended (its measurement shared the machine, :mod:`harness.measure.contention`) is shown,
labelled, in the tables and figures (its shares of time are what they were on that machine), and left out of
the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.patches import Patch

from harness.analysis.roofline import DeviceSpec
from harness.layertime.join import category_summary, row_figures
from harness.layertime.record import LayerProfile, RowTime
from harness.report import claims
from harness.report.figures import COLORS, FONT, FigureFile, Style, _new, _save, _slug, _title, log_axis
from harness.report.measured import Device, Measured, setup_order
from harness.report.render import Missing, Section, Table

TITLE = "Where the time goes"
#: a dense convolution whose filter is larger than 1x1 (the paper's "large filters")
LARGER_FILTER = re.compile(r"^(\d+)x(\d+)( grouped)? convolution$")
ONE_BY_ONE = "1x1 convolution"
#: a device -> the roofline's device spec for it, or None
SpecFor = Callable[[Device], DeviceSpec | None]
#: what a figure becomes in the report: the figure, or why it is missing (the report's Context.figure)
Place = Callable[[FigureFile | None, str, str], FigureFile | Missing]


def measured_profiles(data: Measured) -> dict[str, tuple[str, LayerProfile]]:
    """key -> (setup, profile) of every ok layer profile."""
    if data.layers.empty:
        return {}
    setups = dict(zip(data.layers["key"], data.layers["setup"], strict=True))
    return {p.key: (setups[p.key], p) for p in data.layer_profiles if p.status == "ok" and p.whole is not None}


def section(data: Measured, devices: list[Device], style: Style, figdir: Path, place: Place,
            spec_for: SpecFor) -> Section:
    """The section: the profiles' table, the shares by layer kind, and per setup the two figures."""
    profiles = measured_profiles(data)
    out = Section(TITLE, "where-the-time-goes")
    if not profiles:
        out.items.append(Missing(TITLE, "no layer profile in the results (`harness layers NET... --out DIR` writes "
                                        "them; so does a sweep file's `layer_profiles: true`)"))
        return out
    out.text += [
        "Per-layer times measured by each engine's own mechanism (harness layers; docs/layers.md), each row as the "
        "engine ran it (a fused group is one row), joined with the analyzer's MACs and bytes (BVLC Caffe's "
        "counting). Shares of time are of the sum of a profile's rows; shares of MACs of the network's MACs.",
        "The whole forward is timed in the same worker, alternating with the instrumented passes; the gap is the "
        "median over those pairs of (whole - sum of the rows) / whole, the overhead that of instrumented pass / "
        "whole - 1. Profiles marked 'contended' shared the machine: they are shown, and left out of the verdict."]
    out.items.append(Table("layer_profiles", "Layer profiles", _overview(profiles, style)))
    out.items.append(Table("layer_kinds", "Share of time vs share of MACs by layer kind", _kinds(profiles, style),
                           "One row per network, setup and layer kind.", shown=False))
    colors = kind_colors([p for _, p in profiles.values()])
    by_device = {d.id: d for d in devices}
    for setup in setup_order(s for s, _ in profiles.values()):
        group = sorted((p for s, p in profiles.values() if s == setup),
                       key=lambda p: (style.number(p.config.network) or 999, p.config.network, p.config.batch))
        out.items.append(place(shares_figure(group, setup, style, colors, figdir), f"Time vs MACs ({setup})",
                               "no profile"))
        device = by_device.get(setup.split(" ")[0])
        spec = spec_for(device) if device is not None else None
        out.items.append(place(layer_roofline(group, setup, spec, style, colors, figdir),
                               f"Per-layer roofline ({setup})", "no row of these profiles does MACs"))
    return out


def _overview(profiles: dict[str, tuple[str, LayerProfile]], style: Style) -> pd.DataFrame:
    rows = []
    for setup, p in sorted(profiles.values(), key=lambda sp: (sp[0], style.number(sp[1].config.network))):
        assert p.whole is not None
        rows.append({"network": style.name(p.config.network), "setup": setup, "batch": p.config.batch,
                     "whole forward (ms)": p.whole.median_s * 1e3, "sum of rows (ms)": (p.pass_sum_s or 0.0) * 1e3,
                     "gap (% of whole)": 100 * (p.gap or 0.0),
                     "per-layer timing overhead (%)": 100 * (p.overhead or 0.0), "rows": len(p.rows),
                     "passes": p.whole.iterations,
                     "contended": "; ".join((p.contended or {}).get("reasons", [])) or "no", "synthetic": False})
    return pd.DataFrame(rows)


def _kinds(profiles: dict[str, tuple[str, LayerProfile]], style: Style) -> pd.DataFrame:
    rows = [{"network": style.name(p.config.network), "setup": setup, "batch": p.config.batch, "kind": s["category"],
             "% of MACs": s["macs_pct"], "% of time": s["time_pct"], "ms": s["time_ms"], "rows": s["rows"],
             "synthetic": False} for setup, p in profiles.values() for s in category_summary(p)]
    return pd.DataFrame(rows)


def kind_colors(profiles: list[LayerProfile]) -> dict[str, tuple[float, ...]]:
    """One colour per layer kind, the same in every figure: ten distinct ones, then lighter shades."""
    kinds = sorted({r.category for p in profiles for r in p.rows})
    palette = [colormaps["tab10"](i) for i in range(10)] + [COLORS(2 * i + 1) for i in range(10)]
    return {kind: palette[i % len(palette)] for i, kind in enumerate(kinds)}


def _label(profile: LayerProfile, style: Style) -> str:
    label = f"{style.name(profile.config.network)} B={profile.config.batch}"
    return label + (" (contended)" if profile.contended else "")


def shares_figure(profiles: list[LayerProfile], setup: str, style: Style, colors: dict[str, tuple[float, ...]],
                  out: Path) -> FigureFile:
    """Two stacked bars per network: its MACs by layer kind and its time by layer kind."""
    fig = _new(9.0, 0.8 * len(profiles) + 2.4)
    ax = fig.subplots()
    labels: list[str] = []
    for i, profile in enumerate(profiles):
        summary = {s["category"]: s for s in category_summary(profile)}
        for j, (what, key) in enumerate((("MACs", "macs_pct"), ("time", "time_pct"))):
            left = 0.0
            for kind, color in colors.items():
                value = (summary.get(kind) or {}).get(key) or 0.0
                if value:
                    ax.barh(2 * i + j, value, left=left, color=color, height=0.8)
                    left += value
            labels.append(f"{_label(profile, style)}: {what}")
    ax.set_yticks(range(len(labels)), labels, fontsize=FONT - 1)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the network's MACs / % of the sum of its rows' time")
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=FONT - 1, ncol=3,
              loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(labels)))
    title = f"Share of time vs share of MACs by layer kind, {setup}"
    _title(fig, title, synthetic=False)
    return _save(fig, out, f"time_vs_macs_{_slug(setup)}", title,
                 "Per network, its MACs (analyzer) and its measured time (the engine's rows) split by layer kind; a "
                 "fused row counts as the kind of its convolution or fully connected layer.", synthetic=False)


def layer_roofline(profiles: list[LayerProfile], setup: str, spec: DeviceSpec | None, style: Style,
                   colors: dict[str, tuple[float, ...]], out: Path) -> FigureFile | None:
    """Every row that does MACs at its arithmetic intensity and achieved rate, coloured by layer kind; the
    device's roofline where a device spec matches. None when no row does MACs."""
    points = pd.DataFrame([row_figures(p, r) for p in profiles for r in p.rows])
    points = points.dropna(subset=["gmacs_per_s", "ai_mac_per_byte"]) if not points.empty else points
    if points.empty:
        return None
    fig = _new(8.0, 5.0)
    ax = fig.subplots()
    for kind, group in points.groupby("category", sort=True):
        ax.scatter(group["ai_mac_per_byte"], group["gmacs_per_s"], s=14, color=colors[str(kind)], label=str(kind),
                   alpha=0.8)
    if spec is not None:
        dtype = "fp16" if any(p.bytes_per_element == 2 for p in profiles) else "fp32"
        ai = np.logspace(np.log10(points["ai_mac_per_byte"].min() / 4),
                         np.log10(max(points["ai_mac_per_byte"].max(), spec.ridge_point(dtype) / 2) * 4), 200)
        roof = np.minimum(spec.peak_flops[dtype] / 2, ai * spec.bandwidth) / 1e9  # MAC/s = FLOP/s / 2
        ax.plot(ai, roof, color="k", lw=1.2, label=f"roofline {dtype} ({spec.name})")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("arithmetic intensity (MACs per byte moved, the row's layers unfused)")
    ax.set_ylabel("achieved GMAC/s (MACs / median row time)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=FONT - 1, ncol=2)
    title = f"Per-layer roofline, {setup}"
    _title(fig, title, synthetic=False)
    networks = ", ".join(_label(p, style) for p in profiles)
    caption = (f"One point per row that does MACs ({networks}). " +
               (f"Roofline from harness/data/device_specs.yaml '{spec.name}' (vendor peaks, not measured)."
                if spec is not None else "No device spec matches this device: no roofline is drawn "
                "(harness/data/device_specs.yaml has GPU specs only; --device-spec D<n>=NAME names one)."))
    return _save(fig, out, f"layer_roofline_{_slug(setup)}", title, caption, synthetic=False)


def claim_one_by_one(data: Measured) -> list[claims.Claim]:
    """The paper (Sec. III-A, III-C): 1x1 filters lower data reuse and arithmetic intensity, which makes the
    convolution bandwidth-bound, where large filters are compute-bound. Per setup, over its uncontended
    profiles: the MAC rate of all 1x1 convolution rows (their MACs over their summed median times) against
    that of all larger dense filters, each with an interval from the rows' median intervals."""
    claim = "1x1 convolutions achieve fewer MACs per second than larger filters (low reuse, bandwidth-bound)"
    paper = "Sec. III-A: small filters lower data reuse and arithmetic intensity, large filters are compute-bound"
    rule = ("per setup: sum of MACs / sum of median times of its 1x1 convolution rows below that of its larger "
            "dense filter rows, their intervals (from the rows' order-statistic intervals) apart")

    def check(group: list[LayerProfile]) -> claims.Outcome:
        small = [r for p in group for r in p.rows if r.category == ONE_BY_ONE and r.macs]
        large = [r for p in group for r in p.rows if LARGER_FILTER.match(r.category) and r.category != ONE_BY_ONE
                 and r.macs]
        keys = tuple(p.key for p in group)
        if not small or not large:
            return claims.Outcome(claims.NOT_MEASURED, "no 1x1 convolution rows or no larger filter rows",
                                  len(group), keys)
        (s, s_low, s_high), (g, g_low, g_high) = _rate(small), _rate(large)
        verdict = claims.REPRODUCED if s_high < g_low else claims.NOT_REPRODUCED if s_low > g_high \
            else claims.INCONCLUSIVE
        text = (f"1x1: {s:.2f} GMAC/s [{s_low:.2f}, {s_high:.2f}] over {len(small)} rows; larger: {g:.2f} GMAC/s "
                f"[{g_low:.2f}, {g_high:.2f}] over {len(large)} rows")
        return claims.Outcome(verdict, text, len(group), keys, f"1x1 {s:.2f} vs larger {g:.2f} GMAC/s")

    profiles = measured_profiles(data)
    rows = []
    for scope, kind in ((claims.GPU, "cuda"), (claims.CPU, "cpu")):
        mine = [(s, p) for s, p in profiles.values() if p.config.device_kind == kind]
        if scope == claims.CPU and not mine:
            continue
        setups: dict[str, list[LayerProfile]] = {}
        for s, p in mine:
            if not p.contended:
                setups.setdefault(s, []).append(p)
        contended = len(mine) - sum(len(g) for g in setups.values())
        rows.append(claims.scoped(claim, paper, rule, scope, setup_order(setups),
                                  lambda s, groups=setups: check(groups[s]),
                                  f"{contended} contended layer profile(s)" if contended else "",
                                  none_note=f"no uncontended {'GPU' if kind == 'cuda' else 'CPU'} layer profile"))
    return rows


def _rate(rows: list[RowTime]) -> tuple[float, float, float]:
    """GMAC/s of a set of rows at their medians, and at the ends of their intervals."""
    macs = sum(r.macs for r in rows) / 1e9
    return (macs / sum(r.median_s for r in rows), macs / sum(r.ci_high_s for r in rows),
            macs / sum(r.ci_low_s for r in rows))
