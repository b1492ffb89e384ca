"""What a reviewer reads in `harness report`: the answer first, one row per claim, readable figures, synthetic data
marked at every output, and several machines side by side (issue 21). Built from the labelled synthetic GPU set
beside the committed CPU run, as a reviewer would try it, and from copies of the synthetic set relabelled as
three GPU generations (still synthetic: every one of them says so)."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from harness.report import claims, figures, measured  # noqa: E402
from harness.report.build import build  # noqa: E402
from harness.results.store import ResultsStore, read_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "tests" / "data" / "synthetic-gpu-results"
CPU_RUN = ROOT / "benchmarks" / "results" / "bench-all-cpu-2026-11-29"
LARGER_BATCH = "A larger batch barely helps MobileNet"


@pytest.fixture(scope="module")
def reviewer(tmp_path_factory):
    """The reviewer's command: the synthetic GPU set beside the committed CPU run."""
    return build([SYNTHETIC, CPU_RUN], tmp_path_factory.mktemp("reviewer"))


@pytest.fixture(scope="module")
def synthetic_only(tmp_path_factory):
    return build([SYNTHETIC], tmp_path_factory.mktemp("synthetic"))


def _gpu_copy(tmp: Path, hardware: str, uuid: str, capability: str | None = None,
              mobilenet_b64_scale: float = 1.0) -> Path:
    """The synthetic GPU records as if made on another GPU (still synthetic, and saying so); MobileNet's B=64
    latency optionally scaled, so that one device alone decides the batch claim."""
    out = tmp / hardware.split()[-2]
    store = ResultsStore(out)
    for rec in read_results([SYNTHETIC]).records:
        rec.config = replace(rec.config, hardware=hardware)
        rec.metadata = {**rec.metadata, "gpu_name": hardware,
                        **({"compute_capability": capability} if capability else {})}
        rec.placement = replace(rec.placement, gpu_uuid=uuid)
        if rec.inferred_from:
            rec.inferred_from = rec.inferred_from.replace("SYNTHETIC GPU (not a measurement)", hardware)
        if rec.config.network == "mobilenet_v1" and rec.config.batch == 64 and rec.latency is not None:
            lat = rec.latency
            scaled = {f.name: getattr(lat, f.name) * mobilenet_b64_scale for f in fields(lat)
                      if f.name.endswith("_s") and f.name != "warmup_s"}
            rec.latency = replace(lat, **scaled, throughput_fps=lat.throughput_fps / mobilenet_b64_scale)
            rec.latencies_s = [t * mobilenet_b64_scale for t in rec.latencies_s]
        store.append(rec)
    return out


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    """Three GPUs of three generations from three machines (given newest first) and a CPU."""
    tmp = tmp_path_factory.mktemp("machines")
    dirs = [_gpu_copy(tmp, "SYNTHETIC NVIDIA H100 80GB HBM3 x", "GPU-3", "9.0", mobilenet_b64_scale=0.2),
            _gpu_copy(tmp, "SYNTHETIC NVIDIA A100-SXM4-80GB x", "GPU-2"),
            _gpu_copy(tmp, "SYNTHETIC Tesla P100-SXM2-16GB x", "GPU-1", "6.0"),
            ROOT / "tests" / "data" / "results-cpu-2026-11-24"]
    return build(dirs, tmp / "report")


def _csv(report, name: str) -> pd.DataFrame:
    return pd.read_csv(report.out / "tables" / f"{name}.csv")


# ---- 1. the order a reader wants --------------------------------------------------------------------


def test_summary_first_then_tables_figures_kernels_details(reviewer):
    md = reviewer.markdown.read_text()
    sections = re.findall(r"^## (.+)$", md, flags=re.M)
    assert sections == ["Summary", "Tables III and IV: the paper beside ours", "Figures", "Kernels and Table V",
                        "Where the time goes", "Table II and Fig. 2 (analyzer, no measurement needed)", "Details"]
    # the summary: one sentence per device, then the verdict table
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    sentences = re.findall(r"^- (D\d+: .+)$", summary, flags=re.M)
    assert [s[:3] for s in sentences] == ["D1:", "D2:"]
    assert "SYNTHETIC" in sentences[0] and "AMD EPYC" in sentences[1] and "SYNTHETIC" not in sentences[1]
    assert summary.index("What was measured") < summary.index("### Verdicts, one row per claim")
    # details: the short device table, the full metadata, incomplete, left out, rules, evidence, records used
    details = re.findall(r"^### (.+)$", md.split("## Details", 1)[1], flags=re.M)
    assert details == ["Devices and engines", "Everything recorded about each setup",
                       "Configurations that did not complete", "Records left out: disturbed measurement window",
                       "Verdict rules", "Evidence per claim", "Records each verdict used"]
    # report.html: the same sections in the same order, with a table of contents linking to each
    html = reviewer.html.read_text()
    html_sections = re.findall(r'<h2 id="([^"]+)">([^<]+)</h2>', html)
    assert [t.replace("&#x27;", "'") for _, t in html_sections] == sections
    toc = html.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    assert all(f'href="#{anchor}"' in toc for anchor, _ in html_sections)
    assert "<script" not in html


