"""The paper's claims, each with a verdict by an explicit rule, the n and the records it used.

Verdicts: "reproduced", "not reproduced", "inconclusive" (the measurements' uncertainty straddles the rule's
threshold), "not measured here", and, for the Fig. 2 pair alone, "consistent by construction (fitted)".

Scopes. A claim about measurements is a GPU claim (the paper's footprint is GPU global memory, its kernels are
cuBLAS kernels, its energy comes from a P100): only GPU records decide its "GPU (the paper's claim)" row. Where
the quantity has a CPU counterpart (process RSS for the footprint, RAPL energy, CPU latency), the same rule is
applied to CPU records in a separate "CPU analogue" row, which is labelled as such and never stands for the
paper's claim. Kernel claims have no CPU row: a CPU profile has no GPU kernels, and the Caffe BLAS
counterpart (``harness kernels blas``) is not a profile of anything.

Uncertainty (:mod:`harness.report.uncertainty`): a correlation claim is reproduced only if its bootstrap
interval lies on the claim's side of the threshold, not reproduced if it lies on the other side, inconclusive
when it straddles it; a comparison of two measurements needs a difference larger than their combined
uncertainty. Records flagged ``contended`` are left out (and counted), and only measured OOMs count. Every
threshold is a constant below; the report prints them (:func:`rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.paper import TABLE2_COLUMNS, TABLE2_RULE, table2_cells
from harness.report import measured, tables, uncertainty
from harness.report.design import FIG2_FITTED, FIG2_PAPER_CHANGE_PCT, Factorisation
from harness.report.stats import Estimate, compare, correlation_difference

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_MEASURED, FITTED = "not measured here", "consistent by construction (fitted)"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED, FITTED)
ANALYZER, GPU, CPU = "analyzer", "GPU (the paper's claim)", "CPU analogue (not the paper's claim)"

STRONG_R = 0.7  # "tracks" / "high correlation": Pearson r at least this
WEAK_R = 0.5  # "does not track": |Pearson r| below this
MIN_NETWORKS = 5  # fewer networks on a setup: too few to correlate or rank
GEMV_MAJORITY_PCT = 50.0  # "most GPU time in gemv": gemv2T + gemv2N above this share of kernel time
NO_CUBLAS_PCT = 1.0  # "no cuBLAS kernels": gemv2T + gemv2N + gemmk1 below this share of kernel time
BARELY_HELPS_SPEEDUP = 2.0  # "a larger batch barely helps": per-image speedup from B=1 below this
LARGE_BATCH = 32  # smallest batch that counts as "larger" for that claim (the paper: 90)
OOM_BATCH = 128  # the paper's batch for the Inception-V2 / GoogLeNet out-of-memory claim
P100_MEMORY_BYTES = 12193 * 2**20  # the paper's P100: 12193 MB (nvidia-smi's MiB)

CUBLAS_FAMILIES = ("gemv2T", "gemv2N", "gemmk1")


@dataclass(frozen=True)
class Outcome:
    """One setup's result for one claim."""

    verdict: str
    evidence: str
    n: int = 0  # networks (or records) the verdict used
    records: tuple[str, ...] = ()  # their keys
    figure: str = ""  # our figure in a few words, with its interval (the summary's "ours"); "" when not measured

    @property
    def short(self) -> str:
        return self.figure or self.evidence


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str  # the paper's numbers
    scope: str  # ANALYZER, GPU or CPU
    verdict: str
    evidence: str  # our numbers, per setup
    rule: str
    n: int  # records (or networks, for analyzer claims) the verdict used, over all setups
    records: tuple[str, ...] = ()  # keys of the records used (tables/claim_records.csv)
    left_out: str = ""  # records left out of this verdict and why
    outcomes: tuple[tuple[str, Outcome], ...] = ()  # (setup, its outcome), for measured claims
    figure: str = ""  # analyzer claims: the result in a few words
    notes: tuple[str, ...] = ()  # what the evidence says besides the setups' outcomes ("no GPU results", ...)

    @property
    def deciding(self) -> list[tuple[str, Outcome]]:
        """The setups whose own verdict is the claim's (by the combining rule, the ones that decided it)."""
        if self.verdict == NOT_MEASURED:
            return []
        return [(s, o) for s, o in self.outcomes if o.verdict == self.verdict]

    @property
    def ours(self) -> str:
        """Our figure in a few words: the first deciding setup's (the summary names the deciding setups), or,
        when none decided, what the first setup lacked."""
        if self.figure:
            return self.figure
        if self.deciding:
            return self.deciding[0][1].short
        if not self.outcomes:
            return self.evidence
        setup, outcome = self.outcomes[0]
        return f"{setup}: {outcome.short}" + (f" (and {len(self.outcomes) - 1} more setups)"
                                             if len(self.outcomes) > 1 else "")


