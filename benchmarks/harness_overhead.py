"""Harness overhead: forward latency measured through the harness (Session.run_timed with the timing
protocol) vs a bare loop over the same network, weights and input. Goal: ratio <= 1.02.

Run: python benchmarks/harness_overhead.py [--backend pytorch|onnxruntime|opencv|caffe]
     [--network squeezenet_v1.1] [--batch 1] [--device cpu] [--iters 5] [--rounds 20]

The bare loop: for the in-process backends, the backend's own forward call on the same loaded network;
for caffe, a bare pycaffe loop (``net.forward()``) in a separate process under the interpreter that has
pycaffe, over the same .caffemodel and the same input array as the harness's Caffe process (their
outputs are checked to be bit-identical before timing). Bare and harness loops alternate in short
rounds, so drift and other load on the machine affect both alike; the ratio of mean latencies is
reported per round and as the median over rounds. The harness's own cost per iteration (timing a no-op)
is also printed: divided by the forward latency it bounds the overhead independently of machine noise.

For caffe, ``caffe time`` is shown beside them, with its caveat: it loads no weights (parameters come
from the prototxt's fillers, zero for deploy files), feeds a zero input, runs the prototxt's own batch,
and uses the TRAIN phase unless ``-phase TEST`` is given. CPU latency depends on the data (ReLU and
max pooling branch on values, zero weights make BLAS inputs trivial), so its figure is not the
harness's; the weight and input distributions of the harness's figures are printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.backends.base import Session
from harness.convert.blobs import output_blob
from harness.convert.cache import prototxt_file
from harness.convert.weights import WeightSource, network_inputs
from harness.ir.graph import Graph
from harness.measure.sweep import open_session
from harness.measure.timer import TimingProtocol
from harness.results.metadata import cpu_model
from harness.zoo import resolve as resolve_network

#: The bare pycaffe loop, run under pycaffe's interpreter (of the harness only the engine rewrite). argv:
#: prototxt caffemodel input.npy output.npy device engine-override output-blob. Then, per line "N" on stdin, N
#: timed forwards; replies
#: with their mean in seconds.
BARE_PYCAFFE = r"""
import sys, time
import numpy as np
import caffe
prototxt, caffemodel, input_npy, output_npy, device, engine = sys.argv[1:7]
if engine != "-":  # the harness's own engine rewrite (a cuDNN build on the CPU), the same function
    from harness.backends.caffe.worker import rewrite_engine
    prototxt, _ = rewrite_engine(prototxt, engine)
if device.startswith("cuda"):
    caffe.set_device(int(device.split(":")[1]))
    caffe.set_mode_gpu()
else:
    caffe.set_mode_cpu()
net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
data = np.load(input_npy)
name = net.inputs[0]
net.blobs[name].reshape(*data.shape)
net.reshape()
net.blobs[name].data[...] = data
net.forward()
np.save(output_npy, net.blobs[sys.argv[7]].data)
for _ in range(20):
    net.forward()
print("ready", flush=True)
for line in sys.stdin:
    n = int(line)
    start = time.perf_counter()
    for _ in range(n):
        net.forward()
    print(repr((time.perf_counter() - start) / n), flush=True)
