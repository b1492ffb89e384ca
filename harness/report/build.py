"""Assemble the replication report from results directories and the analyzer, and write it out.

The report is read the way a reviewer reads it: the answer first (what was measured, and one short row per claim
with its verdict and a link to the evidence), then the paper's tables beside ours, the figures, the kernels, the
analyzer's tables, and the details last. :data:`SECTIONS` is that order: each entry makes one section from the
:class:`Context`, so a new section is one function and one place in the list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from harness import __version__
from harness.analysis.paper import TABLE2_COLUMNS, TABLE2_RULE
from harness.analysis.roofline import DeviceSpec, device_spec
from harness.errors import HarnessError
from harness.report import claims, correlations, design, figures, measured, tables, where_time_goes
from harness.report.render import (
    Block,
    Link,
    Missing,
    Part,
    Section,
    Table,
    html_document,
    markdown,
    write_tables,
)
from harness.report.stats import BOOTSTRAP_RESAMPLES

TITLE = "Replication report: The Ramifications of Making Deep Neural Networks Compact"
SYNTHETIC_BANNER = ("SYNTHETIC DATA: some records or profiles here are made up for tests (marked SYNTHETIC in "
                    "every table row, figure and verdict made from them); no figure from them is a measurement.")

# Device name -> device_specs.yaml entry, for the roofline. Only models whose spec entry is that exact
# product; a card of another variant (H100 PCIe, P100 PCIe 12 GB) gets no roofline rather than a wrong one.
DEVICE_SPEC_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("gpu", r"P100-SXM2", "p100-sxm2"),
    ("gpu", r"V100-SXM2-32GB", "v100-sxm2-32gb"),
    ("gpu", r"A100-SXM4-80GB", "a100-sxm4-80gb"),
    ("gpu", r"H100 80GB HBM3|H100 SXM", "h100-sxm"),
    ("gpu", r"H200", "h200-sxm"),
)


@dataclass(frozen=True)
class Report:
    out: Path
    markdown: Path
    html: Path
    tables: list[Path]
    figures: list[figures.FigureFile]
    claims: list[claims.Claim]
    warnings: list[str]


@dataclass
class Context:
    """Everything the sections read, computed once."""

    data: measured.Measured
    names: dict[str, str]  # zoo network -> the paper's name, in the paper's order
    devices: list[measured.Device]
    checklist: list[claims.Claim]
    table2: pd.DataFrame
    factorisation: design.Factorisation
    table4: pd.DataFrame
    series: dict[str, pd.DataFrame]  # setup -> correlations.measured_xy
    style: figures.Style
    figdir: Path
    spec_overrides: dict[str, str]
    made: list[figures.FigureFile] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        return self.data.frame

    @cached_property
    def synthetic_keys(self) -> set[str]:
        """Keys of the synthetic records and profiles (a verdict that used one says so)."""
        keys = set()
        if not self.frame.empty:
            keys |= set(self.frame.loc[self.frame["synthetic"], "key"])
        return keys | {p.config.key() for p in self.data.profiles if p.synthetic}

    def figure(self, item: figures.FigureFile | None, what: str, why: str) -> figures.FigureFile | Missing:
        if item is None:
            return Missing(what, why)
        self.made.append(item)
        return item

    @property
    def measured_devices(self) -> list[measured.Device]:
        """The devices with result records (a device may have kernel profiles only)."""
        ids = set(self.frame["device_id"]) if not self.frame.empty else set()
        return [d for d in self.devices if d.id in ids]

    def setups(self, device: measured.Device | None = None) -> list[str]:
        """The setups of the records and kernel profiles (of one device), in column-group order."""
        found: list[str] = []
        for rows in (self.frame, self.data.shares):
            if not rows.empty:
                found += list(rows["setup"] if device is None else rows.loc[rows["device_id"] == device.id, "setup"])
        return measured.setup_order(found)


def paper_names(networks: Sequence[str]) -> dict[str, str]:
    """Zoo network -> the paper's name, in the paper's order, then any other measured network as itself."""
    from harness import zoo

    names = {n: zoo.paper_name(n) for n in zoo.zoo_names()}
    names.update({n: n for n in networks if n not in names})
    return names


def match_spec(kind: str, name: str, overrides: dict[str, str], device_id: str) -> DeviceSpec | None:
    if device_id in overrides:
        return device_spec(overrides[device_id])
    for want_kind, pattern, spec in DEVICE_SPEC_PATTERNS:
        if kind == want_kind and re.search(pattern, name):
            return device_spec(spec)
    return None


def roofline_points(frame: pd.DataFrame, device_id: str) -> pd.DataFrame:
    """Each ok record of the device with its analyzer arithmetic intensity and achieved FLOP/s."""
    from harness import zoo
    from harness.analysis.metrics import metric_columns

    rows = measured.ok(frame[frame["device_id"] == device_id]).dropna(subset=["latency.median_s", "macs_per_forward"])
    out = []
    for (network, batch), group in rows.groupby(["network", "batch"], sort=True):
        if not zoo.is_zoo_name(network):
            continue
        ai_mac_per_byte = metric_columns(design.zoo_analysis(network, int(batch)))[1]["ai_fp32"]
        for _, r in group.iterrows():
            out.append({"setup": r["setup"], "network": network, "batch": int(batch),
                        "ai_flop_per_byte": 2 * ai_mac_per_byte,
                        "achieved_flops": 2 * r["macs_per_forward"] / r["latency.median_s"]})
    return pd.DataFrame(out, columns=["setup", "network", "batch", "ai_flop_per_byte", "achieved_flops"])


def _memory_quantity(kind: str) -> str:
    return "GPU memory used (nvidia-smi)" if kind == "gpu" else \
        "CPU process peak RSS (not the paper's GPU footprint)" if kind == "cpu" else "paper's MB"


def _analyzer_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The analyzer's tables hold no measurement: nothing in them is synthetic."""
    return frame.assign(synthetic=False)