@dataclass
class Inputs:
    """Everything the claims read; built by the report from the analyzer and the results."""

    table2: pd.DataFrame  # design.table2()
    factorisation: Factorisation
    frame: pd.DataFrame  # measured.Measured.frame (contended records already out)
    contended: pd.DataFrame  # measured.Measured.contended
    correlations: pd.DataFrame  # correlations.table4() (long form)
    xy: dict[str, pd.DataFrame]  # setup -> correlations.measured_xy()
    kernel_shares: pd.DataFrame  # measured.profile_rows() with setup and device columns
    paper_names: dict[str, str]


def rules() -> list[tuple[str, str]]:
    """The rules, as printed in the report."""
    return [
        ("scopes", "GPU records decide the paper's claims; CPU records decide only the separate 'CPU analogue' "
                   "rows; kernel claims only GPU kernel profiles"),
        ("several setups", "reproduced only if no setup with the data says otherwise: any 'not reproduced' wins, "
                           "then any 'inconclusive'"),
        ("left out", "records flagged contended (disturbed window) are left out and counted; OOMs inferred from a "
                     "smaller batch are not measurements"),
        ("strong correlation", f"Pearson r >= {STRONG_R}: reproduced if the 95% bootstrap CI lies at or above "
                               f"{STRONG_R}, not reproduced if below, inconclusive if it straddles it"),
        ("no correlation", f"|Pearson r| < {WEAK_R}: reproduced if the CI lies inside (-{WEAK_R}, {WEAK_R}), not "
                           "reproduced if wholly outside, inconclusive otherwise"),
        ("enough networks", f"at least {MIN_NETWORKS} networks measured on the setup (else not measured)"),
        ("comparing two measurements", "the difference must exceed the root sum of squares of their interval "
                                       "half-widths, else inconclusive (harness.report.stats.compare)"),
        ("latency interval", "the record's order-statistic interval of the median, with its stated coverage"),
        ("energy interval", "GMACs/J +- 2 x its recorded uncertainty (none recorded: decides nothing)"),
        ("memory noise model", f"+- 2 x max({uncertainty.MEMORY_FLOOR_BYTES // 2**20} MiB, "
                               f"{uncertainty.MEMORY_REL:.0%} of the reading) (harness/report/uncertainty.py)"),
        ("most time in gemv", f"gemv2T + gemv2N > {GEMV_MAJORITY_PCT:g}% of GPU kernel time (a capture's sum: "
                              "no interval)"),
        ("no cuBLAS kernels", f"gemv2T + gemv2N + gemmk1 < {NO_CUBLAS_PCT:g}% of GPU kernel time, for both V1.0 "
                              "and V1.1 profiled on the same setup"),
        ("larger batch barely helps", f"per-image speedup from B=1 to the largest batch >= {LARGE_BATCH} below "
                                      f"{BARELY_HELPS_SPEEDUP:g}x, its interval from the two latency intervals"),
        ("out of memory", f"at B={OOM_BATCH}: Inception-V2 a measured 'oom' and GoogLeNet 'ok'; where both ran, "
                          f"Inception-V2's peak above the P100's 12193 MiB and GoogLeNet's below it"),
        ("Table II", f"all 72 cells equal to the paper's as printed; {TABLE2_RULE}"),
        ("Fig. 2", f"'{FITTED}' when the five changes equal the paper's as printed: {FIG2_FITTED}"),
    ]


# ---- combining setups ------------------------------------------------------------------------------


def combine(verdicts: Sequence[str]) -> str:
    decided = [v for v in verdicts if v != NOT_MEASURED]
    if not decided:
        return NOT_MEASURED
    for verdict in (NOT_REPRODUCED, INCONCLUSIVE):
        if verdict in decided:
            return verdict
    return REPRODUCED


def _setups(frame: pd.DataFrame, kind: str) -> list[str]:
    if frame.empty:
        return []
    return sorted(frame.loc[frame["device_kind"] == kind, "setup"].unique())


