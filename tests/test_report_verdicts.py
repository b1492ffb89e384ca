"""The report's verdicts and their uncertainty rules: every verdict kind from committed records (the labelled
synthetic GPU set for the GPU-only logic; tests/test_report.py does the real CPU records), the rules on their
own, the memory noise model against real repeats, and results directories that share configurations."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from harness.cli.main import main  # noqa: E402
from harness.report import claims, uncertainty  # noqa: E402
from harness.report.build import build  # noqa: E402
from harness.report.stats import Estimate, compare, correlation_difference  # noqa: E402
from harness.results.store import read_results  # noqa: E402

DATA = Path(__file__).parent / "data"
SYNTHETIC = DATA / "synthetic-gpu-results"
CPU = DATA / "results-cpu-2026-11-24"
REPEATS = DATA / "cpu-memory-repeats-2026-11-29"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return build([SYNTHETIC], tmp_path_factory.mktemp("synthetic"))


def _gpu(report) -> dict[str, claims.Claim]:
    return {c.claim: c for c in report.claims if c.scope == claims.GPU}


def test_synthetic_gpu_set_meets_every_verdict_kind(synthetic):
    gpu = _gpu(synthetic)
    assert {c.verdict for c in gpu.values()} == {claims.REPRODUCED, claims.NOT_REPRODUCED, claims.INCONCLUSIVE,
                                                 claims.NOT_MEASURED}
    expected = {
        "Memory-footprint/model-size tracks activations/params": claims.REPRODUCED,
        "Energy efficiency tracks MACs/activation": claims.REPRODUCED,
        "Energy efficiency does not track MACs/param": claims.INCONCLUSIVE,
        "Activations, not parameters, drive the memory footprint": claims.INCONCLUSIVE,
        "1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1": claims.INCONCLUSIVE,
        "AlexNet is the most and MobileNet the least energy-efficient": claims.NOT_REPRODUCED,
        "A larger batch barely helps MobileNet": claims.REPRODUCED,
        "MobileNet spends most GPU time in gemv kernels": claims.NOT_REPRODUCED,
        "The SqueezeNet family uses no cuBLAS gemv/gemmk1 kernels": claims.NOT_MEASURED,
        "Inception-V2 runs out of memory at B=128 where GoogLeNet does not": claims.REPRODUCED,
    }
    assert {k: gpu[k].verdict for k in expected} == expected
    # the analyzer's rows: Table II reproduced cell for cell; Fig. 2 only consistent with the counts fitted to it
    analyzer = {c.claim.split(" ")[0]: c.verdict for c in synthetic.claims if c.scope == claims.ANALYZER}
    assert analyzer == {"Table": claims.REPRODUCED, "Except": claims.REPRODUCED, "Factorising": claims.FITTED}
    # GPU records only: no CPU row exists without CPU records, and the report says the data are synthetic
    assert not any(c.scope == claims.CPU for c in synthetic.claims)
    assert synthetic.markdown.read_text().count("SYNTHETIC DATA") == 1


def test_every_verdict_names_its_rule_n_and_records(synthetic):
    keys = {r.key for r in read_results([SYNTHETIC]).records}
    profile_keys = {json.loads(p.read_text())["key"] for p in (SYNTHETIC / "profiles").glob("*.json")}
    for c in synthetic.claims:
        assert c.rule and c.verdict in claims.VERDICTS
        assert c.n == len(c.records) or c.scope == claims.ANALYZER
        assert set(c.records) <= keys | profile_keys
    memory = _gpu(synthetic)["1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1"]
    assert memory.n == 2 and "1019 [999, 1039] MiB vs AlexNet 1015 [995, 1035] MiB" in memory.evidence


def test_contended_records_are_left_out_and_counted(synthetic):
    contended = {r.key for r in read_results([SYNTHETIC]).records if r.contended}
    assert len(contended) == 1
    used = {k for c in synthetic.claims for k in c.records}
    assert not used & contended
    measured_claims = [c for c in synthetic.claims if c.scope == claims.GPU and "gemv" not in c.claim
                       and "cuBLAS" not in c.claim and "1x1 convolutions" not in c.claim]  # not layer profiles
    assert all("1 contended record(s)" in c.left_out for c in measured_claims)
    table = pd.read_csv(synthetic.out / "tables" / "contended.csv")
    assert list(table["key"]) == sorted(contended) and "another process" in table["disturbed by"].iloc[0]
    assert "Left out: 1 record(s)" in synthetic.markdown.read_text()


def test_only_measured_ooms_decide(synthetic):
    oom = _gpu(synthetic)["Inception-V2 runs out of memory at B=128 where GoogLeNet does not"]
    assert "D1 caffe: Inception-V2 and GoogLeNet not both run at B=128 (inferred OOMs do not count)" in oom.evidence
    assert "D1 pytorch: B=128: Inception-V2 oom, GoogLeNet ok -> reproduced" in oom.evidence
    assert "1 inferred OOM record(s)" in oom.left_out
    inferred = {r.key for r in read_results([SYNTHETIC]).records if r.inferred_from}
    assert inferred and not inferred & set(oom.records)


def test_kernel_claims_need_gpu_profiles_and_both_squeezenets(synthetic):
    gpu = _gpu(synthetic)
    squeeze = gpu["The SqueezeNet family uses no cuBLAS gemv/gemmk1 kernels"]
    # V1.0 alone would pass or fail the old rule; with only V1.0 profiled the claim is not measured
    assert "SqueezeNet-V1.1 not profiled (the rule needs both)" in squeeze.evidence
    assert "SqueezeNet-V1.0 47.00%" in squeeze.evidence
    gemv = gpu["MobileNet spends most GPU time in gemv kernels"]
    assert "gemv2T + gemv2N = 45.5% of kernel time" in gemv.evidence and gemv.n == 1


def test_threshold_and_band_rules_follow_the_interval():
    assert claims.threshold_verdict(0.75, 0.99, 0.7) == claims.REPRODUCED
    assert claims.threshold_verdict(0.2, 0.69, 0.7) == claims.NOT_REPRODUCED
    assert claims.threshold_verdict(0.5, 0.99, 0.7) == claims.INCONCLUSIVE  # straddles: r alone would pass
    assert claims.threshold_verdict(math.nan, math.nan, 0.7) == claims.NOT_MEASURED
    assert claims.band_verdict(-0.4, 0.4, 0.5) == claims.REPRODUCED
    assert claims.band_verdict(0.55, 0.9, 0.5) == claims.NOT_REPRODUCED
    assert claims.band_verdict(-0.95, -0.5, 0.5) == claims.NOT_REPRODUCED
    assert claims.band_verdict(-0.2, 0.8, 0.5) == claims.INCONCLUSIVE
    assert claims.combine([claims.REPRODUCED, claims.NOT_MEASURED]) == claims.REPRODUCED
    assert claims.combine([claims.REPRODUCED, claims.INCONCLUSIVE]) == claims.INCONCLUSIVE
    assert claims.combine([claims.INCONCLUSIVE, claims.NOT_REPRODUCED]) == claims.NOT_REPRODUCED
    assert claims.combine([claims.NOT_MEASURED]) == claims.NOT_MEASURED == claims.combine([])


def test_a_difference_must_beat_the_combined_uncertainty():
    a, b = Estimate(10.0, 9.0, 11.0, "a"), Estimate(8.0, 7.0, 9.0, "b")
    # 2.0 apart, combined half-widths hypot(1, 1) = 1.41: decided
    assert compare(a, b) == 1 and compare(b, a) == -1
    # 1.0 apart: within 1.41, neither way
    assert compare(Estimate(9.0, 8.0, 10.0, "c"), b) == 0
    # no uncertainty recorded: never decided
    assert compare(Estimate(100.0, -math.inf, math.inf, "none"), b) == 0
    # the memory model: 1019 vs 1015 MiB is noise, 1100 vs 1015 is not
    mib = 2**20
    assert compare(uncertainty.memory(1019 * mib), uncertainty.memory(1015 * mib)) == 0
    assert compare(uncertainty.memory(1100 * mib), uncertainty.memory(1015 * mib)) == 1


def test_paired_difference_of_correlations():
    x1 = [1.0, 2, 3, 4, 5, 6, 7, 8]
    x2 = [3.0, 1, 4, 1, 5, 9, 2, 6]
    y = [2.0, 4, 6, 8, 10, 12, 14, 16]
    n, diff, (low, high) = correlation_difference(x1, x2, y)
    assert n == 8 and diff == pytest.approx(1 - pd.Series(x2).corr(pd.Series(y)))
    assert low <= diff <= high and low > 0  # x1 tracks y exactly, x2 barely


def test_memory_noise_model_covers_the_measured_repeats():
    """The model's standard uncertainty is above the run-to-run standard deviation of every configuration
    measured five times (real CPU records; their README)."""
    readings: dict[str, list[float]] = {}
    for run in sorted(REPEATS.glob("r*")):
        for r in read_results([run]).records:
            readings.setdefault(r.config.network, []).append(r.memory.host_rss_peak_bytes)
    assert len(readings) == 3 and all(len(v) == 5 for v in readings.values())
    for network, values in readings.items():
        sd = statistics.stdev(values)
        assert uncertainty.memory_sigma(statistics.mean(values)) > sd, network
    assert max(statistics.stdev(v) for v in readings.values()) == pytest.approx(2.45 * 2**20, rel=0.01)


def test_two_results_directories_sharing_configurations_merge(tmp_path, capsys):
    """The same configurations in two directories: merged by the store's rule, duplicates reported, no crash."""
    second = tmp_path / "copy"
    shutil.copytree(CPU, second)
    out = tmp_path / "out"
    assert main(["report", str(CPU), str(second), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "96 record(s) of 96 configuration(s) superseded" in err
    assert "superseded" in (out / "report.md").read_text()
    table = pd.read_csv(out / "tables" / "setups.csv")  # one row per setup
    assert table["records"].astype(int).sum() == 96


def test_report_into_an_existing_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("not a directory")
    assert main(["report", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an existing file" in err


def test_kernel_shares_of_several_captures_never_add_up(tmp_path, synthetic):
    """The same profiles read twice (two directories): one capture per network and setup speaks, so the
    MobileNet gemv share and its verdict stay those of one capture."""
    again = build([SYNTHETIC, SYNTHETIC], tmp_path / "twice")
    gemv = _gpu(again)["MobileNet spends most GPU time in gemv kernels"]
    assert "gemv2T + gemv2N = 45.5% of kernel time" in gemv.evidence
    assert gemv.verdict == _gpu(synthetic)["MobileNet spends most GPU time in gemv kernels"].verdict