def _by_device(ctx: Context, frame: pd.DataFrame, keep: Sequence[str]) -> tuple[Part, ...]:
    """A wide table shown one device at a time: the ``keep`` columns, then the device's setup column groups."""
    parts = []
    for device in ctx.devices:
        columns = [c for s in ctx.setups(device) for c in tables.setup_columns(frame, s)]
        if not columns:
            continue
        part = frame[[*keep, *columns]].copy()
        values = part[columns].apply(lambda col: col.map(lambda v: pd.notna(v) and v != "–"))
        # a row of this device's part is synthetic where the table's row is and the device gave it a figure
        part["synthetic"] = frame["synthetic"].astype(bool) & values.any(axis=1) & device.synthetic
        parts.append(Part(device.label, part))
    return tuple(parts)


# ---- the sections, in the order a reader wants them --------------------------------------------------


def summary_section(ctx: Context) -> Section:
    section = Section("Summary", "summary")
    if ctx.devices:
        section.items.append(Block("measured", "", ("What was measured, one sentence per device:",),
                                   tuple((sentence, ()) for sentence in device_sentences(ctx))))
    else:
        section.items.append(Missing("Measurements", "no results were given: only the analyzer's claims below"))
    section.items.append(verdict_table(ctx))
    return section


def device_sentences(ctx: Context) -> list[str]:
    """One sentence per device: what ran there, how much of it ended ok, and which quantities were measured."""
    out = []
    frame = ctx.frame
    for device in ctx.devices:
        rows = frame[frame["device_id"] == device.id] if not frame.empty else frame
        parts = []
        for setup in ctx.setups(device) if not rows.empty else []:
            group = rows[rows["setup"] == setup]
            if group.empty:  # a setup with kernel profiles only
                continue
            batches = ", ".join(str(b) for b in sorted(group["batch"].unique()))
            counts = group["status"].value_counts().sort_index()
            statuses = "all ok" if list(counts.index) == ["ok"] else \
                ", ".join(f"{n} {s}" for s, n in counts.items())
            parts.append(f"{setup.split(' ', 1)[1]} ({group['network'].nunique()} networks at B={batches}, "
                         f"{statuses})")
        quantities = [q for q, column in (("latency", "latency.median_s"),
                                          ("peak memory" if device.kind == "gpu" else "peak RSS",
                                           measured.FOOTPRINT[device.kind]),
                                          ("energy", "energy.gmacs_per_joule"))
                      if column in rows and rows[column].notna().any()]
        profiles = ctx.data.shares
        profiled = 0 if profiles.empty else profiles.loc[profiles["device_id"] == device.id, "profile"].nunique()
        dates = tables.dates(rows) if not rows.empty else ""
        text = (f"{device.label}{', ' + dates if dates else ''}: " + ("; ".join(parts) or "no timing record") +
                f". Measured: {', '.join(quantities) or 'no figure'}" +
                (f"; {profiled} kernel profile(s)" if profiled else "") + ".")
        out.append(text)
    return out