def _left_out(inputs: Inputs, kind: str) -> str:
    c = inputs.contended
    count = 0 if c.empty else int((c["device_kind"] == kind).sum())
    return f"{count} contended record(s)" if count else ""


def scoped(claim: str, paper: str, rule: str, scope: str, setups: list[str], check: Callable[[str], Outcome],
           left_out: str, quoted: list[str] | None = None, none_note: str | None = None) -> Claim:
    """A claim's row for one scope (GPU or CPU): ``check`` judges each setup, the verdicts combine.
    ``none_note`` says what is missing when no setup is there (default: no results of the scope)."""
    outcomes = {s: check(s) for s in setups}
    missing = none_note or f"no {'GPU' if scope == GPU else 'CPU'} results"
    notes = ([] if setups else [missing]) + (quoted or [])
    evidence = [f"{s}: {o.evidence} -> {o.verdict}" for s, o in outcomes.items()] + (quoted or [])
    if not setups:
        evidence.insert(0, notes[0])
    records = tuple(k for o in outcomes.values() for k in o.records)
    return Claim(claim, paper, scope, combine([o.verdict for o in outcomes.values()]), "; ".join(evidence), rule,
                 len(records), records, left_out, tuple(outcomes.items()), notes=tuple(notes))


def _measured_claim(inputs: Inputs, claim: str, paper: str, rule: str, check: Callable[[str], Outcome],
                    cpu_analogue: bool = True) -> list[Claim]:
    """The claim's GPU row (always) and its CPU-analogue row (where CPU results exist)."""
    rows = [scoped(claim, paper, rule, GPU, _setups(inputs.frame, "gpu"), check, _left_out(inputs, "gpu"))]
    cpu = _setups(inputs.frame, "cpu")
    if cpu_analogue and cpu:
        rows.append(scoped(claim, paper, rule, CPU, cpu, check, _left_out(inputs, "cpu")))
    return rows


# ---- correlation claims ----------------------------------------------------------------------------


def threshold_verdict(low: float, high: float, threshold: float) -> str:
    """'r >= threshold' judged on its interval [low, high]."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return NOT_MEASURED
    return REPRODUCED if low >= threshold else NOT_REPRODUCED if high < threshold else INCONCLUSIVE


def band_verdict(low: float, high: float, bound: float) -> str:
    """'|r| < bound' judged on its interval [low, high]."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return NOT_MEASURED
    if -bound < low and high < bound:
        return REPRODUCED
    return NOT_REPRODUCED if low >= bound or high <= -bound else INCONCLUSIVE


def _correlation_row(inputs: Inputs, setup: str, x: str, y: str) -> pd.Series | None:
    c = inputs.correlations
    row = c[(c["source"] == setup) & (c["pair"].str.startswith(x + " vs ")) & (c["pair"].str.endswith(y))]
    return None if row.empty else row.iloc[0]


def _keys(inputs: Inputs, setup: str, y_key: str) -> tuple[str, ...]:
    xy = inputs.xy.get(setup)
    return () if xy is None else tuple(xy[y_key].dropna())


def _r_short(row: pd.Series) -> str:
    ci = f" [{row['pearson_ci_low']:.2f}, {row['pearson_ci_high']:.2f}]" if np.isfinite(row["pearson_ci_low"]) \
        else ""
    return f"r = {row['pearson']:.2f}{ci}, n = {int(row['n'])}"


def _r_text(row: pd.Series) -> str:
    ci = f"[{row['pearson_ci_low']:.2f}, {row['pearson_ci_high']:.2f}]" if np.isfinite(row["pearson_ci_low"]) \
        else "[n/a]"
    return f"r={row['pearson']:.2f} 95% CI {ci}, Spearman {row['spearman']:.2f}, n={int(row['n'])}"


def _correlation_claim(inputs: Inputs, claim: str, paper: str, x: str, y: str, y_key: str,
                       strong: bool) -> list[Claim]:
    def check(setup: str) -> Outcome:
        row = _correlation_row(inputs, setup, x, y)
        n = 0 if row is None else int(row["n"])
        if row is None or n < MIN_NETWORKS:
            return Outcome(NOT_MEASURED, f"too few networks (n={n})", n)
        low, high = float(row["pearson_ci_low"]), float(row["pearson_ci_high"])
        verdict = threshold_verdict(low, high, STRONG_R) if strong else band_verdict(low, high, WEAK_R)
        return Outcome(verdict, _r_text(row), n, _keys(inputs, setup, y_key), _r_short(row))

    rule = f"Pearson r >= {STRONG_R}, judged on its 95% bootstrap CI" if strong else \
        f"|Pearson r| < {WEAK_R}, judged on its 95% bootstrap CI"
    return _measured_claim(inputs, claim, paper, rule, check)