"""


def bare_mean_s(forward: Callable[[], object], iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        forward()
    return (time.perf_counter() - start) / iters


class BarePycaffe:
    """A bare pycaffe forward loop in its own process, over the harness Caffe session's network,
    .caffemodel and input, checked to give the same output bit for bit."""

    def __init__(self, session: Session, graph: Graph, batch: int, device: str, seed: int) -> None:
        details = session.info
        python = str(details["python"])
        from harness.backends.caffe.backend import find_pycaffe

        run_graph = graph.with_inputs(batch=batch)
        self.prototxt = prototxt_file(graph, "caffe")
        self.caffemodel = WeightSource(run_graph, seed).caffemodel()
        inputs = network_inputs(run_graph, seed)
        if len(inputs) != 1:
            raise SystemExit("the bare pycaffe loop feeds one input blob; this network has several")
        self.input = next(iter(inputs.values()))
        self.tmp = tempfile.TemporaryDirectory(prefix="harness-overhead-")
        input_npy, output_npy = Path(self.tmp.name, "input.npy"), Path(self.tmp.name, "output.npy")
        np.save(input_npy, self.input)
        rewrite = details.get("engine") == "CAFFE" and details.get("cudnn_build")
        env = {**os.environ, **find_pycaffe().env, "GLOG_minloglevel": "2"}  # pycaffe, and the harness's path
        self.proc = subprocess.Popen(
            [python, "-c", BARE_PYCAFFE, str(self.prototxt), str(self.caffemodel), str(input_npy), str(output_npy),
             device, "CAFFE" if rewrite else "-", output_blob(run_graph)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"the bare pycaffe process failed (exit status {self.proc.wait()})")
        session.forward()
        if not np.array_equal(np.load(output_npy), session.output()):
            raise SystemExit("bare pycaffe and the harness computed different outputs: not the same net/weights/input")

    def mean_s(self, iters: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{iters}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.tmp.cleanup()


def caffe_time(prototxt: Path, device: str, phase: str | None, iterations: int = 50) -> str:
    """``caffe time``'s average forward pass, as it prints it."""
    from harness.backends.caffe.backend import CaffeBackend

    tool = Path(CaffeBackend.probe().details["caffe_root"]) / "build" / "tools" / "caffe"
    cmd = [str(tool), "time", f"-model={prototxt}", f"-iterations={iterations}"]
    if device.startswith("cuda"):
        cmd.append(f"-gpu={device.split(':')[1]}")
    if phase:
        cmd.append(f"-phase={phase}")
    # CAFFE_PYTHON: the relocatable bundle's `caffe` wrapper finds the CUDA wheels of that interpreter
    env = {**os.environ, "GLOG_logtostderr": "1", "CAFFE_PYTHON": str(CaffeBackend.probe().details["python"])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    found = re.search(r"Average Forward pass: ([0-9.]+) ms", proc.stderr)
    return f"{float(found.group(1)):.3f} ms" if found else f"failed (exit status {proc.returncode})"


def describe(array: np.ndarray) -> str:
    return (f"shape {tuple(array.shape)}, mean {array.mean():.4f}, std {array.std():.4f}, "
            f"min {array.min():.4f}, max {array.max():.4f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="pytorch")
    p.add_argument("--network", default="squeezenet_v1.1")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", default=None, help="backend mode (default: the backend's default on the device)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()

    load_before = os.getloadavg()
    seed = 0  # open_session's default weight set and input
    protocol = TimingProtocol(warmup_iters=0, warmup_s=0.0, min_iters=args.iters, min_s=0.0)
    graph = resolve_network(args.network)
    with open_session(args.backend, args.network, args.batch, args.device, args.mode) as session:
        TimingProtocol(warmup_iters=20, warmup_s=2.0, min_iters=0, min_s=0).run(session.forward)
        pycaffe = BarePycaffe(session, graph, args.batch, args.device, seed) if args.backend == "caffe" else None
        bare: Callable[[int], float] = pycaffe.mean_s if pycaffe else (lambda n: bare_mean_s(session.forward, n))
        rows = []
        try:
            for _ in range(args.rounds):
                bare_s = bare(args.iters)
                timing = session.run_timed(protocol)
                rows.append((bare_s, timing.mean_s, timing.median_s))
        finally:
            if pycaffe:
                pycaffe.close()
        info = session.info
    load_after = os.getloadavg()
    print(f"machine: {platform.node()} | {cpu_model()} | {platform.machine()} | Python {platform.python_version()}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"backend {args.backend} {json.dumps(info, default=str)}")
    print(f"{args.network}, B={args.batch}, {args.device}, {args.iters} iterations x {args.rounds} rounds "
          f"(alternating bare / harness)")
    if pycaffe:
        print(f"bare loop: pycaffe net.forward() in its own process, same .caffemodel ({pycaffe.caffemodel.name}) "
              "and input; outputs bit-identical to the harness's")
        print(f"weights: deterministic set, seed {seed} (harness.convert.weights); input: {describe(pycaffe.input)}")
    print(f"{'round':>5} {'bare mean ms':>13} {'harness mean ms':>16} {'harness median ms':>18} {'ratio':>7}")
    ratios = []
    for i, (bare_s, mean, median) in enumerate(rows, 1):
        ratios.append(mean / bare_s)
        print(f"{i:5d} {bare_s * 1e3:13.3f} {mean * 1e3:16.3f} {median * 1e3:18.3f} {mean / bare_s:7.4f}")
    ratio = statistics.median(ratios)
    print(f"harness/bare mean-latency ratio, median over rounds: {ratio:.4f} "
          f"(goal <= 1.02: {'met' if ratio <= 1.02 else 'NOT met'}); spread {min(ratios):.4f}..{max(ratios):.4f}")
    noop = TimingProtocol(warmup_iters=0, warmup_s=0.0, min_iters=200_000, min_s=0.0).run(lambda: None)
    bare_median = statistics.median(r[0] for r in rows)
    print(f"harness cost per iteration (no-op forward, 200000 iterations): {noop.mean_s * 1e9:.0f} ns "
          f"= {noop.mean_s / bare_median:.2e} of the median bare forward latency")
    if pycaffe:
        print(f"caffe time, for comparison only (no weights: the prototxt's fillers; zero input; the prototxt's "
              f"batch; 50 iterations) on {pycaffe.prototxt.name}:")
        print(f"  default phase (TRAIN): average forward {caffe_time(pycaffe.prototxt, args.device, None)}")
        print(f"  -phase TEST:           average forward {caffe_time(pycaffe.prototxt, args.device, 'TEST')}")
        print(f"  vs bare pycaffe with weights and input: {bare_median * 1e3:.3f} ms (median of the rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
