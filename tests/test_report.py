"""`harness report` built from committed real results (tests/data/results-cpu-2026-11-24: the CPU backends on a
2-core CPU, schema-1 records read through the store's upgrade and merge rule)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from harness.cli.main import main  # noqa: E402
from harness.report import claims, measured  # noqa: E402
from harness.report.build import TITLE, build  # noqa: E402
from harness.report.stats import correlate, ranks  # noqa: E402
from harness.results.store import ResultsStore  # noqa: E402

DATA = Path(__file__).parent / "data"
RESULTS = DATA / "results-cpu-2026-11-24"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report_title() -> str:
    return TITLE


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build([RESULTS], tmp_path_factory.mktemp("report"))


def test_writes_markdown_html_and_a_csv_per_table(report):
    md = report.markdown.read_text()
    listed = re.findall(r"CSV: `tables/([^`]+)\.csv`", md)
    assert listed and sorted(listed) == sorted(p.stem for p in report.tables)
    for path in report.tables:
        assert not pd.read_csv(path).empty or path.stem == "not_ok"
    # the answer first, details last: the summary with the verdict table is the first section after the title
    headings = re.findall(r"^(#{1,3}) (.+)$", md, flags=re.M)
    assert headings[0] == ("#", report_title()) and headings[1] == ("##", "Summary")
    assert headings[2] == ("###", "Verdicts, one row per claim")
    order = [title for _, title in headings]
    assert order.index("Table III: Inference time (ms)") < order.index("Figures") < order.index("Details") \
        < order.index("Devices and engines")


def test_table3_is_the_store_beside_the_paper(report):
    table = pd.read_csv(report.out / "tables" / "table3_inference_time_ms.csv")
    records = {(r.config.backend, r.config.network): r for r in ResultsStore(RESULTS).records()
               if r.status == "ok" and r.config.batch == 1}
    setups = [c for c in table.columns if c.endswith(" ms") and not c.startswith("paper")]
    backends = {backend for backend, _ in records}
    assert len(setups) == len(backends)  # one column per setup (device x backend) of the store
    alexnet = table[table["network"] == "AlexNet"].iloc[0]
    assert alexnet["paper (P100) ms"] == 2.1
    for setup in setups:  # "D1 <backend> ms"
        backend = setup.split()[1]
        assert table[setup].notna().sum() == sum(1 for b, _ in records if b == backend)
        assert alexnet[setup] == pytest.approx(records[backend, "alexnet"].latency.median_s * 1e3)
        assert alexnet[setup.replace(" ms", " ÷ paper")] == pytest.approx(alexnet[setup] / 2.1)


def test_cpu_results_decide_no_gpu_claim(report):
    gpu = [c for c in report.claims if c.scope == claims.GPU]
    assert gpu and all(c.verdict == claims.NOT_MEASURED and c.n == 0 for c in gpu)
    by_claim = {(c.claim, c.scope): c for c in report.claims}
    drive = by_claim["Activations, not parameters, drive the memory footprint", claims.GPU]
    assert "no GPU results" in drive.evidence
    # kernel claims have no CPU row at all: a CPU run has no cuBLAS kernels
    kernel = [c for c in report.claims if "gemv" in c.claim or "cuBLAS" in c.claim]
    assert kernel and all(c.scope == claims.GPU for c in kernel)
    # analyzer-only claims are decided without any measurement
    assert by_claim["Except AlexNet, every network has more activations than parameters", claims.ANALYZER].verdict \
        == claims.REPRODUCED


def test_cpu_analogue_rows_use_the_cpu_records_with_their_uncertainty(report):
    """What the real CPU records decide, and why (the uncertainty rules on real data)."""
    cpu = {c.claim: c for c in report.claims if c.scope == claims.CPU}
    # AlexNet's weights dominate every CPU backend's RSS: 1.0-G-SqNxt-23 is decisively smaller on all four
    gsq = cpu["1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1"]
    assert gsq.verdict == claims.NOT_REPRODUCED and gsq.n == 8 and gsq.evidence.count("-> not reproduced") == 4
    # DenseNet-121 is the slowest network on this CPU, well outside MobileNet's interval
    assert cpu["MobileNet has the lowest throughput"].verdict == claims.NOT_REPRODUCED
    # r = 0.87 to 0.97 over 12 networks, but three of the four intervals reach below 0.7: inconclusive
    fig3 = cpu["Memory-footprint/model-size tracks activations/params"]
    assert fig3.verdict == claims.INCONCLUSIVE and fig3.n == 48
    assert "-> reproduced" in fig3.evidence and "-> inconclusive" in fig3.evidence
    # no RAPL on this VM and no batch >= 32: not measured, with the reason
    assert cpu["Energy efficiency tracks MACs/activation"].verdict == claims.NOT_MEASURED
    assert "not measured at B=1 and at a batch >= 32" in cpu["A larger batch barely helps MobileNet"].evidence
    # every verdict names the records it used, and they are records of the store
    keys = {r.key for r in ResultsStore(RESULTS).records()}
    used = claims.records_frame(report.claims)
    assert len(used) == sum(c.n for c in report.claims if c.scope != claims.ANALYZER)
    assert set(used["record"]) <= keys
    table = pd.read_csv(report.out / "tables" / "claim_records.csv")
    assert len(table) == len(used)


def test_correlations_recomputed_from_paper_and_from_measurements(report):
    t4 = pd.read_csv(report.out / "tables" / "table4_correlations.csv")
    paper = t4[t4["source"] == "paper tables (P100)"]
    assert len(paper) == 6 and (paper["n"] == 12).all()
    fig3 = paper[paper["pair"] == "activations/params vs memory footprint/model size"].iloc[0]
    assert fig3["pearson_ci_low"] <= fig3["pearson"] <= fig3["pearson_ci_high"]
    ours = t4[t4["source"] != "paper tables (P100)"]
    memory = ours[ours["pair"] == "# activations vs memory footprint"].iloc[0]
    assert memory["n"] == len({r.config.network for r in ResultsStore(RESULTS).records()
                               if r.config.batch == 1 and r.status == "ok"})
    assert "CPU process peak RSS" in memory["memory measured as"]
    # no energy on this CPU (no RAPL): its efficiency correlations have no points, hence no number
    energy = ours[ours["pair"] == "MACs/activations vs energy efficiency"].iloc[0]
    assert energy["n"] == 0 and np.isnan(energy["pearson"])


def test_figure_without_data_is_not_drawn(report):
    md = report.markdown.read_text()
    assert "Fig. 4: not measured here." in md
    assert not list((report.out / "figures").glob("fig4*"))
    assert "Kernel families: not measured here." in md and "no kernel profile in the results" in md
    assert "Table V: not measured here." in md and "Table V metrics: nvprof (the paper) to Nsight Compute" in md


def test_every_figure_is_a_valid_png_and_svg(report):
    from PIL import Image

    names = {f.name for f in report.figures}
    assert {"fig3_footprint_vs_acts_per_param", "memory_vs_batch_D1", "latency_throughput_D1"} <= names
    for fig in report.figures:
        assert fig.png.read_bytes()[:8] == PNG_MAGIC
        with Image.open(fig.png) as im:
            assert im.size[0] > 300 and im.size[1] > 200
        assert ET.parse(fig.svg).getroot().tag.endswith("svg")


def test_html_is_self_contained(report):
    text = report.html.read_text()
    assert "<link" not in text and "<script" not in text and "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == len(report.figures)
    for src in sources:
        assert src.startswith("data:image/svg+xml;base64,")
        ET.fromstring(base64.b64decode(src.split(",", 1)[1]))
    assert not re.search(r'(href|src)="(https?:|//|file:)', text)


def test_analyzer_only_report(tmp_path):
    result = build([], tmp_path)
    md = result.markdown.read_text()
    assert "Measurements: not measured here." in md and not result.figures
    verdicts = {(c.claim, c.scope): c.verdict for c in result.claims}
    assert verdicts["Except AlexNet, every network has more activations than parameters", claims.ANALYZER] == \
        claims.REPRODUCED
    assert verdicts["MobileNet has the lowest throughput", claims.GPU] == claims.NOT_MEASURED
    assert not any(c.scope == claims.CPU for c in result.claims)


def test_devices_get_one_column_group_each():
    # identity columns only (no measurement): two hosts, and one GPU seen by both a bench run and a profile
    bench = pd.DataFrame({"network": ["alexnet"] * 3, "backend": ["pytorch"] * 3,
                          "device": ["cpu", "cpu", "cuda:0"], "mode": [None, "eager", None],
                          "meta.host": ["a", "b", "b"], "meta.cpu": ["X", "X", "X"],
                          "meta.gpu_name": [None, None, "NVIDIA H100 80GB HBM3"],
                          "meta.gpu_uuid": [None, None, "GPU-1"]})
    kernels = pd.DataFrame({"network": ["alexnet"], "backend": ["pytorch"], "device": ["cuda:0"], "mode": [None],
                            "meta.host": ["b"], "meta.gpu_name": ["NVIDIA H100 80GB HBM3"],
                            "meta.gpu_uuid": ["GPU-1"]})
    bench, kernels = measured.assign_devices(bench, kernels)
    assert list(bench["setup"]) == ["D2 pytorch", "D3 pytorch/eager", "D1 pytorch"]
    assert list(kernels["setup"]) == ["D1 pytorch"]


def test_cli_writes_the_report_and_rejects_a_missing_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 2
    assert "not a results directory" in capsys.readouterr().err
    assert main(["report", "-o", str(tmp_path / "out"), "--device-spec", "D1=no-such-gpu"]) == 2
    assert "unknown device spec" in capsys.readouterr().err


def test_profile_file_that_is_not_a_profile_record_is_one_line(tmp_path, capsys):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "x.json").write_text(json.dumps({"config": {}}))
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.json: not a kernel-profile record" in err


def test_pearson_and_spearman_match_known_values():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    y = np.array([2.0, 1, 4, 3, 7, 8])
    c = correlate(x, y)
    assert c.n == 6
    assert c.pearson == pytest.approx(np.corrcoef(x, y)[0, 1])
    # Spearman by the textbook formula (no ties): 1 - 6 sum d^2 / (n (n^2 - 1)); d^2 sums to 4
    assert c.spearman == pytest.approx(1 - 6 * 4 / (6 * 35))
    assert c.pearson_ci[0] <= c.pearson <= c.pearson_ci[1]
    assert correlate(x, y) == c  # seeded: the same data give the same interval
    assert list(ranks(np.array([3.0, 1, 3, 2]))) == [3.5, 1, 3.5, 2]
    assert correlate(x, np.exp(x)).spearman == pytest.approx(1.0)
    few = correlate([1.0, 2.0], [3.0, 5.0])
    assert few.n == 2 and np.isnan(few.pearson_ci[0])
    constant = correlate(x, np.ones(6))
    assert np.isnan(constant.pearson)