def claim_acts_drive_memory(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        acts = _correlation_row(inputs, setup, "# activations", "memory footprint")
        params = _correlation_row(inputs, setup, "# params", "memory footprint")
        n = 0 if acts is None else int(acts["n"])
        if acts is None or params is None or n < MIN_NETWORKS:
            return Outcome(NOT_MEASURED, f"too few networks (n={n})", n)
        xy = inputs.xy[setup]
        _, diff, (d_low, d_high) = correlation_difference(xy["activations"], xy["params"], xy["memory_footprint"])
        strong = threshold_verdict(float(acts["pearson_ci_low"]), float(acts["pearson_ci_high"]), STRONG_R)
        ahead = REPRODUCED if d_low > 0 else NOT_REPRODUCED if d_high < 0 else INCONCLUSIVE
        if not np.isfinite(d_low):
            ahead = NOT_MEASURED
        verdict = combine([strong, ahead]) if NOT_MEASURED not in (strong, ahead) else NOT_MEASURED
        text = (f"activations {_r_text(acts)}; params {_r_text(params)}; r(acts) - r(params) = {diff:.2f} "
                f"95% CI [{d_low:.2f}, {d_high:.2f}] (paired bootstrap)")
        return Outcome(verdict, text, n, _keys(inputs, setup, "memory_key"),
                       f"r(acts) = {acts['pearson']:.2f} [{acts['pearson_ci_low']:.2f}, "
                       f"{acts['pearson_ci_high']:.2f}]; minus r(params): {diff:.2f} [{d_low:.2f}, {d_high:.2f}]")

    return _measured_claim(inputs, "Activations, not parameters, drive the memory footprint",
                           "Table IV: PPMCC(params, footprint) 0.24, PPMCC(activations, footprint) 0.75",
                           f"r(activations, footprint) >= {STRONG_R} and r(activations) - r(params) > 0, each "
                           "judged on its 95% bootstrap CI", check)


# ---- comparisons of measurements -------------------------------------------------------------------


def _rows(inputs: Inputs, setup: str, batch: int | None = None) -> pd.DataFrame:
    rows = measured.ok(inputs.frame[inputs.frame["setup"] == setup])
    return rows if batch is None else rows[rows["batch"] == batch]


def _name(inputs: Inputs, network: str) -> str:
    return inputs.paper_names.get(network, network)


def _estimates(rows: pd.DataFrame, value: Callable[[pd.Series], Estimate]) -> dict[str, tuple[Estimate, str]]:
    """network -> (estimate, record key), one record per network (the largest value where several)."""
    out: dict[str, tuple[Estimate, str]] = {}
    for _, row in rows.iterrows():
        est = value(row)
        if np.isfinite(est.value) and (row["network"] not in out or est.value > out[row["network"]][0].value):
            out[row["network"]] = (est, row["key"])
    return out


def _extreme(values: dict[str, tuple[Estimate, str]], network: str, highest: bool) -> str:
    """Whether ``network`` is decisively the highest (or lowest) of ``values``."""
    own = values[network][0]
    sides = [compare(own, other) * (1 if highest else -1) for n, (other, _) in values.items() if n != network]
    return NOT_REPRODUCED if -1 in sides else INCONCLUSIVE if 0 in sides else REPRODUCED


def claim_efficiency_extremes(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        rows = _rows(inputs, setup, measured.ENERGY_BATCH).dropna(subset=["energy.gmacs_per_joule"])
        eff = _estimates(rows, uncertainty.efficiency)
        missing = {"alexnet", "mobilenet_v1"} - set(eff)
        if len(eff) < MIN_NETWORKS or missing:
            return Outcome(NOT_MEASURED, f"energy efficiency at B={measured.ENERGY_BATCH} for {len(eff)} "
                                         f"network(s)" + (", AlexNet or MobileNet missing" if missing else ""),
                           len(eff))
        verdict = combine([_extreme(eff, "alexnet", True), _extreme(eff, "mobilenet_v1", False)])
        most = max(eff, key=lambda n: eff[n][0].value)
        least = min(eff, key=lambda n: eff[n][0].value)
        text = (f"AlexNet {eff['alexnet'][0].text()}, MobileNet {eff['mobilenet_v1'][0].text()} GMACs/J; highest "
                f"{_name(inputs, most)}, lowest {_name(inputs, least)} (n={len(eff)})")
        return Outcome(verdict, text, len(eff), tuple(k for _, k in eff.values()),
                       f"AlexNet {eff['alexnet'][0].text('.3g')}, MobileNet {eff['mobilenet_v1'][0].text('.3g')} "
                       f"GMACs/J; most {_name(inputs, most)}, least {_name(inputs, least)}")

    return _measured_claim(inputs, "AlexNet is the most and MobileNet the least energy-efficient",
                           "Table III: AlexNet 75.94, MobileNet 1.65 GMACs/J (B=4)",
                           "AlexNet's efficiency above every other network's and MobileNet's below, each by more "
                           "than their combined uncertainty", check)


def claim_mobilenet_lowest_throughput(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        rows = _rows(inputs, setup).dropna(subset=["latency.median_s"])
        best = measured.best_throughput_batch(rows)
        fps = _estimates(rows[rows["key"].isin(best["key"])], uncertainty.throughput)
        if len(fps) < MIN_NETWORKS or "mobilenet_v1" not in fps:
            return Outcome(NOT_MEASURED, f"throughput for {len(fps)} network(s)", len(fps))
        low = min(fps, key=lambda n: fps[n][0].value)
        text = (f"MobileNet {fps['mobilenet_v1'][0].text()} FPS, lowest {_name(inputs, low)} "
                f"{fps[low][0].text()} FPS (n={len(fps)})")
        return Outcome(_extreme(fps, "mobilenet_v1", False), text, len(fps), tuple(k for _, k in fps.values()),
                       f"MobileNet {fps['mobilenet_v1'][0].text('.3g')} FPS; lowest {_name(inputs, low)} "
                       f"{fps[low][0].text('.3g')}")

    return _measured_claim(inputs, "MobileNet has the lowest throughput", "Table III: 42 FPS, the lowest",
                           "MobileNet's best-batch throughput below every other network's by more than their "
                           "combined uncertainty", check)


def _footprint(row: pd.Series) -> Estimate:
    return uncertainty.memory(measured.footprint_of(row))


def claim_gsqnxt_memory(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        rows = _rows(inputs, setup, measured.MEMORY_BATCH)
        rows = rows[rows["network"].isin(["alexnet", "1.0-G-SqNxt-23"])]
        foot = _estimates(rows[measured.footprint_bytes(rows).notna()], _footprint)
        if set(foot) != {"alexnet", "1.0-G-SqNxt-23"}:
            return Outcome(NOT_MEASURED, "AlexNet and 1.0-G-SqNxt-23 not both measured at B=1", len(foot))
        (g, g_key), (a, a_key) = foot["1.0-G-SqNxt-23"], foot["alexnet"]
        side = compare(g, a)
        verdict = REPRODUCED if side > 0 else NOT_REPRODUCED if side < 0 else INCONCLUSIVE
        g_mib, a_mib = g.scaled(1 / measured.MIB).text(".0f"), a.scaled(1 / measured.MIB).text(".0f")
        return Outcome(verdict, f"1.0-G-SqNxt-23 {g_mib} MiB vs AlexNet {a_mib} MiB at B=1", 2, (g_key, a_key),
                       f"{g_mib} vs {a_mib} MiB")

    return _measured_claim(inputs, "1.0-G-SqNxt-23 (112x fewer params) needs more memory than AlexNet at B=1",
                           "Table III: 1019 MB vs 1015 MB",
                           "footprint of 1.0-G-SqNxt-23 above AlexNet's at B=1 by more than their combined "
                           "uncertainty (memory noise model)", check)


def claim_batch_barely_helps_mobilenet(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        rows = _rows(inputs, setup).dropna(subset=["latency.median_s"])
        speedups: dict[str, tuple[Estimate, int, tuple[str, str]]] = {}
        for network, group in rows.groupby("network"):
            one, large = group[group["batch"] == 1], group[group["batch"] >= LARGE_BATCH]
            if not one.empty and not large.empty:
                big = large.loc[large["batch"].idxmax()]
                s = uncertainty.ratio(uncertainty.per_image_s(one.iloc[0]), uncertainty.per_image_s(big))
                speedups[str(network)] = (s, int(big["batch"]), (one.iloc[0]["key"], big["key"]))
        if "mobilenet_v1" not in speedups:
            return Outcome(NOT_MEASURED, f"MobileNet not measured at B=1 and at a batch >= {LARGE_BATCH}")
        s, b, keys = speedups["mobilenet_v1"]
        verdict = REPRODUCED if s.high < BARELY_HELPS_SPEEDUP else \
            NOT_REPRODUCED if s.low >= BARELY_HELPS_SPEEDUP else INCONCLUSIVE
        others = ", ".join(f"{_name(inputs, n)} {v[0].value:.1f}x" for n, v in speedups.items() if n != "mobilenet_v1")
        return Outcome(verdict, f"MobileNet per-image speedup B=1 -> B={b}: {s.text('.2f')}x"
                       + (f"; others: {others}" if others else ""), 2, keys, f"{s.text('.2f')}x (B=1 to {b})")

    return _measured_claim(inputs, "A larger batch barely helps MobileNet",
                           "29.4 ms at B=1 vs 23.6 ms per image at B=90 (1.25x)",
                           f"per-image speedup from B=1 to the largest batch >= {LARGE_BATCH} below "
                           f"{BARELY_HELPS_SPEEDUP:g}x, judged on its interval", check)


def claim_inception_oom(inputs: Inputs) -> list[Claim]:
    def check(setup: str) -> Outcome:
        f = inputs.frame
        rows = f[(f["setup"] == setup) & (f["batch"] == OOM_BATCH) & f["network"].isin(["inception_v2", "googlenet"])]
        rows = rows[rows["status"].isin(["ok"]) | measured.measured_oom(rows)]
        status = dict(zip(rows["network"], rows["status"], strict=True))
        keys = tuple(rows["key"])
        if set(status) != {"inception_v2", "googlenet"}:
            return Outcome(NOT_MEASURED, f"Inception-V2 and GoogLeNet not both run at B={OOM_BATCH} (inferred "
                                         "OOMs do not count)", len(status), keys)
        text = f"B={OOM_BATCH}: Inception-V2 {status['inception_v2']}, GoogLeNet {status['googlenet']}"
        if status["googlenet"] == "oom":
            return Outcome(NOT_REPRODUCED, text, 2, keys, text)
        if status["inception_v2"] == "oom":
            return Outcome(REPRODUCED, text, 2, keys, text)
        foot = {n: _footprint(r) for n, r in rows.set_index("network").iterrows()}
        if not all(np.isfinite(e.value) for e in foot.values()):
            return Outcome(NOT_MEASURED, text + "; both ran but a peak memory is missing", 2, keys)
        p100 = Estimate(P100_MEMORY_BYTES, P100_MEMORY_BYTES, P100_MEMORY_BYTES, "P100 capacity")
        inc, goo = compare(foot["inception_v2"], p100), compare(p100, foot["googlenet"])
        verdict = REPRODUCED if inc > 0 and goo > 0 else NOT_REPRODUCED if inc < 0 or goo < 0 else INCONCLUSIVE
        peaks = ", ".join(f"{_name(inputs, n)} {e.value / measured.MIB:.0f} MiB" for n, e in foot.items())
        return Outcome(verdict, f"{text}; both ran: peak {peaks} against the P100's 12193 MiB", 2, keys,
                       f"both ran: {peaks}")

    claims = _measured_claim(inputs, "Inception-V2 runs out of memory at B=128 where GoogLeNet does not",
                             "on a 12193 MB P100", f"at B={OOM_BATCH}: Inception-V2 a measured 'oom' and GoogLeNet "
                             "'ok'; where both ran: Inception-V2's peak above 12193 MiB and GoogLeNet's below, "
                             "by more than the memory noise", check, cpu_analogue=False)
    f = inputs.frame
    inferred = 0 if f.empty else int(((f["status"] == "oom") & f["inferred_from"].notna()
                                      & (f["device_kind"] == "gpu")).sum())
    if inferred:
        claims[0] = Claim(**{**claims[0].__dict__, "left_out": ", ".join(
            filter(None, [claims[0].left_out, f"{inferred} inferred OOM record(s)"]))})
    return claims


# ---- kernel claims ---------------------------------------------------------------------------------


def _kernel_share(profiles: pd.DataFrame, setup: str, network: str,
                  families: tuple[str, ...]) -> tuple[float, str] | None:
    rows = profiles[(profiles["setup"] == setup) & (profiles["network"] == network)]
    if rows.empty:
        return None
    return float(rows[rows["family"].isin(families)]["pct"].sum()), str(rows["key"].iloc[0])


def _kernel_claim(inputs: Inputs, claim: str, paper: str, rule: str, check: Callable[[pd.DataFrame, str], Outcome]
                  ) -> list[Claim]:
    """Kernel claims are about GPU kernels: only GPU kernel profiles decide them; CPU profiles are listed."""
    profiles = tables.gpu_profiles(inputs.kernel_shares)
    setups = sorted(profiles["setup"].unique()) if not profiles.empty else []
    k = inputs.kernel_shares
    cpu = [] if k.empty else sorted(k.loc[k["device_kind"] == "cpu", "setup"].unique())
    quoted = [f"{s}: CPU profile(s), no GPU kernels (decide nothing)" for s in cpu]
    row = scoped(claim, paper, rule, GPU, setups, lambda s: check(profiles, s), "", quoted)
    if not setups:
        row = Claim(**{**row.__dict__, "evidence": row.evidence.replace("no GPU results",
                                                                       "no GPU kernel profile in the results"),
                       "notes": tuple(n.replace("no GPU results", "no GPU kernel profile in the results")
                                      for n in row.notes)})
    return [row]


def claim_mobilenet_gemv(inputs: Inputs) -> list[Claim]:
    def check(profiles: pd.DataFrame, setup: str) -> Outcome:
        share = _kernel_share(profiles, setup, "mobilenet_v1", ("gemv2T", "gemv2N"))
        if share is None:
            return Outcome(NOT_MEASURED, "MobileNet not profiled")
        pct, key = share
        verdict = REPRODUCED if pct > GEMV_MAJORITY_PCT else NOT_REPRODUCED
        return Outcome(verdict, f"gemv2T + gemv2N = {pct:.1f}% of kernel time", 1, (key,),
                       f"gemv {pct:.1f}% of kernel time (one capture)")

    return _kernel_claim(inputs, "MobileNet spends most GPU time in gemv kernels",
                         "Table III: gemv2T 55.47% + gemv2N 30.5% of inference time",
                         f"gemv2T + gemv2N > {GEMV_MAJORITY_PCT:g}% of kernel time (GPU profile)", check)


def claim_squeezenet_no_cublas(inputs: Inputs) -> list[Claim]:
    def check(profiles: pd.DataFrame, setup: str) -> Outcome:
        shares = {n: _kernel_share(profiles, setup, n, CUBLAS_FAMILIES) for n in ("squeezenet_v1.0", "squeezenet_v1.1")}
        missing = [_name(inputs, n) for n, s in shares.items() if s is None]
        text = ", ".join(f"{_name(inputs, n)} {s[0]:.2f}%" for n, s in shares.items() if s is not None)
        if missing:
            return Outcome(NOT_MEASURED, f"{' and '.join(missing)} not profiled (the rule needs both)"
                           + (f"; gemv2T + gemv2N + gemmk1: {text}" if text else ""),
                           2 - len(missing), tuple(s[1] for s in shares.values() if s is not None))
        ok = all(s is not None and s[0] < NO_CUBLAS_PCT for s in shares.values())
        return Outcome(REPRODUCED if ok else NOT_REPRODUCED, f"gemv2T + gemv2N + gemmk1: {text}", 2,
                       tuple(s[1] for s in shares.values() if s is not None), f"cuBLAS kernels: {text}")

    return _kernel_claim(inputs, "The SqueezeNet family uses no cuBLAS gemv/gemmk1 kernels",
                         "Table III: 0% gemv2T, gemv2N and gemmk1 for SqueezeNet-V1.0 and V1.1",
                         f"gemv2T + gemv2N + gemmk1 < {NO_CUBLAS_PCT:g}% of kernel time for both V1.0 and V1.1 "
                         "(GPU profiles of one setup)", check)


# ---- analyzer claims -------------------------------------------------------------------------------


def claim_table2(inputs: Inputs) -> list[Claim]:
    from harness import zoo
    from harness.report.design import paper_rows, zoo_analysis

    rows = paper_rows()
    cells = [(n, c) for n in zoo.zoo_names() for c in table2_cells(zoo_analysis(n).totals, rows[zoo.paper_name(n)])]
    misses = [f"{zoo.paper_name(n)} {TABLE2_COLUMNS[c.column]} {c.ours} vs {c.paper}" for n, c in cells
              if not c.matches]
    evidence = f"{len(cells) - len(misses)} of {len(cells)} cells equal as printed" + (
        ": differ: " + ", ".join(misses) if misses else "")
    return [Claim("Table II (MACs, params, activations and their ratios) follows from the prototxts", "Table II",
                  ANALYZER, NOT_REPRODUCED if misses else REPRODUCED, evidence,
                  "all 72 cells equal to the paper's as printed (see 'Table II' rule)", len(zoo.zoo_names()),
                  figure=f"{len(cells) - len(misses)} of {len(cells)} cells equal as printed")]


def claim_acts_exceed_params(inputs: Inputs) -> list[Claim]:
    t = inputs.table2
    ratio = dict(zip(t["network"], t["acts/params exact"], strict=True))
    below = sorted(n for n, r in ratio.items() if r < 1)
    compact = {n: r for n, r in ratio.items() if n != "AlexNet"}
    evidence = (f"acts/params < 1 only for: {', '.join(below) or 'none'}; compact networks range "
                f"{min(compact.values()):.2f} to {max(compact.values()):.2f}")
    return [Claim("Except AlexNet, every network has more activations than parameters",
                  "Table II; acts/params of the compact networks 1.4 to 32.8", ANALYZER,
                  REPRODUCED if below == ["AlexNet"] else NOT_REPRODUCED, evidence,
                  "acts/params < 1 for AlexNet alone (exact counts)", len(ratio),
                  figure=f"below 1 only for {', '.join(below) or 'none'}; compact networks "
                         f"{min(compact.values()):.2f} to {max(compact.values()):.2f}")]


def claim_factorisation(inputs: Inputs) -> list[Claim]:
    f = inputs.factorisation
    change, equal = f.change_pct(), f.at_paper_precision()
    evidence = ", ".join(f"{k} {change[k]:+.2f}% (paper {FIG2_PAPER_CHANGE_PCT[k]:+g}%)" for k in change) + \
        f"; equal as printed: {sum(equal.values())} of {len(equal)}. {FIG2_FITTED[0].upper()}{FIG2_FITTED[1:]}."
    return [Claim("Factorising a 5x5 conv into two 3x3 convs cuts params and MACs by half but doubles "
                  "activations", "params -52%, MACs -51.3%, activations +102%, MACs/param +1.34%, MACs/activation "
                  "-61%", ANALYZER, FITTED if all(equal.values()) else NOT_REPRODUCED, evidence,
                  "the five changes equal the paper's as printed; the channel counts were fitted to them", 2,
                  figure=f"{sum(equal.values())} of {len(equal)} changes equal as printed (counts fitted to them)")]


def checklist(inputs: Inputs) -> list[Claim]:
    return [
        *claim_table2(inputs),
        *claim_acts_exceed_params(inputs),
        *claim_factorisation(inputs),
        *claim_acts_drive_memory(inputs),
        *_correlation_claim(inputs, "Memory-footprint/model-size tracks activations/params",
                            "Fig. 3: PPMCC 0.96; AlexNet 4.16, 1.0-G-SqNxt-23 443", "activations/params",
                            "memory footprint/model size", "memory_key", strong=True),
        *_correlation_claim(inputs, "Energy efficiency tracks MACs/activation", "Fig. 4: PPMCC 0.88",
                            "MACs/activations", "energy efficiency", "energy_key", strong=True),
        *_correlation_claim(inputs, "Energy efficiency does not track MACs/param", "Fig. 4: PPMCC -0.18",
                            "MACs/params", "energy efficiency", "energy_key", strong=False),
        *claim_efficiency_extremes(inputs),
        *claim_gsqnxt_memory(inputs),
        *claim_mobilenet_gemv(inputs),
        *claim_mobilenet_lowest_throughput(inputs),
        *claim_squeezenet_no_cublas(inputs),
        *claim_batch_barely_helps_mobilenet(inputs),
        *claim_inception_oom(inputs),
    ]


def frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": c.claim, "scope": c.scope, "verdict": c.verdict, "n": c.n, "paper": c.paper,
                          "evidence": c.evidence, "rule": c.rule, "left out": c.left_out} for c in claims])


def records_frame(claims: list[Claim]) -> pd.DataFrame:
    """Every record each verdict used: one row per (claim, scope, record key)."""
    rows = [{"claim": c.claim, "scope": c.scope, "verdict": c.verdict, "record": key} for c in claims
            for key in c.records]
    return pd.DataFrame(rows, columns=["claim", "scope", "verdict", "record"])