def verdict_summary(checklist: list[claims.Claim]) -> str:
    """Verdict counts per scope: "analyzer: reproduced 2, ...; GPU rows (the paper's claims): ..."."""
    parts = []
    for scope, label in ((claims.ANALYZER, "analyzer"), (claims.GPU, "GPU rows (the paper's claims)"),
                         (claims.CPU, "CPU analogue rows")):
        counts = {v: sum(c.verdict == v and c.scope == scope for c in checklist) for v in claims.VERDICTS}
        if any(counts.values()):
            parts.append(f"{label}: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n))
    return "; ".join(parts)


def numbered_claims(checklist: list[claims.Claim]) -> list[tuple[int, str, list[claims.Claim]]]:
    """The claims numbered as the summary lists them, each with its rows (GPU then CPU analogue, or the
    analyzer's): the measured claims first, in checklist order, then those the analyzer decides alone."""
    order: dict[str, list[claims.Claim]] = {}
    for c in checklist:
        order.setdefault(c.claim, []).append(c)
    ranked = sorted(order.items(), key=lambda kv: kv[1][0].scope == claims.ANALYZER)
    return [(i, text, rows) for i, (text, rows) in enumerate(ranked, 1)]


def _scope_cells(ctx: Context, row: claims.Claim | None) -> dict[str, object]:
    if row is None:
        return {"ours": "", "verdict": "", "n": 0, "decided by": "", "synthetic": False}
    synthetic = bool(set(row.records) & ctx.synthetic_keys)
    decided = "analyzer" if row.scope == claims.ANALYZER else deciders([s for s, _ in row.deciding],
                                                                      [s for s, _ in row.outcomes])
    return {"ours": row.ours, "verdict": row.verdict, "n": row.n, "decided by": decided, "synthetic": synthetic}


def deciders(deciding: list[str], setups: list[str]) -> str:
    """Which setups decided a verdict, short: named where one or two, else counted per device."""
    if len(deciding) <= 2:
        return ", ".join(deciding)
    devices = measured.setup_order({s.split(" ")[0] + " " for s in deciding})
    return ", ".join(f"{d.strip()} ({sum(s.startswith(d) for s in deciding)} of "
                     f"{sum(s.startswith(d) for s in setups)} setups)" for d in devices)


def verdict_table(ctx: Context) -> Table:
    """One short row per claim: the paper's figure, ours with its interval, the verdict, n, which setup decided
    it, the CPU analogue's verdict where CPU records exist, and a link to the evidence (pyperf compare_to's
    "faster/slower, significant or not", one line each)."""
    rows, shown = [], []
    for number, text, scoped in numbered_claims(ctx.checklist):
        main = next((c for c in scoped if c.scope in (claims.ANALYZER, claims.GPU)), None)
        cpu = next((c for c in scoped if c.scope == claims.CPU), None)
        m, a = _scope_cells(ctx, main), _scope_cells(ctx, cpu)
        paper = main.paper if main is not None else (cpu.paper if cpu is not None else "")
        rows.append({"number": number, "claim": text, "scope": main.scope if main else "", "paper": paper,
                     "ours": m["ours"], "verdict": m["verdict"], "n": m["n"], "decided by": m["decided by"],
                     "cpu analogue verdict": a["verdict"], "cpu analogue ours": a["ours"], "cpu analogue n": a["n"],
                     "cpu analogue decided by": a["decided by"], "synthetic": m["synthetic"] or a["synthetic"]})
        verdict = m["verdict"] + (" (SYNTHETIC data)" if m["synthetic"] else "")
        row = {"#": number, "claim": text + ("" if main is None or main.scope == claims.GPU else " (analyzer)"),
               "paper": paper, "ours (95% interval)": m["ours"], "verdict": verdict, "n": m["n"],
               "decided by": m["decided by"] or "–"}
        if cpu is not None or any(c.scope == claims.CPU for c in ctx.checklist):
            row["CPU analogue (not the paper's claim)"] = "–" if cpu is None else \
                f"{cpu.verdict}" + (" (SYNTHETIC data)" if a["synthetic"] else "") + \
                (f": {a['ours']} ({a['decided by']}; n = {a['n']})" if a["decided by"] else "")
        row["evidence"] = Link("evidence", f"claim-{number}")
        shown.append(row)
    gpu = any(d.kind == "gpu" for d in ctx.devices)
    note = ("GPU records decide the paper's claims (its footprint is GPU memory, its energy a P100's, its kernels "
               "cuBLAS kernels); " + ("" if gpu else "no GPU was measured, so none of them is decided here; ") +
               "CPU records decide only the separate CPU analogue, which is not the paper's claim. 'decided by' names "
               "the setup(s) whose own verdict is the row's: any setup against wins over any in favour (rules under "
               "Details). Intervals are 95%: bootstrap for correlations, the median's order-statistic interval for "
               "latency, the memory noise model for memory.")
    return Table("verdicts", "Verdicts, one row per claim", pd.DataFrame(rows),
                 f"Verdicts: {verdict_summary(ctx.checklist)}.",
                 (Part("", pd.DataFrame(shown).assign(synthetic=[r["synthetic"] for r in rows])),), note=note)


def tables_section(ctx: Context) -> Section:
    section = Section("Tables III and IV: the paper beside ours", "tables", [
        "Paper: BVLC Caffe on a Tesla P100. Ours: one column group per device, one column pair per setup (a "
        "device with one engine and mode): our figure, and ours ÷ the paper's (above 1: larger than the paper's)."])
    frame = ctx.frame
    for metric in tables.METRICS:
        table = tables.beside_paper(metric, frame, ctx.names) if not frame.empty else pd.DataFrame()
        if table.empty:
            section.items.append(Missing(f"Table III {metric.title.lower()}", "no record has this figure"))
            continue
        keep = ["network", f"paper (P100) {metric.paper_unit}"]
        section.items.append(Table(f"table3_{metric.key}", f"Table III: {metric.title} ({metric.unit})", table,
                                   metric.note, _by_device(ctx, table, keep)))
    if not frame.empty and not (batches := tables.throughput_batches(frame, ctx.names)).empty:
        section.items.append(Table("table3_throughput_batch", "Table III: the batch that gave the best throughput",
                                   batches, "", _by_device(ctx, batches, ["network"])))
    wide = correlations.beside_paper(ctx.table4, ctx.setups())
    section.items.append(Table(
        "table4_correlations", "Table IV: correlations, the paper beside ours", ctx.table4,
        "Pearson r (the paper's PPMCC) over networks with its 95% percentile bootstrap interval "
        f"({BOOTSTRAP_RESAMPLES} resamples of the networks) and n; 'from the paper's tables' recomputes each "
        "coefficient from the paper's own Tables II and III. A CPU setup's footprint is the process's peak RSS, not "
        "GPU memory. The CSV adds Spearman and its interval.",
        (Part("The paper, and what its own tables give",
              wide[["pair", "paper PPMCC", "from the paper's tables"]].assign(synthetic=False)),
         *_by_device(ctx, wide, ["pair", "paper PPMCC"]))))
    return section


EFFICIENCY = "energy efficiency (10⁹ MACs/J; log scale)"


def figures_section(ctx: Context) -> Section:
    section = Section("Figures", "figures", [
        "Networks are numbered in the paper's order (1 AlexNet ... 12 Inception-V2), the same number in every "
        "figure, with the key beside each plot. The paper's values are hollow or hatched grey, ours filled."])
    paper_xy = correlations.paper_xy(ctx.names)
    cpu = [s for s in ctx.setups() if s.split(" ")[0] in {d.id for d in ctx.devices if d.kind == "cpu"}]
    section.items.append(ctx.figure(figures.ratio_scatter(
        ctx.series, paper_xy, [("acts_per_param", "activations / params (ratio; log scale)",
                                "footprint_per_model_size", "memory footprint / model size (ratio; log scale)")],
        ctx.style, ctx.figdir, "fig3_footprint_vs_acts_per_param",
        "Fig. 3: memory footprint / model size vs activations / params",
        "Model size = params x 4 bytes. One panel per setup; hollow circles: the paper's P100 values, filled "
        "squares: ours, a line joins the two of one network. On a CPU the footprint is the process's peak RSS, not "
        "GPU memory.", cpu), "Fig. 3", "no setup measured a memory footprint at B=1"))
    section.items.append(ctx.figure(figures.ratio_scatter(
        ctx.series, paper_xy, [("macs_per_param", "MACs / params (ratio; log scale)", "energy_efficiency", EFFICIENCY),
                               ("macs_per_act", "MACs / activations (ratio; log scale)", "energy_efficiency",
                                EFFICIENCY)],
        ctx.style, ctx.figdir, "fig4_efficiency_vs_reuse",
        "Fig. 4: energy efficiency vs MACs / param and MACs / activation",
        f"Energy efficiency at B={measured.ENERGY_BATCH}, one row of panels per setup; hollow circles: the paper's "
        "P100 values, filled squares: ours.", cpu),
        "Fig. 4", "no setup measured energy (GPU via NVML, or CPU via RAPL)"))
    paper = _paper_by_network(ctx.names)
    for device in ctx.measured_devices:
        section.items.append(ctx.figure(figures.latency_throughput(ctx.frame, device, ctx.style, paper, ctx.figdir),
                                        f"Latency and throughput ({device.id})", "no timed record"))
    for device in ctx.measured_devices:
        section.items.append(ctx.figure(figures.memory_vs_batch(ctx.frame, device, ctx.style, ctx.figdir),
                                        f"Memory vs batch ({device.id})",
                                        "no setup of this device has a memory figure at two batch sizes or more"))
    for device in ctx.measured_devices:
        spec = match_spec(device.kind, device.name, ctx.spec_overrides, device.id)
        if spec is None:
            section.items.append(Missing(f"Roofline ({device.id})", f"no device spec matches '{device.name}'; give "
                                         f"one with --device-spec {device.id}=NAME (harness/data/device_specs.yaml)"))
            continue
        section.items.append(ctx.figure(figures.roofline(roofline_points(ctx.frame, device.id), spec, device,
                                                         ctx.style, ctx.figdir),
                                        f"Roofline ({device.id})", "no timed record"))
    if not ctx.measured_devices:
        section.items.append(Missing("Latency, throughput, memory and roofline figures", "no result records"))
    return section


def _paper_by_network(names: dict[str, str]) -> pd.DataFrame:
    paper = tables.paper_table3()
    rows = {n: {"inference_time_ms": float(paper[p]["inference_time_ms"]),
                "throughput_fps": float(paper[p]["throughput_fps"])} for n, p in names.items() if p in paper}
    return pd.DataFrame.from_dict(rows, orient="index")


def kernels_section(ctx: Context) -> Section:
    """Table III's kernel columns, the kernel-family figures, Table V and the metric mapping, or why not."""
    section = Section("Kernels and Table V", "kernels")
    shares = ctx.data.shares
    mapping = Table("table5_mapping", "Table V metrics: nvprof (the paper) to Nsight Compute", tables.metric_mapping())
    gpu_shares = tables.gpu_profiles(shares)
    if gpu_shares.empty:
        why = tables.why_no_kernels(shares)
        section.items += [Missing("Table III kernel columns (gemv2T, gemv2N, gemmk1)", why),
                          Missing("Kernel families", why), Missing("Table V", why), mapping]
        return section
    kernel_table = tables.kernel_columns(shares, ctx.names)
    section.items.append(Table(
        "table3_kernels", "Table III: kernel shares, gemv2T, gemv2N, gemmk1 (% of GPU kernel time)", kernel_table,
        "From the GPU kernel profiles in the results (harness profile); 'not measured' where a network was not "
        "profiled on a setup. CPU profiles have no GPU kernels and are not shown.",
        _by_device(ctx, kernel_table, ["network", *[c for c in kernel_table.columns if c.startswith("paper ")]])))
    paper = tables.paper_table3()
    for setup in measured.setup_order(gpu_shares["setup"]):
        section.items.append(ctx.figure(figures.kernel_families(gpu_shares, setup, ctx.style, paper, ctx.figdir),
                                        f"Kernel families ({setup})", "no data"))
    t5 = tables.table_v(ctx.data.profiles, shares, ctx.names)
    if any(c not in ("attribute", "synthetic") and not c.startswith("paper ") for c in t5.columns):
        section.items.append(Table("table5_kernels", "Table V: kernel properties per family", t5,
                                   "Per family, invocation-weighted over the profiled kernels "
                                   "(harness.kernels.metrics); stall shares sum to 100%. Metrics translated with "
                                   "the mapping below."))
    else:
        with_metrics = any(p.table_v for p in ctx.data.profiles)
        section.items.append(Missing("Table V", "the profiles with metrics hold no gemv2T, gemv2N or gemmk1 kernel"
                                     if with_metrics else "no GPU profile has kernel metrics (ncu, or nvprof "
                                                          "--metrics)"))
    section.items.append(mapping)
    return section


def analyzer_section(ctx: Context) -> Section:
    t2 = _analyzer_only(ctx.table2)
    head = ["network", "input"]
    counts = [c for label in list(TABLE2_COLUMNS.values())[:3] for c in t2.columns if c.startswith(label + " ")]
    ratios = [c for label in list(TABLE2_COLUMNS.values())[3:] for c in t2.columns if c.startswith(label + " ")]
    return Section("Table II and Fig. 2 (analyzer, no measurement needed)", "analyzer", [
        "Computed by harness.analysis.analyzer from the zoo prototxts with Netscope's counting rules (the paper's "
        f"convention), batch 1. 'ours' is computed the paper's way ({TABLE2_RULE}) and printed at the paper's "
        "precision; 'exact' is the same column from the exact counts."], [
        Table("table2", "Table II: ours vs paper, cell by cell", t2, "",
              (Part("Counts", t2[[*head, *counts, "synthetic"]]),
               Part("Ratios", t2[[*head, *ratios, "cells equal", "synthetic"]]))),
        Table("fig2_factorisation", "Fig. 2: one 5x5 convolution vs two 3x3 convolutions",
              _analyzer_only(ctx.factorisation.frame()),
              f"Analyzer on the zoo's Fig. 2 prototxts (paper convention). {design.FIG2_FITTED}.")])


def details_section(ctx: Context) -> Section:
    section = Section("Details", "details", [
        "Where and with what each measurement was taken, what did not complete or was left out, the rules behind "
        "the verdicts, each verdict's evidence and the records it used."])
    frame = ctx.frame
    if not frame.empty:
        section.items.append(Table("devices", "Devices and engines", tables.devices_table(frame),
                                   "One row per setup: a device with one engine and mode. Memory on a CPU is the "
                                   "process's peak resident set, which is not the paper's GPU memory footprint."))
        full = tables.setups(frame)
        parts = tuple(Part(d.label, tables.transposed(full[full["setup"].isin(ctx.setups(d))]))
                      for d in ctx.devices)
        section.items.append(Table("setups", "Everything recorded about each setup", full,
                                   "The records' metadata; a value that differs between a setup's records (a worker "
                                   "pid, a model file) describes a record and stays in the results.", parts))
        status = tables.status_table(frame, ctx.names)
        if not status.empty:
            section.items.append(Table("not_ok", "Configurations that did not complete", status,
                                       "Every record whose status is not 'ok', with its reason; an 'oom' with "
                                       "'inferred from' was not run (a smaller batch ran out of memory)."))
    if not ctx.data.contended.empty:
        section.items.append(Table("contended", "Records left out: disturbed measurement window",
                                   tables.contended_table(ctx.data.contended, ctx.names),
                                   "Left out of every table, figure and verdict; listed with what disturbed them."))
    section.items.append(Table("verdict_rules", "Verdict rules",
                               pd.DataFrame(claims.rules(), columns=["rule", "definition"]).assign(synthetic=False),
                               "Verdicts: " + "; ".join(claims.VERDICTS) + "."))
    synthetic = ctx.synthetic_keys
    full_claims = claims.frame(ctx.checklist)
    full_claims["synthetic"] = [bool(set(c.records) & synthetic) for c in ctx.checklist]
    section.items.append(Table("claims", "Evidence per claim", full_claims,
                               "Each claim's rows (the paper's claim on GPU records, the CPU analogue, or the "
                               "analyzer) with every setup's figures and verdict.", shown=False))
    section.items += evidence_blocks(ctx)
    used = claims.records_frame(ctx.checklist)
    used["synthetic"] = used["record"].isin(synthetic)
    numbers = {text: number for number, text, _ in numbered_claims(ctx.checklist)}
    shown = used.assign(claim=used["claim"].map(numbers)).rename(columns={"claim": "#"})
    section.items.append(Table("claim_records", "Records each verdict used", used,
                               "The key of every record (or kernel profile) each verdict used; # is the claim's "
                               "number in the summary.", (Part("", shown),)))
    return section


def evidence_blocks(ctx: Context) -> list[Block]:
    """One block per claim, reached from the summary's 'evidence' links: the paper's figure, the rule, and each
    scope's verdict with every setup's figures, one line each."""
    synthetic = ctx.synthetic_keys
    blocks = []
    for number, text, scoped in numbered_claims(ctx.checklist):
        bullets = []
        for c in scoped:
            mark = " (SYNTHETIC data)" if set(c.records) & synthetic else ""
            head = f"{c.scope}: {c.verdict}{mark}, n = {c.n}" + (f"; left out: {c.left_out}" if c.left_out else "")
            lines = tuple(f"{s}: {o.evidence} -> {o.verdict}" for s, o in c.outcomes) + c.notes
            bullets.append((head, lines or (c.evidence,)))
        first = scoped[0]
        blocks.append(Block(f"claim-{number}", f"{number}. {text}",
                            (f"Paper: {first.paper}", f"Rule: {first.rule}"), tuple(bullets)))
    return blocks


def where_time_goes_section(ctx: Context) -> Section:
    """Layer profiles (``harness layers --out``): :mod:`harness.report.where_time_goes`."""
    return where_time_goes.section(ctx.data, ctx.devices, ctx.style, ctx.figdir, ctx.figure,
                                   lambda d: match_spec(d.kind, d.name, ctx.spec_overrides, d.id))


#: the report's sections in reading order; a new section is a function of the Context put in its place here
SECTIONS: tuple[Callable[[Context], Section], ...] = (
    summary_section, tables_section, figures_section, kernels_section, where_time_goes_section, analyzer_section,
    details_section)


def build(dirs: Sequence[Path], out: Path, spec_overrides: dict[str, str] | None = None) -> Report:
    """Read the results, compute every table, figure and verdict, and write report.md, report.html,
    tables/*.csv and figures/*.{png,svg} under ``out``."""
    from harness import zoo

    dirs = [Path(d) for d in dirs]
    data = measured.load(dirs) if dirs else measured.Measured(pd.DataFrame(), pd.DataFrame(), [], pd.DataFrame())
    frame, shares = data.frame, data.shares
    names = paper_names(sorted(set(frame["network"]) if not frame.empty else set()))
    t2, fact = design.table2(), design.factorisation()
    totals = {n: design.zoo_analysis(n).totals.as_dict() for n in zoo.zoo_names()}
    design_xy = correlations.design_columns(totals)
    t4 = correlations.table4(frame, design_xy, names, _memory_quantity)
    series = {s: correlations.measured_xy(frame, design_xy, s) for s in measured.setup_order(frame["setup"])} \
        if not frame.empty else {}
    checklist = claims.checklist(claims.Inputs(t2, fact, frame, data.contended, t4, series, shares, names))
    checklist += where_time_goes.claim_one_by_one(data)
    style = figures.Style(names, frozenset(measured.synthetic_setups(frame, shares)))
    ctx = Context(data, names, measured.devices(frame, shares, data.layers), checklist, t2, fact, t4, series, style,
                  out / "figures", spec_overrides or {})
    sections = [make(ctx) for make in SECTIONS]

    intro = [f"Generated by harness {__version__} from {len(frame)} result record(s) and {len(data.profiles)} kernel "
             f"profile(s) in {', '.join(d.name for d in dirs) or 'no results directory'}."]
    if not data.contended.empty:
        intro.append(f"Left out: {len(data.contended)} record(s) whose measurement window was disturbed "
                     "(listed under 'Records left out').")
    short = measured.short_energy_windows(frame)
    if short:
        intro.append(f"Energy left out: {short} record(s) whose window was too short for its energy to be evidence "
                     "(their latency and memory stay; each record's energy.window_too_short says why).")
    intro += [w.removeprefix("warning: ") for w in data.warnings]
    synthetic = bool(style.synthetic_setups) or any(p.synthetic for p in data.profiles)
    banner = SYNTHETIC_BANNER if synthetic else ""
    out.mkdir(parents=True, exist_ok=True)
    csvs = write_tables(sections, out)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown(TITLE, intro, sections, banner), encoding="utf-8")
    html_path.write_text(html_document(TITLE, intro, sections, banner), encoding="utf-8")
    return Report(out, md_path, html_path, csvs, ctx.made, checklist, data.warnings)


def parse_spec_overrides(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        device, sep, name = item.partition("=")
        if not sep or not re.fullmatch(r"D\d+", device):
            raise HarnessError(f"--device-spec expects DEVICE_ID=SPEC_NAME such as D1=h100-sxm, got '{item}'")
        device_spec(name)  # raises a HarnessError naming the known specs
        out[device] = name
    return out
