"""The paper's claims, each with a verdict by an explicit rule and the numbers behind it.

Verdicts: "reproduced", "not reproduced", "not measured here". Claims about measurements are GPU claims (the
paper's memory footprint is GPU global memory, its kernels are cuBLAS kernels, its energy and throughput come
from SM utilisation on a P100): only GPU results decide them. CPU results are quoted beside the verdict,
labelled as CPU, and never turn "not measured here" into a verdict. Every threshold is a constant below; the
report prints them (see :func:`rules`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.paper import TABLE2_COLUMNS, TABLE2_RULE, table2_cells
from harness.report import measured
from harness.report.design import Factorisation

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured here"

STRONG_R = 0.7  # "tracks" / "high correlation": Pearson r at least this
WEAK_R = 0.5  # "does not track": |Pearson r| below this
MIN_NETWORKS = 5  # fewer networks on a setup: too few to correlate or rank
GEMV_MAJORITY_PCT = 50.0  # "most GPU time in gemv": gemv2T + gemv2N above this share of kernel time
NO_CUBLAS_PCT = 1.0  # "no cuBLAS kernels": gemv2T + gemv2N + gemmk1 below this share of kernel time
BARELY_HELPS_SPEEDUP = 2.0  # "a larger batch barely helps": per-image speedup from B=1 below this
LARGE_BATCH = 32  # smallest batch that counts as "larger" for that claim (the paper: 90)
OOM_BATCH = 128  # the paper's batch for the Inception-V2 / GoogLeNet out-of-memory claim
FIG2_TOLERANCE_PP = 1.0  # Fig. 2 changes: within 1 percentage point of the paper's

CUBLAS_FAMILIES = ("gemv2T", "gemv2N", "gemmk1")


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str  # the paper's numbers
    verdict: str
    evidence: str  # our numbers
    rule: str
    scope: str  # "analyzer", "GPU results" or "none"


@dataclass
class Inputs:
    """Everything the claims read; built by the report from the analyzer and the results."""

    table2: pd.DataFrame  # design.table2()
    factorisation: Factorisation
    frame: pd.DataFrame  # measured.load() rows (may be empty)
    correlations: pd.DataFrame  # correlations.table4() (long form)
    kernel_shares: pd.DataFrame  # columns setup, network, family, pct (of GPU kernel time)
    paper_names: dict[str, str]


def rules() -> list[tuple[str, str]]:
    """The thresholds, as printed in the report."""
    return [
        ("decided by", "GPU results only for measured claims; CPU figures are quoted but decide nothing"),
        ("every GPU setup", "a claim is reproduced only if every GPU setup with enough data reproduces it"),
        ("strong correlation", f"Pearson r >= {STRONG_R}"),
        ("no correlation", f"|Pearson r| < {WEAK_R}"),
        ("enough networks", f"at least {MIN_NETWORKS} networks measured on the setup (else not measured)"),
        ("most time in gemv", f"gemv2T + gemv2N > {GEMV_MAJORITY_PCT:g}% of GPU kernel time"),
        ("no cuBLAS kernels", f"gemv2T + gemv2N + gemmk1 < {NO_CUBLAS_PCT:g}% of GPU kernel time"),
        ("larger batch barely helps", f"per-image latency at the largest batch >= {LARGE_BATCH} is less than "
                                      f"{BARELY_HELPS_SPEEDUP:g}x faster than at B=1"),
        ("out of memory", f"status 'oom' at B={OOM_BATCH} for Inception-V2 and 'ok' for GoogLeNet"),
        ("Table II", f"all 72 cells equal to the paper's as printed; {TABLE2_RULE}"),
        ("Fig. 2", "params and MACs fall, activations rise; each change within "
                   f"{FIG2_TOLERANCE_PP:g} percentage point of the paper's is quoted as matching"),
    ]


def _gpu_setups(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return sorted(frame.loc[frame["device_kind"] == "gpu", "setup"].unique())


def _cpu_setups(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return sorted(frame.loc[frame["device_kind"] == "cpu", "setup"].unique())


def _combine(per_setup: dict[str, bool | None]) -> str:
    """Overall verdict from per-GPU-setup outcomes (None: that setup lacks the data)."""
    decided = {k: v for k, v in per_setup.items() if v is not None}
    if not decided:
        return NOT_MEASURED
    return REPRODUCED if all(decided.values()) else NOT_REPRODUCED


def _measured_claim(claim: str, paper: str, rule: str, inputs: Inputs,
                    check: Callable[[str], tuple[bool | None, str]]) -> Claim:
    """Run ``check(setup) -> (outcome or None, evidence)`` on every GPU setup; quote CPU setups."""
    outcomes: dict[str, bool | None] = {}
    evidence = []
    for setup in _gpu_setups(inputs.frame):
        outcome, text = check(setup)
        outcomes[setup] = outcome
        evidence.append(f"{setup}: {text}")
    for setup in _cpu_setups(inputs.frame):
        _, text = check(setup)
        evidence.append(f"{setup} (CPU only, decides nothing): {text}")
    verdict = _combine(outcomes)
    if verdict == NOT_MEASURED and not outcomes:
        evidence.insert(0, "no GPU results")
    return Claim(claim, paper, verdict, "; ".join(evidence) or "no results", rule,
                 "GPU results" if outcomes else "none")


def _correlation(inputs: Inputs, setup: str, x: str, y: str) -> tuple[float, int, str]:
    c = inputs.correlations
    row = c[(c["source"] == setup) & (c["pair"].str.startswith(x + " vs ")) & (c["pair"].str.endswith(y))]
    if row.empty:
        return float("nan"), 0, "no data"
    r = row.iloc[0]
    ci = f"[{r['pearson_ci_low']:.2f}, {r['pearson_ci_high']:.2f}]" if np.isfinite(r["pearson_ci_low"]) else "[n/a]"
    return float(r["pearson"]), int(r["n"]), f"r={r['pearson']:.2f} 95% CI {ci}, Spearman {r['spearman']:.2f}, " \
                                             f"n={int(r['n'])}"


def claim_acts_drive_memory(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        r_acts, n, t_acts = _correlation(inputs, setup, "# activations", "memory footprint")
        r_params, _, t_params = _correlation(inputs, setup, "# params", "memory footprint")
        if n < MIN_NETWORKS or not (np.isfinite(r_acts) and np.isfinite(r_params)):
            return None, f"too few networks (n={n})"
        return bool(r_acts >= STRONG_R and r_params < r_acts), f"activations {t_acts}; params {t_params}"
    return _measured_claim("Activations, not parameters, drive the memory footprint",
                           "Table IV: PPMCC(params, footprint) 0.24, PPMCC(activations, footprint) 0.75",
                           f"r(activations, footprint) >= {STRONG_R} and r(params, footprint) < that", inputs, check)


def _correlation_claim(inputs: Inputs, claim: str, paper: str, x: str, y: str, strong: bool) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        r, n, text = _correlation(inputs, setup, x, y)
        if n < MIN_NETWORKS or not np.isfinite(r):
            return None, f"too few networks (n={n})"
        return bool(r >= STRONG_R if strong else abs(r) < WEAK_R), text
    rule = f"Pearson r >= {STRONG_R}" if strong else f"|Pearson r| < {WEAK_R}"
    return _measured_claim(claim, paper, rule, inputs, check)


def _values(inputs: Inputs, setup: str, batch: int | None, value: Callable[[pd.DataFrame], pd.Series]) -> pd.Series:
    rows = measured.ok(inputs.frame[inputs.frame["setup"] == setup])
    if batch is not None:
        rows = rows[rows["batch"] == batch]
    return pd.Series(value(rows).values, index=rows["network"]).dropna().groupby(level=0).max()


def _name(inputs: Inputs, network: str) -> str:
    return inputs.paper_names.get(network, network)


def claim_efficiency_extremes(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        eff = _values(inputs, setup, measured.ENERGY_BATCH, measured.energy_efficiency)
        if len(eff) < MIN_NETWORKS or not {"alexnet", "mobilenet_v1"} <= set(eff.index):
            return None, f"energy efficiency at B={measured.ENERGY_BATCH} for {len(eff)} network(s)" + (
                "" if {"alexnet", "mobilenet_v1"} <= set(eff.index) else ", AlexNet or MobileNet missing")
        most, least = eff.idxmax(), eff.idxmin()
        return bool(most == "alexnet" and least == "mobilenet_v1"), (
            f"most {_name(inputs, most)} {eff[most]:.3g}, least {_name(inputs, least)} {eff[least]:.3g} "
            f"GMACs/J (n={len(eff)})")
    return _measured_claim("AlexNet is the most and MobileNet the least energy-efficient",
                           "Table III: AlexNet 75.94, MobileNet 1.65 GMACs/J (B=4)",
                           "highest and lowest energy efficiency among the measured networks", inputs, check)


def claim_mobilenet_lowest_throughput(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        fps = _values(inputs, setup, None, measured.throughput_fps)
        if len(fps) < MIN_NETWORKS or "mobilenet_v1" not in fps.index:
            return None, f"throughput for {len(fps)} network(s)"
        low = fps.idxmin()
        return bool(low == "mobilenet_v1"), (f"lowest {_name(inputs, low)} {fps[low]:.4g} FPS, MobileNet "
                                             f"{fps['mobilenet_v1']:.4g} FPS (n={len(fps)})")
    return _measured_claim("MobileNet has the lowest throughput", "Table III: 42 FPS, the lowest",
                           "lowest best-batch throughput among the measured networks", inputs, check)


def _kernel_share(inputs: Inputs, setup: str, network: str, families: tuple[str, ...]) -> float | None:
    k = inputs.kernel_shares
    if k.empty:
        return None
    rows = k[(k["setup"] == setup) & (k["network"] == network)]
    return float(rows[rows["family"].isin(families)]["pct"].sum()) if not rows.empty else None


def _kernel_claim(inputs: Inputs, claim: str, paper: str, rule: str,
                  check: Callable[[str], tuple[bool | None, str]]) -> Claim:
    """Kernel claims are about GPU kernels: only setups with kernel attributions count."""
    outcomes, evidence = {}, []
    setups = sorted(inputs.kernel_shares["setup"].unique()) if not inputs.kernel_shares.empty else []
    for setup in setups:
        outcomes[setup], text = check(setup)
        evidence.append(f"{setup}: {text}")
    verdict = _combine(outcomes)
    return Claim(claim, paper, verdict, "; ".join(evidence) or "no GPU kernel attribution in the results", rule,
                 "GPU results" if outcomes else "none")


def claim_mobilenet_gemv(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        share = _kernel_share(inputs, setup, "mobilenet_v1", ("gemv2T", "gemv2N"))
        if share is None:
            return None, "MobileNet not profiled"
        return share > GEMV_MAJORITY_PCT, f"gemv2T + gemv2N = {share:.1f}% of kernel time"
    return _kernel_claim(inputs, "MobileNet spends most GPU time in gemv kernels",
                         "Table III: gemv2T 55.47% + gemv2N 30.5% of inference time",
                         f"gemv2T + gemv2N > {GEMV_MAJORITY_PCT:g}% of kernel time", check)


def claim_squeezenet_no_cublas(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        shares = {n: _kernel_share(inputs, setup, n, CUBLAS_FAMILIES) for n in ("squeezenet_v1.0", "squeezenet_v1.1")}
        known = {n: s for n, s in shares.items() if s is not None}
        if not known:
            return None, "SqueezeNets not profiled"
        text = ", ".join(f"{_name(inputs, n)} {s:.2f}%" for n, s in known.items())
        return all(s < NO_CUBLAS_PCT for s in known.values()), f"gemv2T + gemv2N + gemmk1: {text}"
    return _kernel_claim(inputs, "The SqueezeNet family uses no cuBLAS gemv/gemmk1 kernels",
                         "Table III: 0% gemv2T, gemv2N and gemmk1 for SqueezeNet-V1.0 and V1.1",
                         f"gemv2T + gemv2N + gemmk1 < {NO_CUBLAS_PCT:g}% of kernel time", check)


def claim_batch_barely_helps_mobilenet(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        rows = measured.ok(inputs.frame[(inputs.frame["setup"] == setup)])
        per_image = pd.Series((measured.latency_ms(rows) / rows["batch"]).values,
                              index=pd.MultiIndex.from_arrays([rows["network"], rows["batch"]])).dropna()
        speedups = {}
        for network in per_image.index.get_level_values(0).unique():
            series = per_image[network].sort_index()
            large = series[series.index >= LARGE_BATCH]
            if 1 in series.index and not large.empty:
                speedups[network] = (series[1] / large.iloc[-1], int(large.index[-1]), series[1], large.iloc[-1])
        if "mobilenet_v1" not in speedups:
            return None, f"MobileNet not measured at B=1 and at a batch >= {LARGE_BATCH}"
        s, b, t1, tb = speedups["mobilenet_v1"]
        others = ", ".join(f"{_name(inputs, n)} {v[0]:.1f}x" for n, v in speedups.items() if n != "mobilenet_v1")
        return bool(s < BARELY_HELPS_SPEEDUP), (f"MobileNet {t1:.2f} ms/image at B=1 vs {tb:.2f} ms/image at B={b} "
                                                f"({s:.2f}x)" + (f"; others: {others}" if others else ""))
    return _measured_claim("A larger batch barely helps MobileNet",
                           "29.4 ms at B=1 vs 23.6 ms per image at B=90 (1.25x)",
                           f"per-image speedup from B=1 to the largest batch >= {LARGE_BATCH} below "
                           f"{BARELY_HELPS_SPEEDUP:g}x", inputs, check)


def claim_inception_oom(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        rows = inputs.frame[(inputs.frame["setup"] == setup) & (inputs.frame["batch"] == OOM_BATCH)]
        status = dict(zip(rows["network"], rows["status"], strict=False))
        if "inception_v2" not in status or "googlenet" not in status:
            return None, f"Inception-V2 and GoogLeNet not both run at B={OOM_BATCH}"
        text = f"B={OOM_BATCH}: Inception-V2 {status['inception_v2']}, GoogLeNet {status['googlenet']}"
        foot = measured.footprint_bytes(rows) / measured.MIB
        mem = dict(zip(rows["network"], foot, strict=False))
        if all(np.isfinite(mem.get(n, np.nan)) for n in ("inception_v2", "googlenet")):
            text += f" (peak {mem['inception_v2']:.0f} vs {mem['googlenet']:.0f} MiB)"
        return bool(status["inception_v2"] == "oom" and status["googlenet"] == "ok"), text
    return _measured_claim("Inception-V2 runs out of memory at B=128 where GoogLeNet does not",
                           "on a 12193 MB P100; a GPU with more memory need not run out",
                           f"Inception-V2 'oom' and GoogLeNet 'ok' at B={OOM_BATCH}", inputs, check)


def claim_gsqnxt_memory(inputs: Inputs) -> Claim:
    def check(setup: str) -> tuple[bool | None, str]:
        foot = _values(inputs, setup, measured.MEMORY_BATCH,
                       lambda f: measured.footprint_bytes(f) / measured.MIB)
        if not {"alexnet", "1.0-G-SqNxt-23"} <= set(foot.index):
            return None, "AlexNet and 1.0-G-SqNxt-23 not both measured at B=1"
        a, g = foot["alexnet"], foot["1.0-G-SqNxt-23"]
        return bool(g > a), f"1.0-G-SqNxt-23 {g:.0f} MiB vs AlexNet {a:.0f} MiB at B=1"
    return _measured_claim("1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1",
                           "Table III: 1019 MB vs 1015 MB", "footprint of 1.0-G-SqNxt-23 > AlexNet's at B=1",
                           inputs, check)


def claim_table2(inputs: Inputs) -> Claim:
    from harness import zoo
    from harness.report.design import paper_rows, zoo_analysis

    rows = paper_rows()
    misses = [f"{zoo.paper_name(n)} {TABLE2_COLUMNS[c.column]}" for n in zoo.zoo_names()
              for c in table2_cells(zoo_analysis(n).totals, rows[zoo.paper_name(n)]) if not c.matches]
    n = len(zoo.zoo_names())
    verdict = NOT_REPRODUCED if misses else REPRODUCED
    evidence = (f"{n} networks x 6 columns; mismatches: " + ", ".join(misses)) if misses else \
        f"all {n} networks x 6 columns match"
    return Claim("Table II (MACs, params, activations and their ratios) follows from the prototxts",
                 "Table II", verdict, evidence, "see 'Table II' rule", "analyzer")


def claim_acts_exceed_params(inputs: Inputs) -> Claim:
    t = inputs.table2
    ratio = dict(zip(t["network"], t["acts/params analyzer"], strict=True))
    below = sorted(n for n, r in ratio.items() if r < 1)
    compact = {n: r for n, r in ratio.items() if n != "AlexNet"}
    verdict = REPRODUCED if below == ["AlexNet"] else NOT_REPRODUCED
    evidence = (f"acts/params < 1 only for: {', '.join(below) or 'none'}; compact networks range "
                f"{min(compact.values()):.2f} to {max(compact.values()):.2f}")
    return Claim("Except AlexNet, every network has more activations than parameters",
                 "Table II; acts/params of the compact networks 1.4 to 32.8", verdict, evidence,
                 "acts/params < 1 for AlexNet alone", "analyzer")


def claim_factorisation(inputs: Inputs) -> Claim:
    f = inputs.factorisation
    paper = "params -52%, MACs -51.3%, activations +102%, MACs/param +1.34%, MACs/activation -61%"
    from harness.report.design import FIG2_PAPER_CHANGE_PCT

    change = f.change_pct()
    direction = change["params"] < 0 and change["macs"] < 0 and change["activations"] > 0
    close = [k for k in FIG2_PAPER_CHANGE_PCT if abs(change[k] - FIG2_PAPER_CHANGE_PCT[k]) <= FIG2_TOLERANCE_PP]
    evidence = ", ".join(f"{k} {change[k]:+.2f}%" for k in FIG2_PAPER_CHANGE_PCT) + \
        f"; within {FIG2_TOLERANCE_PP:g} pp of the paper: {', '.join(close) or 'none'}"
    return Claim("Factorising a 5x5 conv into two 3x3 convs cuts params and MACs but raises activations", paper,
                 REPRODUCED if direction else NOT_REPRODUCED, evidence,
                 "params and MACs fall and activations rise (analyzer, Fig. 2 prototxts)", "analyzer")


def checklist(inputs: Inputs) -> list[Claim]:
    return [
        claim_table2(inputs),
        claim_acts_exceed_params(inputs),
        claim_factorisation(inputs),
        claim_acts_drive_memory(inputs),
        _correlation_claim(inputs, "Memory-footprint/model-size tracks activations/params",
                           "Fig. 3: PPMCC 0.96; AlexNet 4.16, 1.0-G-SqNxt-23 443", "activations/params",
                           "memory footprint/model size", strong=True),
        _correlation_claim(inputs, "Energy efficiency tracks MACs/activation", "Fig. 4: PPMCC 0.88",
                           "MACs/activations", "energy efficiency", strong=True),
        _correlation_claim(inputs, "Energy efficiency does not track MACs/param", "Fig. 4: PPMCC -0.18",
                           "MACs/params", "energy efficiency", strong=False),
        claim_efficiency_extremes(inputs),
        claim_gsqnxt_memory(inputs),
        claim_mobilenet_gemv(inputs),
        claim_mobilenet_lowest_throughput(inputs),
        claim_squeezenet_no_cublas(inputs),
        claim_batch_barely_helps_mobilenet(inputs),
        claim_inception_oom(inputs),
    ]


def frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.__dict__ for c in claims])[["claim", "verdict", "paper", "evidence", "rule", "scope"]]
