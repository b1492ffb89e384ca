"""Assemble the replication report from results directories and the analyzer, and write it out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import __version__
from harness.analysis.paper import TABLE2_RULE
from harness.analysis.roofline import DeviceSpec, device_spec
from harness.errors import HarnessError
from harness.report import claims, correlations, design, figures, measured, tables
from harness.report.render import Missing, Section, Table, html_document, markdown, write_tables
from harness.report.stats import BOOTSTRAP_RESAMPLES

TITLE = "Replication report: The Ramifications of Making Deep Neural Networks Compact"

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


def roofline_points(frame: pd.DataFrame, device_id: str, names: dict[str, str]) -> pd.DataFrame:
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
            out.append({"setup": r["setup"], "network": names[network], "batch": int(batch),
                        "ai_flop_per_byte": 2 * ai_mac_per_byte,
                        "achieved_flops": 2 * r["macs_per_forward"] / r["latency.median_s"]})
    return pd.DataFrame(out, columns=["setup", "network", "batch", "ai_flop_per_byte", "achieved_flops"])


def _memory_quantity(kind: str) -> str:
    return "GPU memory used (nvidia-smi)" if kind == "gpu" else \
        "CPU process peak RSS (not the paper's GPU footprint)" if kind == "cpu" else "paper's MB"


def build(dirs: Sequence[Path], out: Path, spec_overrides: dict[str, str] | None = None) -> Report:
    """Read the results, compute every table, figure and verdict, and write report.md, report.html,
    tables/*.csv and figures/*.{png,svg} under ``out``."""
    from harness import zoo

    spec_overrides = spec_overrides or {}
    data = measured.load(dirs) if dirs else measured.Measured(pd.DataFrame(), pd.DataFrame(), [], pd.DataFrame())
    frame, shares = data.frame, data.shares
    measured_networks = sorted(set(frame["network"]) if not frame.empty else set())
    names = paper_names(measured_networks)
    figdir = out / "figures"
    made: list[figures.FigureFile] = []

    def figure(item: figures.FigureFile | None, what: str, why: str) -> figures.FigureFile | Missing:
        if item is None:
            return Missing(what, why)
        made.append(item)
        return item

    t2 = design.table2()
    fact = design.factorisation()
    totals = {n: design.zoo_analysis(n).totals.as_dict() for n in zoo.zoo_names()}
    design_xy = correlations.design_columns(totals)
    t4 = correlations.table4(frame, design_xy, names, _memory_quantity)
    series = {} if frame.empty else {
        s: correlations.measured_xy(frame, design_xy, s) for s in sorted(frame["setup"].unique())}
    checklist = claims.checklist(claims.Inputs(t2, fact, frame, data.contended, t4, series, shares, names))

    sections: list[Section] = []
    # -- where and with what
    setup = Section("Measurements: devices and software")
    if frame.empty and data.contended.empty:
        setup.items.append(Missing("Measurements", "no results were given: only the analyzer's tables below"))
    if not frame.empty:
        setup.text.append("Each device is one column group (D1, D2, ...); a setup is a device with one backend "
                          "and mode. Memory on a CPU is the process's peak resident set, which is not the "
                          "paper's GPU memory footprint.")
        setup.items.append(Table("setups", "Setups", tables.setups(frame)))
        status = tables.status_table(frame, names)
        if not status.empty:
            setup.items.append(Table("not_ok", "Configurations that did not complete", status,
                                     "Every record whose status is not 'ok', with its reason; an 'oom' with "
                                     "'inferred from' was not run (a smaller batch ran out of memory)."))
    if not data.contended.empty:
        setup.items.append(Table("contended", "Records left out: disturbed measurement window",
                                 tables.contended_table(data.contended, names),
                                 "Left out of every table, figure and verdict; listed with what disturbed them."))
    sections.append(setup)
    # -- verdicts
    sections.append(Section("Claims checklist", [
        "Each claim of the paper with a verdict by the rule shown, the n and records it used, the paper's numbers "
        "and ours. GPU rows are the paper's claims; 'CPU analogue' rows apply the same rule to CPU records and do "
        "not stand for the paper's claim."], [
        Table("claims", "Claims", claims.frame(checklist),
              "Verdicts: " + "; ".join(claims.VERDICTS) + ". Records used: tables/claim_records.csv."),
        Table("verdict_rules", "Verdict rules", pd.DataFrame(claims.rules(), columns=["rule", "definition"])),
        Table("claim_records", "Records each verdict used", claims.records_frame(checklist))]))
    # -- analyzer
    fig2 = [Table("fig2_factorisation", "Fig. 2: one 5x5 convolution vs two 3x3 convolutions", fact.frame(),
                  f"Analyzer on the zoo's Fig. 2 prototxts (paper convention). {design.FIG2_FITTED}.")]
    sections.append(Section("Table II and Fig. 2 (analyzer, no measurement needed)", [
        "Computed by harness.analysis.analyzer from the zoo prototxts with Netscope's counting rules (the paper's "
        f"convention), batch 1. 'ours' is computed the paper's way ({TABLE2_RULE}) and printed at the paper's "
        "precision; 'exact' is the same column from the exact counts."], [
        Table("table2", "Table II: ours vs paper, cell by cell", t2), *fig2]))
    # -- Table III
    t3 = Section("Table III beside the paper", [
        "Paper: Caffe on a Tesla P100. Ours: one column group per setup; ÷ paper = measured / paper."])
    for metric in tables.METRICS:
        table = tables.beside_paper(metric, frame, names) if not frame.empty else pd.DataFrame()
        if table.empty:
            t3.items.append(Missing(f"Table III {metric.title.lower()}", "no record has this figure"))
        else:
            t3.items.append(Table(f"table3_{metric.key}", f"{metric.title} ({metric.unit})", table, metric.note))
    if not frame.empty and not (batches := tables.throughput_batches(frame, names)).empty:
        t3.items.append(Table("table3_throughput_batch", "Batch giving the best throughput", batches))
    t3.items += _kernel_items(data, names)
    sections.append(t3)
    # -- correlations
    paper_xy = correlations.paper_xy(names)
    corr = Section("Table IV and the correlations of Figs. 3 and 4", [
        "Pearson (the paper's PPMCC) and Spearman over networks, with n and a 95% percentile bootstrap CI "
        f"(harness.report.stats, {BOOTSTRAP_RESAMPLES} resamples of the networks). 'paper tables' recomputes "
        "each coefficient from the paper's own Tables II and III."])
    corr.items.append(Table("table4_correlations", "Table IV recomputed", t4))
    corr.items.append(figure(figures.ratio_scatter(
        series, paper_xy, [("acts_per_param", "activations / params", "footprint_per_model_size",
                            "memory footprint / model size")],
        names, figdir, "fig3_footprint_vs_acts_per_param", "Fig. 3: memory-footprint/model-size vs activations/params",
        "Model size = params x 4 bytes. Hollow: the paper's P100 values; filled: ours (CPU points use the process's "
        "peak RSS, not GPU memory)."), "Fig. 3", "no setup measured a memory footprint at B=1"))
    corr.items.append(figure(figures.ratio_scatter(
        series, paper_xy, [("macs_per_param", "MACs / params", "energy_efficiency", "10^9 MACs / J"),
                           ("macs_per_act", "MACs / activations", "energy_efficiency", "10^9 MACs / J")],
        names, figdir, "fig4_efficiency_vs_reuse", "Fig. 4: energy efficiency vs MACs/param and MACs/activation",
        f"Energy efficiency at B={measured.ENERGY_BATCH}. Hollow: the paper's P100 values; filled: ours."),
        "Fig. 4", "no setup measured energy (GPU via NVML, or CPU via RAPL)"))
    sections.append(corr)
    # -- per-setup figures
    setups = sorted(frame["setup"].unique()) if not frame.empty else []
    device_ids = sorted(frame["device_id"].unique()) if not frame.empty else []
    mem = Section("Memory footprint vs batch size")
    mem.items += [figure(figures.memory_vs_batch(frame, s, names, figdir), f"Memory vs batch ({s})",
                         "fewer than two batch sizes or no memory figure") for s in setups] or \
        [Missing("Memory vs batch", "no results")]
    sections.append(mem)
    lat = Section("Latency and throughput per backend and mode")
    lat.items += [figure(figures.latency_throughput(frame, d, names, figdir), f"Latency/throughput ({d})",
                         "no timed record") for d in device_ids] or [Missing("Latency and throughput", "no results")]
    sections.append(lat)
    kern = Section("Kernel families per network")
    gpu_shares = tables.gpu_profiles(shares)
    kern.items += [figure(figures.kernel_families(gpu_shares, s, names, figdir), f"Kernel families ({s})", "no data")
                   for s in sorted(gpu_shares["setup"].unique())] if not gpu_shares.empty else \
        [Missing("Kernel families", tables.why_no_kernels(shares))]
    sections.append(kern)
    roof = Section("Roofline per device")
    for device in measured.devices(frame) if not frame.empty else []:
        spec = match_spec(device.kind, device.name, spec_overrides, device.id)
        if spec is None:
            roof.items.append(Missing(f"Roofline ({device.id})", f"no device spec matches '{device.name}'; give "
                                      f"one with --device-spec {device.id}=NAME (harness/data/device_specs.yaml)"))
            continue
        roof.items.append(figure(figures.roofline(roofline_points(frame, device.id, names), spec, device.label,
                                                  device.id, figdir), f"Roofline ({device.id})", "no timed record"))
    if not roof.items:
        roof.items.append(Missing("Roofline", "no results"))
    sections.append(roof)

    intro = [f"Generated by harness {__version__} from {len(frame)} result record(s) and {len(data.profiles)} kernel "
             f"profile(s) in {', '.join(Path(d).name for d in dirs) or 'no results directory'}.",
             f"Verdicts: {verdict_summary(checklist)}."]
    if not data.contended.empty:
        intro.append(f"Left out: {len(data.contended)} record(s) whose measurement window was disturbed "
                     "(listed under 'Records left out').")
    intro += [w.removeprefix("warning: ") for w in data.warnings]
    if _synthetic(frame, data.profiles):
        intro.insert(0, "SYNTHETIC DATA: some records or profiles here are made up for tests (marked 'synthetic'); "
                        "no figure from them is a measurement.")
    out.mkdir(parents=True, exist_ok=True)
    csvs = write_tables(sections, out)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown(TITLE, intro, sections), encoding="utf-8")
    html_path.write_text(html_document(TITLE, intro, sections), encoding="utf-8")
    return Report(out, md_path, html_path, csvs, made, checklist, data.warnings)


def verdict_summary(checklist: list[claims.Claim]) -> str:
    """Verdict counts per scope: "analyzer: reproduced 2, ...; GPU rows (the paper's claims): ..."."""
    parts = []
    for scope, label in ((claims.ANALYZER, "analyzer"), (claims.GPU, "GPU rows (the paper's claims)"),
                         (claims.CPU, "CPU analogue rows")):
        counts = {v: sum(c.verdict == v and c.scope == scope for c in checklist) for v in claims.VERDICTS}
        if any(counts.values()):
            parts.append(f"{label}: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n))
    return "; ".join(parts)


def _synthetic(frame: pd.DataFrame, profiles: list) -> bool:
    flagged = "meta.synthetic" in frame and bool(frame["meta.synthetic"].fillna(False).astype(bool).any())
    return flagged or any(p.synthetic for p in profiles)


def _kernel_items(data: measured.Measured, names: dict[str, str]) -> list[Table | Missing]:
    """Table III's kernel columns, Table V and the metric mapping, or why they are not measured."""
    shares = data.shares
    mapping = Table("table5_mapping", "Table V metrics: nvprof (the paper) to Nsight Compute", tables.metric_mapping())
    if tables.gpu_profiles(shares).empty:
        why = tables.why_no_kernels(shares)
        return [Missing("Table III kernel columns (gemv2T, gemv2N, gemmk1)", why), Missing("Table V", why), mapping]
    items: list[Table | Missing] = [Table(
        "table3_kernels", "Kernel shares: gemv2T, gemv2N, gemmk1 (% of GPU kernel time)",
        tables.kernel_columns(shares, names),
        "From the GPU kernel profiles in the results (harness profile); 'not measured' where a network was not "
        "profiled on a setup. CPU profiles have no GPU kernels and are not shown.")]
    t5 = tables.table_v(data.profiles, shares, names)
    if any(c != "attribute" and not c.startswith("paper ") for c in t5.columns):
        items.append(Table("table5_kernels", "Table V: kernel properties per family", t5,
                           "Per family, invocation-weighted over the profiled kernels (harness.kernels.metrics); "
                           "stall shares sum to 100%. Metrics translated with the mapping below."))
    else:
        with_metrics = any(p.table_v for p in data.profiles)
        items.append(Missing("Table V", "the profiles with metrics hold no gemv2T, gemv2N or gemmk1 kernel"
                             if with_metrics else "no GPU profile has kernel metrics (ncu, or nvprof --metrics)"))
    return [*items, mapping]


def parse_spec_overrides(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        device, sep, name = item.partition("=")
        if not sep or not re.fullmatch(r"D\d+", device):
            raise HarnessError(f"--device-spec expects DEVICE_ID=SPEC_NAME such as D1=h100-sxm, got '{item}'")
        device_spec(name)  # raises a HarnessError naming the known specs
        out[device] = name
    return out
