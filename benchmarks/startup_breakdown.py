"""Where a fresh worker's start-up goes: every configuration of a small sweep run in a freshly spawned
worker process, as ``harness bench --no-fork-server`` runs it, with each phase of the worker's life timed.
(The fork server removes the interpreter start, the imports, the Caffe probe and most of the exit from
every configuration: benchmarks/sweep_overhead.py measures the two side by side.)

Run: python benchmarks/startup_breakdown.py [--network squeezenet_v1.1 --network mobilenet_v1]
     [--backend B ...] [--batch 1,4] [--repeat 1] [--cold]

Each configuration runs in ``python -m`` this file's driver under the interpreter the backend's worker
uses (pycaffe's for Caffe), with the worker's environment. The driver imports the worker module, then the
backend's framework, then runs :func:`harness.worker.run_job` (the worker's whole life) with timing
wrappers around the functions the phases consist of; a wrapper's time is exclusive of the wrapped calls
inside it, so the phases add up. The parent times what the child cannot see: the interpreter's start
(Popen to the driver's first statement) and its exit (the reply to the process's end).

Phases: interpreter start, harness imports, framework imports, network (the zoo's generator or the
prototxt parser), MACs analysis, weights (drawn, or read from / written to the cache), conversion (the
PyTorch module), ONNX export (cached per batch), Caffe probe (finding pycaffe and what it links), engine
load (session creation: InferenceSession, readNetFromCaffe, caffe.Net, module placement), first run (the
checks a backend runs once at load: ONNX Runtime's profiled run, OpenCV's placement dump), other load
(the rest of the backend's load), window (idle baseline, warm-up, timed phase: what is measured),
record (the store's append) and exit.

``--cold`` starts from an empty cache (``HARNESS_CACHE_DIR`` in a temporary folder), as a first sweep
does; by default the cache is primed by one untimed pass first, as every later sweep finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

#: what each backend's worker imports of its framework, in the order its load does
FRAMEWORKS = {"pytorch": ["torch"], "onnxruntime": ["onnxruntime"], "opencv": ["cv2"], "caffe": ["caffe"]}
#: (module, attribute path, phase[, only inside this phase]): the functions wrapped in the driver; a class
#: attribute is ``Class.name``
WRAPPED = [
    ("harness.zoo", "resolve", "network"),
    ("harness.analysis.analyzer", "analysis_of", "MACs analysis"),
    ("harness.convert.weights", "weight_set", "weights"),
    ("harness.convert.weights", "WeightSource.caffemodel", "weights"),
    ("harness.convert.weights", "WeightSource.load", "weights"),
    ("harness.measure.window", "MeasurementWindow.begin", "window"),
    ("harness.measure.window", "MeasurementWindow.measure", "window"),
    ("harness.results.store", "ResultsStore.append", "record"),
]
BACKEND_WRAPPED = {
    "pytorch": [("harness.backends.pytorch", "PyTorchSession.__init__", "other load"),
                ("harness.convert.torch_module", "build_module", "conversion")],
    "onnxruntime": [("harness.backends.onnxruntime", "OnnxRuntimeSession.__init__", "other load"),
                    ("harness.convert.onnx_export", "export_onnx", "ONNX export"),
                    ("harness.backends.onnxruntime", "OnnxRuntimeSession._session", "engine load"),
                    ("harness.backends.onnxruntime", "OnnxRuntimeSession.forward", "first run", "other load"),
                    ("harness.backends.onnxruntime", "OnnxRuntimeSession._end_profiling", "first run")],
    "opencv": [("harness.backends.opencv", "OpenCVSession.__init__", "other load"),
               ("cv2.dnn", "readNetFromCaffe", "engine load"),
               ("harness.backends.opencv", "OpenCVSession.forward", "first run", "other load")],
    "caffe": [("harness.backends.caffe.backend", "CaffeBackend.load_in_worker", "other load"),
              ("harness.backends.caffe.backend", "find_pycaffe", "Caffe probe"),
              ("harness.backends.caffe.backend", "build_details", "Caffe probe"),
              ("harness.backends.caffe.worker", "NetHolder.load", "engine load")],
}
PHASES = ["interpreter start", "harness imports", "framework imports", "network", "MACs analysis", "weights",
          "conversion", "ONNX export", "Caffe probe", "engine load", "first run", "other load", "window",
          "record", "other", "exit"]


# ---- in the driver (the worker process) ---------------------------------------------------------

class PhaseClock:
    """Exclusive time per phase: a wrapped call's time is charged to its phase minus the wrapped calls
    inside it, which are charged to theirs."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.stack: list[list[Any]] = []  # [phase, start, time spent in inner wrapped calls]

    def wrap(self, fn: Any, phase: str, inside: str | None = None) -> Any:
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if inside is not None and (not clock.stack or clock.stack[-1][0] != inside):
                return fn(*args, **kwargs)
            start = time.perf_counter()
            clock.stack.append([phase, start, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                _, began, inner = clock.stack.pop()
                spent = time.perf_counter() - began
                clock.totals[phase] += spent - inner
                if clock.stack:
                    clock.stack[-1][2] += spent

        return timed


def _patch(clock: PhaseClock, module_name: str, path: str, phase: str, inside: str | None = None) -> None:
    import importlib

    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    setattr(owner, name, clock.wrap(getattr(owner, name), phase, inside))


def drive(job_json: str, backend: str) -> dict[str, Any]:
    first = time.time()
    clock = PhaseClock()
    start = time.perf_counter()
    from harness import worker

    clock.totals["harness imports"] = time.perf_counter() - start
    start = time.perf_counter()
    for module in FRAMEWORKS[backend]:
        __import__(module)
    clock.totals["framework imports"] = time.perf_counter() - start
    start = time.perf_counter()
    for module, path, phase, *inside in WRAPPED + BACKEND_WRAPPED[backend]:
        _patch(clock, module, path, phase, *inside)
    wrapping = time.perf_counter() - start  # this benchmark's own: not the worker's
    job = worker.Job.from_json(job_json)
    start = time.perf_counter()
    record = worker.run_job(job)
    worker.ResultsStore(job.results_dir, job.writer).append(record)
    total = time.perf_counter() - start
    clock.totals["other"] = total - sum(v for k, v in clock.totals.items() if k not in ("harness imports",
                                                                                        "framework imports"))
    return {"first_statement": first, "phases": dict(clock.totals), "status": record.status,
            "message": record.message, "replied": time.time(), "wrapping": wrapping}


# ---- in the parent ------------------------------------------------------------------------------

def run_one(config: Any, results: Path, env_base: dict[str, str]) -> dict[str, Any]:
    from harness.backends.base import get_backend
    from harness.measure.sweep import SweepSpec
    from harness.worker import Job

    backend = get_backend(config.backend)
    python, python_env = backend.worker_python()
    settings = SweepSpec([config.network], [config.backend], [config.batch]).window_settings("cpu")
    job = Job(config, settings, str(results))
    env = {**env_base, **python_env, **backend.worker_env(config.device, config.mode)}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    started = time.time()
    proc = subprocess.Popen([python, "-c", f"import startup_breakdown as s, sys, json; "
                                           f"print(json.dumps(s.drive(sys.stdin.read(), {config.backend!r})))"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate(job.to_json().encode())
    ended = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{config.key()}: driver failed: {err.decode(errors='replace')[-2000:]}")
    reply = json.loads(out.decode().strip().splitlines()[-1])
    phases = reply["phases"]
    phases["interpreter start"] = reply["first_statement"] - started
    phases["exit"] = ended - reply["replied"]
    return {"config": config.key(), "backend": config.backend, "status": reply["status"],
            "message": reply["message"], "phases": phases, "wall": ended - started - reply["wrapping"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", action="append", default=None)
    p.add_argument("--backend", action="append", default=None)
    p.add_argument("--batch", default="1,4")
    p.add_argument("--repeat", type=int, default=1, help="passes over the configurations (medians over all)")
    p.add_argument("--cold", action="store_true", help="start from an empty cache (a first sweep)")
    args = p.parse_args()

    from harness.measure.sweep import SweepSpec, available_backends, backend_default_mode
    from harness.results.records import Config

    networks = args.network or ["squeezenet_v1.1", "mobilenet_v1"]
    backends = args.backend or available_backends("cpu")
    batches = [int(b) for b in args.batch.split(",")]
    spec = SweepSpec(networks, backends, batches)
    configs = [Config(c.network, c.backend, c.batch, mode=backend_default_mode(c.backend, "cpu"))
               for c in spec.configs()]
    with tempfile.TemporaryDirectory(prefix="startup-breakdown-") as tmp:
        env = dict(os.environ)
        if args.cold:
            env["HARNESS_CACHE_DIR"] = str(Path(tmp) / "cache")
        else:
            for config in configs:  # prime the cache: what every sweep after the first finds
                run_one(config, Path(tmp) / "prime", env)
        rows = [run_one(config, Path(tmp) / f"res{n}", env) for n in range(args.repeat) for config in configs]
    bad = [r for r in rows if r["status"] != "ok"]
    for row in bad:
        print(f"not ok: {row['config']}: {row['status']}: {row['message']}")
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"start-up breakdown, {'cold' if args.cold else 'primed'} cache, {len(rows)} fresh workers "
          f"({', '.join(networks)}; B={args.batch}), load average {' '.join(load)}, {os.cpu_count()} CPUs")
    print("median seconds per configuration")
    width = max(map(len, PHASES)) + 2
    print("phase".ljust(width) + "".join(b.rjust(13) for b in backends))
    per_backend = {b: [r for r in rows if r["backend"] == b] for b in backends}
    for phase in PHASES:
        cells = [statistics.median(r["phases"].get(phase, 0.0) for r in per_backend[b]) for b in backends]
        print(phase.ljust(width) + "".join(f"{c:13.3f}" for c in cells))
    start_up = {b: statistics.median(r["wall"] - r["phases"]["window"] for r in per_backend[b]) for b in backends}
    window = {b: statistics.median(r["phases"]["window"] for r in per_backend[b]) for b in backends}
    print("all but the window".ljust(width) + "".join(f"{start_up[b]:13.3f}" for b in backends))
    print("window (measured)".ljust(width) + "".join(f"{window[b]:13.3f}" for b in backends))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