def test_one_short_row_per_claim_with_a_link_to_its_evidence(reviewer):
    table = _csv(reviewer, "verdicts")
    measured_first = sorted(dict.fromkeys(c.claim for c in reviewer.claims),
                            key=lambda t: any(c.claim == t and c.scope == claims.ANALYZER for c in reviewer.claims))
    # one row per claim, GPU and CPU rows of a claim side by side; the claims measurements decide first
    assert list(table["claim"]) == measured_first and list(table["number"]) == list(range(1, len(table) + 1))
    assert list(table["scope"][-3:]) == [claims.ANALYZER] * 3
    larger = table.set_index("claim").loc[LARGER_BATCH]
    assert larger["verdict"] == claims.REPRODUCED and larger["decided by"] == "D1 caffe"
    assert larger["ours"] == "1.25 [1.23, 1.26]x (B=1 to 64)"  # ours with its interval, not a paragraph
    assert larger["cpu analogue verdict"] == claims.NOT_MEASURED
    md = reviewer.markdown.read_text()
    for number in table["number"]:
        assert f"[evidence](#claim-{number})" in md and f'<a id="claim-{number}"></a>' in md
    html = reviewer.html.read_text()
    assert all(f'<div id="claim-{n}">' in html and f'href="#claim-{n}"' in html for n in table["number"])
    # evidence: one line per setup, not a paragraph of intervals
    number = table.set_index("claim").loc["Memory-footprint/model-size tracks activations/params", "number"]
    evidence = md.split(f'<a id="claim-{number}"></a>', 1)[1].split("<a id=", 1)[0]
    assert len(re.findall(r"^  - D\d+ ", evidence, flags=re.M)) == 6  # D1 caffe, D1 pytorch, four on D2


def test_tables_iii_and_iv_put_the_paper_beside_ours_per_device(reviewer):
    md = reviewer.markdown.read_text()
    part = md.split("### Table III: Inference time (ms)", 1)[1].split("CSV:", 1)[0]
    assert part.index("**D1: SYNTHETIC GPU") < part.index("**D2: AMD EPYC")
    assert "| network | paper (P100) ms | D1 caffe ms | D1 caffe ÷ paper | synthetic |" in part
    t4 = md.split("### Table IV", 1)[1].split("CSV:", 1)[0]
    assert "| pair | paper PPMCC | D2 caffe/caffe r [95% CI] |" in t4
    assert "0.99 [0.94, 1.00], n = 12" in t4


# ---- 3. synthetic data marked at every output -------------------------------------------------------


