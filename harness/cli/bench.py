"""``harness bench``: measure latency, throughput, memory, power and energy over a sweep, store every
configuration as soon as it is measured, and print a Table III-style summary and the backends'
comparison (each backend/mode relative to Caffe, or to PyTorch eager fp32 where Caffe did not run)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.cli.argtypes import backend_names, output_path, positive_int_list
from harness.errors import HarnessError
from harness.measure.contention import CONTENTION_MODES, DEFAULT_RETRIES, ContentionPolicy
from harness.measure.sweep import CPU_BATCHES, PAPER_GPU_BATCHES, SweepSpec
from harness.measure.sweep_file import load_sweep_yaml
from harness.results.records import Config, Record
from harness.results.schema import parse_timestamp
from harness.results.store import ResultsStore
from harness.worker_start import FORK_SERVER_ENV

DEFAULT_OUT = "results"
RESULTS_DIR_ENV = "HARNESS_RESULTS_DIR"  # set to /results in the Docker images (docs/docker.md)


def default_out() -> Path:
    return Path(os.environ.get(RESULTS_DIR_ENV) or DEFAULT_OUT)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="*", default=[],
                   help="'all' (the paper's 12 networks), zoo names or prototxt paths")
    p.add_argument("--backend", action="append", default=None, metavar="NAME",
                   help="backend(s), repeatable or comma-separated (default: every one available on the device)")
    p.add_argument("--device", action="append", default=None, metavar="DEV",
                   help="cpu or cuda:N, repeatable (default: cuda:0 when NVML sees a GPU, else cpu)")
    p.add_argument("--batch", type=positive_int_list, default=None, metavar="B,B,...",
                   help=f"batch sizes (default: CPU {_join(CPU_BATCHES)}; GPU {_join(PAPER_GPU_BATCHES)})")
    p.add_argument("--mode", action="append", default=None, metavar="NAME[,NAME...]",
                   help="backend modes (e.g. eager-fp32,tf32,compile); each applies to the selected backends "
                        "that offer it; 'all': every mode of every backend (default: each backend's default)")
    p.add_argument("--config", type=Path, default=None, metavar="SWEEP.yaml",
                   help="sweep file (networks, backends, batches, devices, modes, seed, settings); "
                        "command-line options override it")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="measurement setting, e.g. min_s=2 warmup_iters=5 min_window_s=10 poll_hz=100")
    p.add_argument("--out", type=output_path, default=default_out(), metavar="DIR",
                   help=f"results directory (default: ${RESULTS_DIR_ENV} when set, else {DEFAULT_OUT}); "
                        "re-running resumes")
    p.add_argument("--force", action="store_true", help="measure configurations again even if they have results")
    p.add_argument("--executor", default="local", metavar="NAME",
                   help="where each configuration's worker runs: local (default: one after another here), "
                        "multi-gpu (one lane per GPU of this machine), slurm (a Slurm job array; docs/cluster.md)")
    p.add_argument("--no-wait", action="store_true",
                   help="slurm: print the job id and return once the sweep is submitted")
    slurm = p.add_argument_group("slurm (--executor slurm; also under 'slurm:' in the sweep file)")
    slurm.add_argument("--slurm-partition", metavar="NAME", default=None)
    slurm.add_argument("--slurm-account", metavar="NAME", default=None)
    slurm.add_argument("--slurm-time", metavar="TIME", default=None,
                       help="time limit of each task: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]] (default 60)")
    slurm.add_argument("--slurm-gpus-per-task", metavar="N", type=int, default=None,
                       help="--gres gpu:N for each task (default: 1 when a cuda device is named, else none)")
    slurm.add_argument("--slurm-exclusive", action="store_true", default=None,
                       help="whole nodes (energy runs: NVML's counter and RAPL see the whole GPU and socket)")
    p.add_argument("--contention", choices=CONTENTION_MODES, default="warn",
                   help="a window disturbed by other processes (docs/cluster.md): warn (keep it, flagged; "
                        "default) or retry (measure again in a fresh worker, then keep the flag)")
    p.add_argument("--no-fork-server", action="store_true",
                   help="start every worker as a fresh interpreter instead of forking it from a warm parent that "
                        f"has imported its framework (also {FORK_SERVER_ENV}=0; docs/measurement.md)")
    p.add_argument("--contention-retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                   help="how many times --contention retry measures a disturbed configuration again "
                        f"(default {DEFAULT_RETRIES})")


def _join(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


def _split(values: list[str] | None, option: str) -> list[str] | None:
    """Repeated or comma-separated values; an option given with nothing in it is a usage error."""
    if values is None:
        return None
    names = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if not names:
        raise HarnessError(f"{option} needs a value (got an empty one)")
    return names


def _setting(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise HarnessError(f"--set expects KEY=VALUE, got '{text}'")
    return key.strip(), yaml.safe_load(value)


def build_spec(args: argparse.Namespace, data: dict[str, Any]) -> SweepSpec:
    """The sweep as the user asked for it (``data``: the sweep file's, if any); what they left open
    (devices, backends, batches) stays empty, for the executor to decide where its workers run
    (:func:`harness.executors.base.plan_here`). A name given twice counts once."""
    from harness import zoo
    from harness.measure.devices import parse_device

    networks = args.networks or data.get("networks") or []
    if not networks:
        raise HarnessError("name networks to benchmark, 'all', or give --config with a 'networks' list")
    if "all" in networks:
        networks = zoo.zoo_names()
    for network in networks:
        zoo.resolve(network)  # an unknown name or a bad prototxt is an error before anything runs
    networks = list(dict.fromkeys(networks))
    devices = list(dict.fromkeys(_split(args.device, "--device") or data.get("devices") or []))
    for device in devices:
        parse_device(device)
    batches = args.batch or data.get("batches") or []
    backends = _split(args.backend, "--backend") or data.get("backends") or []
    if backends:
        backends = list(dict.fromkeys(backend_names(",".join(backends))))
    settings = dict(data.get("settings") or {})
    settings.update(dict(_setting(s) for s in args.settings))
    spec = SweepSpec(networks=list(networks), backends=backends, batches=list(batches), devices=devices,
                     modes=_split(args.mode, "--mode") or data.get("modes") or None, seed=int(data.get("seed", 0)),
                     settings=settings)
    for device in devices or ["cpu", "cuda:0"]:
        spec.window_settings(device)  # reject unknown settings before anything runs
    return spec


def executor_options(args: argparse.Namespace, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The executor's own options and where they came from: --slurm-* over the sweep file's ``slurm:``
    (which other executors ignore, so one sweep file serves them all)."""
    given = {"partition": args.slurm_partition, "account": args.slurm_account, "time": args.slurm_time,
             "gpus_per_task": args.slurm_gpus_per_task, "exclusive": args.slurm_exclusive}
    options = {k: v for k, v in given.items() if v is not None}
    where = "--slurm-*"
    if args.executor == "slurm" and data.get("slurm"):
        options = {**data["slurm"], **options}
        where = f"{args.config}: 'slurm' / --slurm-*"
    return options, where


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.cli.console import stdout_console
    from harness.executors import SweepRequest, get_executor

    data = load_sweep_yaml(args.config) if args.config else {}
    options, where = executor_options(args, data)
    executor = get_executor(args.executor).configure(options, where)
    if args.no_wait and not executor.detaches:
        raise HarnessError(f"--no-wait applies to --executor slurm, not {args.executor}")
    if data.get("layer_profiles") and args.executor != "local":
        raise HarnessError(f"{args.config}: 'layer_profiles' runs with --executor local (layer profiles are taken "
                           f"one after another on this machine), not {args.executor}")
    if args.contention_retries < 0:
        raise HarnessError(f"--contention-retries must be >= 0, got {args.contention_retries}")
    spec = build_spec(args, data)
    store = ResultsStore(args.out)
    store.check_writable()  # an unwritable --out is an error before anything is measured
    console = Console(stderr=True, highlight=False)
    started = time.monotonic()
    counts: dict[str, int] = {}
    flagged: list[str] = []
    keys: set[str] = set()
    measured: list[Record] = []  # what this call measured (the store may hold an earlier run's final record)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("bench", total=None)  # the executor says how many, once it has planned

        def on_start(config: Config) -> None:
            progress.update(task, description=escape(f"{config.network} {config.backend} {config.mode} "
                                                     f"{config.device} B={config.batch}"))

        def on_done(record: Record | None, config: Config) -> None:
            keys.add(config.key())
            if record is not None:
                measured.append(record)
            status = record.status if record else "skipped"
            counts[status] = counts.get(status, 0) + 1
            if record is not None and record.contended:
                flagged.append(config.key())
            if record is not None and record.status != "ok":
                progress.console.print(f"{config.key()}: {record.status}: {record.message}", markup=False,
                                       soft_wrap=True)
            progress.advance(task)

        def on_note(text: str) -> None:
            progress.console.print(text, markup=False, soft_wrap=True)  # whole lines: job ids, commands

        def on_total(n: int) -> None:
            progress.update(task, total=n)

        policy = ContentionPolicy(args.contention, args.contention_retries)
        request = SweepRequest(spec, args.out, force=args.force, on_start=on_start, on_done=on_done,
                               contention=policy, wait=not args.no_wait, on_note=on_note, on_total=on_total)
        with _fork_server(not args.no_fork_server):
            executor.run(request)
    elapsed = time.monotonic() - started  # the sweep's; layer profiles after it are timed on their own
    if not request.wait:
        return 0
    records = [r for r in store.records() if r.key in keys]
    stdout_console().print(summary_table(records))
    comparison = comparison_text(records)
    if comparison:
        print(comparison)
    console.print(f"{len(keys)} configurations in {elapsed:.1f} s: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + (f"; {len(flagged)} measured while other processes used the GPU or CPU (flagged contended, "
                     "left out of the report's verdicts; docs/cluster.md)" if flagged else "")
                  + f"; results in {store.dir}", markup=False)
    overhead = sweep_overhead(measured, elapsed)
    if overhead.windows:
        console.print(overhead.line(), markup=False, soft_wrap=True)
    if data.get("layer_profiles"):  # after the sweep's summary, which a failing profile must not hold back
        with _fork_server(not args.no_fork_server):  # their workers start as the sweep's did
            _layer_profiles(spec, args, console)
    attempted = sum(n for status, n in counts.items() if status != "skipped")
    # Exit 1 only when configurations ran and none was measured; an OOM at a large batch is a result.
    return 1 if attempted and not counts.get("ok") else 0


def _layer_profiles(spec: SweepSpec, args: argparse.Namespace, console: Any) -> None:
    """The sweep file's ``layer_profiles: true``: a layer profile of every configuration of the sweep, each in
    its own worker after the timing runs, into the same results directory (``harness layers`` reads them)."""
    from harness.layertime.record import LayerProfile
    from harness.layertime.run import run_profiles

    def on_done(profile: LayerProfile | None, config: Config) -> None:
        if profile is not None and profile.status != "ok":
            console.print(f"{config.key()} (layer profile): {profile.status}: {profile.message}", markup=False,
                          soft_wrap=True)

    run = run_profiles(spec, args.out, args.force, on_done=on_done)
    console.print(f"layer profiles: {len(run.profiles)} taken, {len(run.skipped)} already in {args.out} "
                  "(`harness layers` or `harness report` shows them)", markup=False)


@contextlib.contextmanager
def _fork_server(wanted: bool) -> Iterator[None]:
    """``--no-fork-server`` as the environment says it (HARNESS_FORK_SERVER=0), for this sweep only: where the
    workers start reads it, a Slurm task on its node included (sbatch passes the environment on)."""
    if wanted:
        yield
        return
    earlier = os.environ.get(FORK_SERVER_ENV)
    os.environ[FORK_SERVER_ENV] = "0"
    try:
        yield
    finally:
        if earlier is None:
            del os.environ[FORK_SERVER_ENV]
        else:
            os.environ[FORK_SERVER_ENV] = earlier


@dataclass
class SweepOverhead:
    """How much of a sweep's wall time its measurement windows took, and what each configuration's start-up
    cost by backend (docs/measurement.md, "Start-up")."""

    windows: int  # configurations that ran a window
    window_s: float
    wall_s: float
    lanes: int
    startup_s: dict[str, float]  # backend -> median start-up per configuration

    @property
    def efficiency(self) -> float:
        return self.window_s / (self.wall_s * self.lanes) if self.wall_s > 0 else 0.0

    def line(self) -> str:
        lanes = f" x {self.lanes} lanes" if self.lanes > 1 else ""
        startup = ", ".join(f"{b} {s:.2f} s" for b, s in sorted(self.startup_s.items()))
        return (f"sweep efficiency {self.efficiency:.2f}: measurement windows {self.window_s:.1f} s of "
                f"{self.wall_s:.1f} s{lanes}" + (f"; median start-up per configuration: {startup}" if startup else ""))


def window_s(record: Record) -> float:
    """A record's measurement window: idle baseline, warm-up and timed phase (0 without a measurement)."""
    if record.latency is None:
        return 0.0
    idle = (record.metadata.get("settings") or {}).get("idle_s") or 0.0
    return float(idle) + record.latency.warmup_s + record.latency.total_s


def sweep_overhead(records: list[Record], wall_s: float) -> SweepOverhead:
    """Windows over wall time (times the lanes that ran side by side: each results shard is one lane), and
    per backend the median start-up of a configuration: from the end of the configuration before it in its
    lane to its own end, less its window - a worker's start, its load, its exit and the harness's own work
    in between. A lane's first configuration also carries the sweep's set-up and is left out."""
    ran = [(end, r) for r in records
           if r.inferred_from is None and r.started_at and (end := _end_s(r)) is not None]
    lanes: dict[str | None, list[tuple[float, Record]]] = {}
    for end, record in sorted(ran, key=lambda end_record: end_record[1].started_at or ""):
        lanes.setdefault(record.placement.shard if record.placement else None, []).append((end, record))
    gaps: dict[str, list[float]] = {}
    for lane in lanes.values():
        for (end_before, _), (end, record) in itertools.pairwise(lane):
            gaps.setdefault(record.config.backend, []).append(max(end - end_before - window_s(record), 0.0))
    return SweepOverhead(windows=sum(1 for _, r in ran if r.latency is not None),
                         window_s=sum(window_s(r) for _, r in ran), wall_s=wall_s, lanes=max(len(lanes), 1),
                         startup_s={b: statistics.median(v) for b, v in gaps.items()})


def _end_s(record: Record) -> float | None:
    stamp = parse_timestamp(record.finished_at or "")
    return stamp.timestamp() if stamp is not None else None


def summary_table(records: list[Record]):  # -> rich.table.Table
    """Table III-style: inference time and memory at B=1, energy efficiency at B=4, best throughput."""
    from rich.table import Table

    groups: dict[tuple[str, str, str, str], dict[int, Record]] = {}
    for r in records:
        c = r.config
        groups.setdefault((c.network, c.backend, c.mode or "default", c.device), {})[c.batch] = r
    table = Table(title="Table III-style summary (B=1 latency and memory; efficiency at B=4)")
    for column in ("network", "backend", "device", "inference ms (B=1)", "memory MB (B=1)",
                   "GMACs/J (B=4)", "best FPS (B)", "not ok"):
        label = column in ("network", "backend", "device")
        table.add_column(column, justify="left" if label or column == "not ok" else "right", no_wrap=label)
    for (network, backend, mode, device), by_batch in groups.items():
        one, four = by_batch.get(1), by_batch.get(4)
        ok = [r for r in by_batch.values() if r.status == "ok" and r.latency]
        best = max(ok, key=lambda r: r.latency.throughput_fps, default=None)  # type: ignore[union-attr]
        bad = ", ".join(f"B={b} {r.status}" for b, r in sorted(by_batch.items()) if r.status != "ok")
        table.add_row(network, backend if mode == "default" else f"{backend} ({mode})", device,
                      _fmt(one.latency.median_s * 1e3 if one and one.latency else None, ".2f"),
                      _fmt(_footprint_mb(one), ".0f"),
                      _fmt(four.energy.gmacs_per_joule if four and four.energy else None, ".2f"),
                      f"{best.latency.throughput_fps:.0f} ({best.config.batch})" if best and best.latency else "-",
                      bad)
    return table


def comparison_text(records: list[Record]) -> str | None:
    """The comparison of issue 5 (harness.report.compare), or None when fewer than two backend/modes ran."""
    from harness.report.compare import comparison_table, format_comparison

    if len({(r.config.backend, r.config.mode) for r in records}) < 2:
        return None
    return ("Backends compared (speedup = baseline latency / latency; baseline: Caffe, else PyTorch eager "
            "fp32)\n" + format_comparison(comparison_table(records)))


def _footprint_mb(record: Record | None) -> float | None:
    """Device memory used as nvidia-smi shows it (the paper's figure); host peak RSS on CPU."""
    if record is None or record.status != "ok":
        return None
    value = record.memory.device_used_peak_bytes or record.memory.host_rss_peak_bytes
    return None if value is None else value / 2**20


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
