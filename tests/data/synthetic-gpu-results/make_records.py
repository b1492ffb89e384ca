"""Write the SYNTHETIC GPU record set beside this file (README.md says what it is for and what it is not).

    python tests/data/synthetic-gpu-results/make_records.py     (from the repository root)

Every figure here is made up, chosen so that the report's GPU-only logic meets every verdict kind; nothing is a
measurement. The records say so: hardware "SYNTHETIC GPU (not a measurement)", host "synthetic", metadata
"synthetic": true, and the profiles "synthetic": true.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import zoo
from harness.analysis.analyzer import analysis_of
from harness.kernels.profile_record import CAPTURES_DIR, profile_stem, profiles_dir, write_profile
from harness.kernels.profile_run import build_record
from harness.results.median import median_interval
from harness.results.records import Config, EnergyFigures, LatencyFigures, MemoryFigures, Placement, Record
from harness.results.store import RESULTS_FILE, ResultsStore

HERE = Path(__file__).resolve().parent
PROFILES = HERE.parents[2] / "kernels_profiles"
GPU = "SYNTHETIC GPU (not a measurement)"
MIB = 2**20
STAMP = "2026-11-29T00:00:00.000+00:00"


def totals(network: str):
    return analysis_of(zoo.zoo_graph(network), "paper", batch=1, input_size=zoo.paper_input_size(network)).totals


def latency(median_s: float, batch: int, spread: float = 0.01) -> tuple[LatencyFigures, list[float]]:
    """Nine iterations spread +-``spread`` around the median, and the figures a timer would give them."""
    samples = [median_s * (1 + spread * k / 4) for k in range(-4, 5)]
    low, high, coverage = median_interval(samples)
    total = sum(samples)
    figures = LatencyFigures(len(samples), total, median_s, total / len(samples), samples[-2], samples[0],
                             samples[-1], median_s * spread / 2, low, high, coverage, 3, 3 * median_s, batch / median_s)
    return figures, samples


def record(network: str, backend: str, batch: int, status: str = "ok", median_s: float | None = None,
           footprint_mib: float | None = None, gmacs_per_j: float | None = None, **extra) -> Record:
    config = Config(network, backend, batch, "cuda:0", None, hardware=GPU)
    rec = Record(config, status, macs_per_forward=totals(network).macs * batch, started_at=STAMP, finished_at=STAMP,
                 metadata={"synthetic": True, "gpu_name": GPU, "host": "synthetic"},
                 placement=Placement("local", "synthetic", gpu_uuid="GPU-00000000-0000-0000-0000-000000000000"),
                 **extra)
    if median_s is not None:
        rec.latency, rec.latencies_s = latency(median_s, batch)
    if footprint_mib is not None:
        rec.memory = MemoryFigures(device_used_peak_bytes=int(footprint_mib * MIB), device_used_start_bytes=0)
    if gmacs_per_j is not None:
        rec.energy = EnergyFigures("nvml", 1.0, 10, power_source="nvml-instant", energy_source="counter",
                                   gmacs_per_joule=gmacs_per_j, gmacs_per_joule_unc=0.02 * gmacs_per_j)
    return rec


def caffe_records() -> list[Record]:
    """All 12 networks at B=1 and B=4 on the 'caffe' setup."""
    out = []
    for network in zoo.zoo_names():
        t = totals(network)
        # footprint: a fixed 800 MiB context plus 60 bytes per activation and 4 per parameter
        foot = 800 + (60 * t.activations + 4 * t.params) / MIB
        if network == "1.0-G-SqNxt-23":
            foot = 1019  # the paper's own pair, 4 MiB apart: within the memory noise model
        elif network == "alexnet":
            foot = 1015
        # efficiency: proportional to MACs/activation (Fig. 4's claim), 2% uncertainty
        eff = 0.2 * t.macs_per_act
        out.append(record(network, "caffe", 1, median_s=2e-3 + t.macs / 4e11, footprint_mib=foot))
        out.append(record(network, "caffe", 4, median_s=4e-3 + 4 * t.macs / 4e11, gmacs_per_j=eff))
    return out


def extra_records() -> list[Record]:
    """Batch claims, OOMs and a contended window."""
    return [
        # a larger batch barely helps MobileNet: 29.4 ms at B=1 (above), 23.6 ms per image at B=64
        record("mobilenet_v1", "caffe", 64, median_s=64 * 23.6e-3),
        # Inception-V2 runs out at B=64 (measured); B=128 is only inferred from it
        record("inception_v2", "caffe", 64, "oom", message="out of memory (synthetic)"),
        record("inception_v2", "caffe", 128, "oom", message="inferred: B=64 ran out of memory",
               inferred_from=Config("inception_v2", "caffe", 64, "cuda:0", hardware=GPU).key()),
        record("googlenet", "caffe", 128, median_s=0.2, footprint_mib=9000),
        # a second setup where both ran at B=128: a measured OOM decides there
        record("inception_v2", "pytorch", 128, "oom", message="CUDA out of memory (synthetic)"),
        record("googlenet", "pytorch", 128, median_s=0.15, footprint_mib=8000),
        # a window another process disturbed: left out of every verdict
        record("squeezenet_v1.1", "caffe", 128, median_s=0.1, footprint_mib=5000,
               contended={"reasons": ["another process used the GPU during the window (synthetic)"]}),
    ]


def mobilenet_b1_fix(records: list[Record]) -> None:
    """MobileNet's B=1 latency is the paper's 29.4 ms (so the batch claim has the paper's numbers)."""
    for rec in records:
        if rec.config.network == "mobilenet_v1" and rec.config.batch == 1:
            rec.latency, rec.latencies_s = latency(29.4e-3, 1)


def profiles() -> None:
    """GPU kernel profiles from the synthetic captures in kernels_profiles/ (a MobileNet-like forward)."""
    for network, tool, capture in (("mobilenet_v1", "ncu", "synthetic-ncu-raw.csv"),
                                   ("squeezenet_v1.0", "torch", "synthetic-kineto.json")):
        config = Config(network, "caffe", 1, "cuda:0", None, hardware=GPU)
        folder = profiles_dir(HERE) / CAPTURES_DIR / profile_stem(config, tool)
        folder.mkdir(parents=True)
        shutil.copyfile(PROFILES / capture, folder / capture)
        worker = {"warmup_iters": 3, "iterations": 1}
        rec, _ = build_record(config, tool, folder / capture, profiles_dir(HERE), worker,
                              "synthetic capture (not a profiler run)", "GPU-00000000-0000-0000-0000-000000000000",
                              [f"SYNTHETIC: kernels_profiles/{capture}, made up (kernels_profiles/README.md)"],
                              synthetic=True)
        rec.host, rec.created_at, rec.git_revision, rec.tool_version = "synthetic", STAMP, None, None
        write_profile(HERE, rec)


def main() -> None:
    (HERE / RESULTS_FILE).unlink(missing_ok=True)
    shutil.rmtree(profiles_dir(HERE), ignore_errors=True)
    records = caffe_records()
    mobilenet_b1_fix(records)
    store = ResultsStore(HERE)
    for rec in [*records, *extra_records()]:
        store.append(rec)
    profiles()


if __name__ == "__main__":
    main()