def test_every_csv_has_a_synthetic_column_true_for_the_synthetic_rows(synthetic_only, reviewer):
    # the bar: a report built from the synthetic GPU set alone
    for path in synthetic_only.tables:
        table = pd.read_csv(path)
        assert "synthetic" in table.columns, path.name
    made_up = {"table3_inference_time_ms", "table3_memory_footprint_mb",
               "table3_energy_efficiency_gmacs_per_j", "table3_throughput_fps", "table3_throughput_batch",
               "table5_kernels", "devices", "setups", "not_ok", "contended", "claim_records"}
    analyzer = {"table2", "fig2_factorisation", "verdict_rules", "table5_mapping"}
    for path in synthetic_only.tables:
        column = pd.read_csv(path)["synthetic"].astype(bool)
        if path.stem in made_up:
            assert column.all(), path.name
        elif path.stem in analyzer:
            assert not column.any(), path.name
    kernels = pd.read_csv(synthetic_only.out / "tables" / "table3_kernels.csv")  # profiled rows only
    profiled = pd.to_numeric(kernels["D1 caffe gemv2T %"], errors="coerce").notna()
    assert list(kernels["synthetic"]) == list(profiled)
    assert kernels["synthetic"].sum() == 2
    shown = synthetic_only.markdown.read_text().split("### Table III: kernel shares", 1)[1].split("CSV:", 1)[0]
    marked = [line.split(" | ")[0][2:] for line in shown.splitlines() if line.endswith("| SYNTHETIC |")]
    assert marked == ["SqueezeNet-V1.0", "1.0-MobileNet-224"]  # as shown, too: the profiled rows only
    verdicts = pd.read_csv(synthetic_only.out / "tables" / "verdicts.csv")
    # every GPU row that used records used synthetic ones (the layer-profile claim has none here)
    assert list(verdicts["synthetic"]) == [row["scope"] == claims.GPU and row["n"] > 0
                                           for _, row in verdicts.iterrows()]
    # beside real CPU records: only the rows that hold a synthetic figure
    for path in reviewer.tables:
        assert "synthetic" in pd.read_csv(path).columns, path.name
    devices = _csv(reviewer, "devices")
    assert list(devices["synthetic"]) == [s.startswith("D1 ") for s in devices["setup"]]
    t4 = _csv(reviewer, "table4_correlations")
    assert list(t4["synthetic"]) == [s.startswith("D1 ") for s in t4["source"]]
    used = _csv(reviewer, "claim_records")
    assert list(used["synthetic"]) == ["SYNTHETIC GPU" in k for k in used["record"]]
    cpu_only = _csv(reviewer, "table3_memory_footprint_mb")
    assert cpu_only["synthetic"].all()  # every network has a synthetic D1 figure in its row


def test_verdict_rows_and_figures_from_synthetic_records_say_so(reviewer):
    md = reviewer.markdown.read_text()
    row = next(line for line in md.splitlines() if re.match(rf"\| \d+ \| {LARGER_BATCH} \|", line))
    assert "reproduced (SYNTHETIC data)" in row
    analyzer_row = next(line for line in md.splitlines() if re.match(r"\| \d+ \| Table II ", line))
    assert "SYNTHETIC" not in analyzer_row
    by_name = {f.name: f for f in reviewer.figures}
    for figure in reviewer.figures:
        svg = figure.svg.read_text()
        made_up = figure.name.endswith("D1") or "D1_" in figure.name or figure.name.startswith("fig")
        assert figure.synthetic == made_up, figure.name
        assert ('id="synthetic-mark' in svg) == made_up, figure.name
        assert ("SYNTHETIC DATA" in figure.figure.get_suptitle()) == made_up
    assert not by_name["latency_throughput_D2"].synthetic and not by_name["memory_vs_batch_D2"].synthetic


def test_a_cpu_only_report_marks_nothing_synthetic(tmp_path):
    report = build([CPU_RUN], tmp_path)
    assert "SYNTHETIC" not in report.markdown.read_text()
    for path in report.tables:
        assert not pd.read_csv(path)["synthetic"].astype(bool).any(), path.name
    assert not any(f.synthetic for f in report.figures)
    assert all(figures.overlapping_labels(f.figure) == [] for f in report.figures)


# ---- 2. figures readable at the size they are shown --------------------------------------------------


def test_no_two_numbers_overlap_in_any_figure(reviewer, machines):
    for report in (reviewer, machines):
        for figure in report.figures:
            placed = [t for ax in figure.figure.axes for t in ax.texts if t.get_gid() == figures.LABEL_GID]
            assert placed or not figure.name.startswith(("fig", "roofline", "memory")), figure.name
            assert figures.overlapping_labels(figure.figure) == [], figure.name


def test_fig3_is_one_panel_per_setup_with_the_paper_hollow_and_a_key(reviewer):
    fig3 = next(f for f in reviewer.figures if f.name.startswith("fig3")).figure
    panels = [ax for ax in fig3.axes if ax.has_data()]
    assert [ax.get_title(loc="left").split(" (")[0] for ax in panels] == [
        "D1 caffe", "D2 caffe/caffe", "D2 onnxruntime/opt-all", "D2 opencv/cpu", "D2 pytorch/eager-fp32"]
    for ax in panels:
        faces = [c.get_facecolors() for c in ax.collections]
        assert any(len(f) == 0 or (f[:, 3] == 0).all() for f in faces)  # the paper's: hollow
        assert any(len(f) and (f[:, 3] == 1).all() for f in faces)  # ours: filled
        numbers = sorted(int(t.get_text()) for t in ax.texts if t.get_gid() == figures.LABEL_GID)
        assert numbers == sorted([*range(1, 13)] * 2)  # every network numbered, ours and the paper's
    key = next(ax for ax in fig3.axes if not ax.axison)
    text = " ".join(t.get_text() for t in key.texts)
    assert " 1  AlexNet" in text and "12  Inception-V2" in text


def test_axes_say_their_unit_and_log_scale(reviewer, machines):
    for report in (reviewer, machines):
        for figure in report.figures:
            for ax in figure.figure.axes:
                if not ax.axison or not ax.has_data():
                    continue
                for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                    ticks = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                    if not ticks or not all(re.fullmatch(r"-?[\d,.]+", t) for t in ticks):
                        continue  # an axis of names (networks, bars), or one sharing another's ticks
                    label = axis.get_label_text()
                    assert re.search(r"\(.+\)|%", label), (figure.name, label)  # its unit
                    assert len(ticks) >= 2, (figure.name, label, ticks)  # plain numbers, at least two
                    assert ("log scale" in label) == (scale == "log"), (figure.name, label)


def test_latency_figure_has_the_papers_p100_bars_on_a_gpu_only(reviewer):
    by_name = {f.name: f.figure for f in reviewer.figures}
    for name, gpu in (("latency_throughput_D1", True), ("latency_throughput_D2", False)):
        axes = [ax for ax in by_name[name].axes if ax.has_data()]
        hatched = [p for ax in axes for p in ax.patches if p.get_hatch() == figures.PAPER_BAR["hatch"]]
        assert bool(hatched) == gpu, name
        legend = " ".join(t.get_text() for ax in axes if ax.get_legend() for t in ax.get_legend().get_texts())
        assert ("paper (Caffe, P100)" in legend) == gpu


# ---- 4. several machines: one column group per device, GPUs by generation ----------------------------


def test_several_machines_gpus_first_by_generation(machines):
    devices = _csv(machines, "devices").drop_duplicates("device")
    assert [d.split(": ", 1)[1] for d in devices["device"]] == [
        "SYNTHETIC Tesla P100-SXM2-16GB x (Pascal)", "SYNTHETIC NVIDIA A100-SXM4-80GB x (Ampere)",
        "SYNTHETIC NVIDIA H100 80GB HBM3 x (Hopper)", "AMD EPYC"]
    table = _csv(machines, "table3_inference_time_ms")
    groups = [c.split(" ")[0] for c in table.columns if re.match(r"D\d ", c)]
    assert groups == sorted(groups) and set(groups) == {"D1", "D2", "D3", "D4"}
    md = machines.markdown.read_text()
    part = md.split("### Table III: Inference time (ms)", 1)[1].split("CSV:", 1)[0]
    titles = re.findall(r"^\*\*(D\d): ", part, flags=re.M)
    assert titles == ["D1", "D2", "D3", "D4"]


def test_the_summary_says_which_device_decided_each_verdict(machines):
    verdicts = _csv(machines, "verdicts").set_index("claim")
    # MobileNet's B=64 made 5x faster on the H100 copy alone: that device decides the batch claim against
    assert verdicts.loc[LARGER_BATCH, "verdict"] == claims.NOT_REPRODUCED
    assert verdicts.loc[LARGER_BATCH, "decided by"] == "D3 caffe"
    assert "(B=1 to 64)" in verdicts.loc[LARGER_BATCH, "ours"]
    # the memory claim: all three GPUs agree, each named
    memory = verdicts.loc["1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1"]
    assert memory["decided by"] == "D1 (1 of 2 setups), D2 (1 of 2 setups), D3 (1 of 2 setups)"
    sentences = re.findall(r"^- (D\d+: .+)$", machines.markdown.read_text(), flags=re.M)
    assert [s.split(":")[0] for s in sentences] == ["D1", "D2", "D3", "D4"]
    assert "Pascal" in sentences[0] and "Hopper" in sentences[2]


def test_generation_from_capability_or_name():
    assert measured.gpu_generation("NVIDIA H100 80GB HBM3") == "Hopper"
    assert measured.gpu_generation("Tesla P100-PCIE-12GB") == "Pascal"
    assert measured.gpu_generation("Tesla V100-SXM2-32GB") == "Volta"
    assert measured.gpu_generation("NVIDIA A100-SXM4-80GB") == "Ampere"
    assert measured.gpu_generation("NVIDIA L4") == "Ada Lovelace"
    assert measured.gpu_generation("Tesla T4") == "Turing"
    assert measured.gpu_generation("some GPU", "8.9") == "Ada Lovelace"
    assert measured.gpu_generation("SYNTHETIC GPU (not a measurement)") is None
