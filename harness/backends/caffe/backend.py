"""The ``caffe`` backend: real BVLC Caffe through pycaffe, never in the harness's own process.

A failed CHECK inside Caffe aborts its process. In a sweep, each configuration runs in a fresh worker
(:mod:`harness.worker`) started under the interpreter that has pycaffe (:meth:`CaffeBackend.worker_python`),
and the network lives right there (:meth:`CaffeBackend.load_in_worker`): an abort ends that worker,
whose log's fatal line becomes the record (``caffe aborted: F... <file>:<line>] Check failed: ...``,
:meth:`CaffeBackend.explain_death`). Anywhere else (``harness verify``, profiling, benchmarks) a network
lives in a net process of its own (:mod:`harness.backends.caffe.worker`) that the caller talks to; a
net process that aborts, is killed by a signal or stays silent past the timeout becomes a
:class:`BackendFailed` with the same message, and the caller goes on.

Modes are Caffe's engines: ``cudnn`` (the default on a GPU with a cuDNN build: layer_factory.cpp's
choice for DEFAULT) and ``caffe`` (Caffe's own im2col+GEMM and loops, set on every layer that has an
engine by rewriting the prototxt it loads with Caffe's own protobuf classes; recorded). On the CPU,
``caffe`` is the only mode: a cuDNN build would pick CUDNN there too and abort without a GPU.

pycaffe is found through ``CAFFE_ROOT`` (``$CAFFE_ROOT/python``), then ``/opt/caffe`` (the default
prefix of ``docker/build-caffe.sh``), then a plain ``import caffe``. The worker runs under
``HARNESS_CAFFE_PYTHON`` when set, else the first interpreter that can import pycaffe among: this
one, the one the build recorded, ``python3`` on PATH, ``/usr/bin/python3`` (pycaffe built against
the distribution's numpy 1.x cannot be imported by a numpy 2 interpreter).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import harness
from harness.backends.base import Backend, BackendInfo, EngineLayer, LayerTimer, RunTarget, Session
from harness.backends.caffe.protocol import HEADER_LENGTH, decode_arrays, encode
from harness.convert.blobs import output_blob
from harness.convert.cache import prototxt_file
from harness.convert.weights import WeightSource, network_inputs
from harness.errors import BackendFailed, BackendUnavailable, HarnessError
from harness.ir.graph import Graph
from harness.ir.textformat import Message

if TYPE_CHECKING:
    from harness.measure.timer import Timing, TimingProtocol

CAFFE_COMMIT = "9b891540183ddc834a02b2bd81b31afae71b2153"
DEFAULT_CAFFE_ROOT = Path("/opt/caffe")  # docker/build-caffe.sh's default CAFFE_PREFIX
BUILD_INFO_FILE = "harness-build.env"  # written by docker/build-caffe.sh next to the build
BUILD_HINT = "build it with docker/build-caffe.sh and set CAFFE_ROOT (see docs/caffe.md)"
#: how a machine with only a driver and pip's PyTorch gets a GPU build (the CUDA toolkit from PyPI wheels)
GPU_BUILD_HINT = ("for the GPU build: bash docker/cuda-toolkit-from-wheels.sh ~/cuda13 && CUDA_HOME=~/cuda13 "
                  "CPU_ONLY=0 CAFFE_PREFIX=~/caffe-cuda bash docker/build-caffe.sh, then CAFFE_ROOT=~/caffe-cuda "
                  "(docs/caffe.md)")
#: seconds one request (load, forward, timed run...) may take before the worker counts as stuck
DEFAULT_TIMEOUT_S = float(os.environ.get("HARNESS_CAFFE_TIMEOUT", "900"))
_GLOG_FATAL = re.compile(r"^F(?:\d{4})?\d{4} .*$", re.MULTILINE)  # glog >= 0.6 prints the year
_PARSE_ERROR = re.compile(r"Error parsing text-format [^\n]*")
#: fatal lines of allocation failures: CUDA's out of memory CHECK (syncedmem.cpp, cudnn), host allocation
OUT_OF_MEMORY = re.compile(r"out of memory|host allocation of size|cudaErrorMemoryAllocation|"
                           r"CUDNN_STATUS_ALLOC_FAILED|bad_alloc|Cannot allocate memory", re.IGNORECASE)
CUDNN_ENGINE, CAFFE_ENGINE = "cudnn", "caffe"


# ---- finding pycaffe ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PycaffeEnv:
    """An interpreter that imports pycaffe, and the environment it needs for that."""

    python: str
    env: dict[str, str]
    probe: dict[str, Any]

    @property
    def root(self) -> Path:
        """The Caffe build (``<root>/python/caffe/__init__.py``)."""
        return Path(self.probe["caffe_file"]).resolve().parents[2]


def caffe_root() -> Path | None:
    env_root = os.environ.get("CAFFE_ROOT")
    if env_root:
        return Path(env_root)
    return DEFAULT_CAFFE_ROOT if (DEFAULT_CAFFE_ROOT / "python" / "caffe").is_dir() else None


def read_build_info(root: Path) -> dict[str, str]:
    path = root / BUILD_INFO_FILE
    if not path.is_file():
        return {}
    info = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip().strip('"')
    return info


@functools.cache
def _harness_path() -> str:
    """A directory holding only the ``harness`` package, for the worker's sys.path: the package's
    own parent may be a site-packages whose numpy would shadow the other interpreter's."""
    shim = Path(tempfile.mkdtemp(prefix="harness-caffe-"))
    (shim / "harness").symlink_to(Path(harness.__file__).resolve().parent, target_is_directory=True)
    atexit.register(shutil.rmtree, shim, ignore_errors=True)
    return str(shim)


def pycaffe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONSTARTUP")}
    paths = [_harness_path()]
    root = caffe_root()
    if root is not None:
        paths.append(str(root / "python"))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("GLOG_minloglevel", "1")  # warnings and fatal lines only; INFO would log every layer
    return env


def candidate_pythons() -> list[str]:
    chosen = os.environ.get("HARNESS_CAFFE_PYTHON")
    if chosen:
        return [chosen]
    root = caffe_root()
    recorded = read_build_info(root).get("CAFFE_PYTHON") if root else None
    found = [sys.executable, recorded, shutil.which("python3"), "/usr/bin/python3"]
    unique: list[str] = []
    for python in found:
        if python and Path(python).is_file() and python not in unique:
            unique.append(python)
    return unique


@functools.cache
def find_pycaffe() -> PycaffeEnv:
    """The first candidate interpreter that imports pycaffe; raises BackendUnavailable naming why
    each one failed."""
    env = pycaffe_env()
    reasons = []
    for python in candidate_pythons():
        try:
            proc = subprocess.run([python, "-m", "harness.backends.caffe.worker", "--probe"], env=env,
                                  capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{python}: {exc}")
            continue
        header = _decode_one(proc.stdout)
        if header is not None and header.get("ok"):
            return PycaffeEnv(python, env, header)
        detail = header.get("error") if header else (proc.stderr.decode(errors="replace").strip()[-300:] or
                                                      f"exit status {proc.returncode}")
        reasons.append(f"{python}: {detail}")
    raise BackendUnavailable("pycaffe not available (" + "; ".join(reasons or ["no Python interpreter found"]) +
                             f"); {BUILD_HINT}")


def _decode_one(data: bytes) -> dict[str, Any] | None:
    if len(data) < HEADER_LENGTH.size:
        return None
    (size,) = HEADER_LENGTH.unpack(data[:HEADER_LENGTH.size])
    try:
        return json.loads(data[HEADER_LENGTH.size:HEADER_LENGTH.size + size])
    except ValueError:
        return None


def linked_libraries(library: Path) -> dict[str, str]:
    """``ldd`` of a shared library: soname -> resolved path (empty when ldd is unavailable)."""
    try:
        out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    libs = {}
    for line in out.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if rest:
            libs[name] = rest.split(" (")[0]
    return libs


_BUILDS: dict[tuple[str, Path], dict[str, Any]] = {}


def this_build() -> dict[str, Any]:
    """:func:`build_details` of the pycaffe :func:`find_pycaffe` finds, worked out once per process and build
    (it runs ``ldd`` twice; a worker forked from a warm parent inherits it)."""
    pycaffe = find_pycaffe()
    key = (pycaffe.python, pycaffe.root)
    if key not in _BUILDS:
        _BUILDS[key] = build_details(pycaffe)
    return _BUILDS[key]


def build_details(pycaffe: PycaffeEnv) -> dict[str, Any]:
    """What this Caffe build is: commit, CPU/GPU, cuDNN, BLAS - from the build script's record and
    from what the libraries actually link."""
    root = pycaffe.root
    recorded = read_build_info(root)
    libcaffe = next(iter(sorted((root / "build" / "lib").glob("libcaffe.so*"))), None)
    pymodule = next(iter(sorted((root / "python" / "caffe").glob("_caffe*.so"))), None)
    libs = {**linked_libraries(pymodule), **linked_libraries(libcaffe)} if pymodule and libcaffe else {}
    gpu = any(name.startswith("libcudart") for name in libs) if libs else recorded.get("CAFFE_CPU_ONLY") == "0"
    cudnn = any(name.startswith("libcudnn") for name in libs) if libs else recorded.get("CAFFE_WITH_CUDNN") == "1"
    # the host BLAS (OpenBLAS, ATLAS, MKL), not cuBLAS; a library ldd cannot find says nothing
    blas = next((path for name, path in libs.items()
                 if re.search(r"blas|atlas|mkl", name) and not name.startswith("libcublas") and path.startswith("/")),
                None)
    return {
        "caffe_root": str(root),
        "commit": recorded.get("CAFFE_COMMIT", "unknown (not built by docker/build-caffe.sh)"),
        "gpu_build": gpu,
        "cudnn": cudnn,
        "cuda_arch": recorded.get("CAFFE_CUDA_ARCH") or None,
        "blas": blas or recorded.get("CAFFE_BLAS_LIBRARY") or recorded.get("CAFFE_BLAS"),
        "patches": recorded.get("CAFFE_PATCHES", "").split(),
        "python": pycaffe.python,
        "numpy": pycaffe.probe.get("numpy"),
    }


# ---- the worker process -------------------------------------------------------------------------

def fatal_message(log: str) -> str | None:
    """``caffe aborted: <glog F-line>`` (plus protobuf's parse error, which names the field and the
    line) from a dead worker's log, or None when Caffe logged no fatal line."""
    fatal = _GLOG_FATAL.findall(log)
    if not fatal:
        return None
    message = f"caffe aborted: {fatal[-1].strip()}"
    parse = _PARSE_ERROR.search(log)
    if parse:
        message += f" ({parse.group(0).strip()})"
    return message


class Worker:
    """One worker process and its request/reply channel, with a deadline on every reply."""

    def __init__(self, pycaffe: PycaffeEnv, timeout_s: float, label: str, env: dict[str, str] | None = None) -> None:
        self.timeout_s, self.label = timeout_s, label
        # Caffe's log; a file, not a pipe, so a chatty worker can never block on it.
        self.log = tempfile.TemporaryFile(prefix="harness-caffe-")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([pycaffe.python, "-m", "harness.backends.caffe.worker"],
                                     env={**pycaffe.env, **(env or {})},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.hello = self._reply("start")[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        op = header["op"]
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(encode(header, arrays))
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._death(op) from None
        reply, reply_arrays = self._reply(op)
        if not reply.get("ok"):
            raise BackendFailed(f"caffe {op} failed for {self.label}: {reply.get('error')}")
        return reply, reply_arrays

    def _reply(self, op: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        deadline = time.monotonic() + self.timeout_s
        stdout = self.proc.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)

            def read_exact(n: int) -> bytes:
                chunks, got = [], 0
                while got < n:
                    left = deadline - time.monotonic()
                    if left <= 0 or not sel.select(left):
                        raise self._timeout(op)
                    chunk = os.read(stdout.fileno(), min(n - got, 1 << 20))
                    if not chunk:
                        raise self._death(op)
                    chunks.append(chunk)
                    got += len(chunk)
                return b"".join(chunks)

            (size,) = HEADER_LENGTH.unpack(read_exact(HEADER_LENGTH.size))
            header = json.loads(read_exact(size))
            return header, decode_arrays(header, read_exact)

    def _timeout(self, op: str) -> BackendFailed:
        self.kill()
        return BackendFailed(f"caffe worker for {self.label} stuck: no reply to '{op}' within "
                             f"{self.timeout_s:g} s; killed it (HARNESS_CAFFE_TIMEOUT sets the limit)")

    def _death(self, op: str) -> BackendFailed:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        log = self.log_text()
        message = fatal_message(log)
        if message is None:
            if code is not None and code < 0:
                message = f"caffe worker killed by signal {signal.Signals(-code).name}"
            else:
                message = f"caffe worker exited with status {code}"
            tail = log.strip().splitlines()[-3:]
            if tail:
                message += ": " + " | ".join(tail)
        return BackendFailed(f"{message} [{self.label}, during '{op}']")

    def log_text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BackendFailed):
                self.request({"op": "close"})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.log.close()


# ---- weights ------------------------------------------------------------------------------------

def engine_overrides(graph: Graph) -> dict[str, str]:
    """Layers whose prototxt names an engine (``engine: CAFFE`` / ``CUDNN`` in a ``*_param``); every
    other layer gets Caffe's default: CUDNN in a cuDNN build, CAFFE otherwise (layer_factory.cpp)."""
    engines = {}
    for layer in graph.layers:
        for field in layer.spec.fields:
            if field.name.endswith("_param") and isinstance(field.value, Message):
                engine = field.value.get("engine")
                if engine is not None and str(engine) != "DEFAULT":
                    engines[layer.name] = str(engine)
    return engines


# ---- session and backend ------------------------------------------------------------------------

class RemoteNet:
    """A NetHolder in a net process of its own, behind the request channel."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def forward(self) -> None:
        self.worker.request({"op": "forward"})

    def timed(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self.worker.request({"op": "timed", "protocol": fields})[0]["timing"]

    def blobs(self, names: list[str] | None) -> dict[str, np.ndarray]:
        return self.worker.request({"op": "blobs", "names": names})[1]

    def layer_pass(self) -> list[float]:
        return self.worker.request({"op": "layer_pass"})[0]["times"]

    def close(self) -> None:
        self.worker.close()


class LocalNet:
    """A NetHolder in this process (the per-configuration worker)."""

    def __init__(self, holder: Any) -> None:
        self.holder = holder

    def forward(self) -> None:
        self.holder.forward()

    def timed(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self.holder.timed(fields)

    def blobs(self, names: list[str] | None) -> dict[str, np.ndarray]:
        return self.holder.blobs(names)

    def layer_pass(self) -> list[float]:
        return self.holder.layer_pass()

    def close(self) -> None:
        self.holder.net = None  # Caffe frees the net's memory when pycaffe drops it


def _with_engine(info: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    if loaded.get("engine_rewritten_layers"):
        info["engine_rewrite"] = f"engine: CAFFE set on {loaded['engine_rewritten_layers']} layers of the prototxt"
    return info


class CaffeLayerTimer(LayerTimer):
    """Caffe's layers timed one by one in the net's own process (:meth:`NetHolder.layer_pass`)."""

    mechanism = ("each layer's Forward run alone (pycaffe net._forward(i, i), i.e. Net::ForwardFromTo(i, i)) and "
                 "timed with perf_counter, as `caffe time` times each layer; on a GPU each layer ends with "
                 "cudaDeviceSynchronize")

    def __init__(self, net: RemoteNet | LocalNet, layer_types: dict[str, str], graph: Graph) -> None:
        self.net = net
        prototxt = {layer.name: layer for layer in graph.layers}
        inputs = {spec.name for spec in graph.inputs}
        self._units = []
        for name, type_ in layer_types.items():
            layer = prototxt.get(name)
            if layer is not None:
                note = f"in place (writes {', '.join(layer.tops)})" if layer.in_place else ""
                self._units.append(EngineLayer(name, (name,), (type_,), note))
            elif type_ == "Input" or name in inputs:
                self._units.append(EngineLayer(name, (), (type_,), "the network's input"))
            else:  # a Split Caffe inserts where several layers read one blob
                self._units.append(EngineLayer(name, (), (type_,), "added by Caffe"))
        self._passes: list[list[float]] = []

    def units(self) -> list[EngineLayer]:
        return list(self._units)

    def forward(self) -> None:
        self._passes.append(self.net.layer_pass())

    def passes(self) -> list[list[float]]:
        return self._passes


class CaffeSession(Session):
    def __init__(self, net: RemoteNet | LocalNet, loaded: dict[str, Any], output: str, info: dict[str, Any],
                 graph: Graph) -> None:
        self.net = net
        self.graph = graph
        self.layer_types: dict[str, str] = loaded["layer_types"]
        self.blob_shapes = {k: tuple(v) for k, v in loaded["blob_shapes"].items()}
        self.param_shapes = {k: [tuple(s) for s in v] for k, v in loaded["param_shapes"].items()}
        self.memory = {"blob_bytes": loaded["blob_bytes"], "param_bytes": loaded["param_bytes"]}
        self.output_name = output
        self.info = info

    def forward(self) -> None:
        self.net.forward()

    def output(self) -> np.ndarray:
        return self.blobs([self.output_name])[self.output_name]

    def blobs(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        return self.net.blobs(names)

    def framework_memory_bytes(self) -> int | None:
        """Bytes of the data of every blob Caffe allocated: activations (in-place tops share theirs)
        and parameters. cuDNN workspaces and gradients (never touched in TEST phase) are not in it."""
        return int(self.memory["blob_bytes"] + self.memory["param_bytes"])

    def run_timed(self, protocol: TimingProtocol) -> Timing:
        from harness.measure.timer import Timing

        return Timing.from_dict(self.net.timed(protocol.__getstate__()))

    def layer_timer(self) -> LayerTimer:
        return CaffeLayerTimer(self.net, self.layer_types, self.graph)

    def close(self) -> None:
        self.net.close()


class CaffeBackend(Backend):
    name = "caffe"

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    @classmethod
    def probe(cls) -> BackendInfo:
        try:
            pycaffe = find_pycaffe()
        except BackendUnavailable as exc:
            return BackendInfo(cls.name, False, reason=str(exc).removesuffix(f"; {BUILD_HINT}"), hint=BUILD_HINT)
        details = build_details(pycaffe)
        devices = ["cpu"] + (["cuda:N"] if details["gpu_build"] else [])  # any GPU the build's arch runs on
        build = "GPU" if details["gpu_build"] else "CPU-only"
        cudnn = "yes" if details["cudnn"] else "no"
        origin = (f"BVLC Caffe {details['commit']} at {details['caffe_root']} ({build} build, cuDNN {cudnn}, "
                  f"BLAS {details['blas']}) via {pycaffe.python}")
        return BackendInfo(cls.name, True, version=pycaffe.probe.get("caffe_version"), origin=origin,
                           devices=devices, details=details)

    def modes(self, device: str) -> list[str]:
        if not device.startswith("cuda"):
            return [CAFFE_ENGINE]
        try:
            cudnn = this_build()["cudnn"]
        except BackendUnavailable:
            cudnn = True  # unknown until built: offer both, load says why it cannot run
        return [CUDNN_ENGINE, CAFFE_ENGINE] if cudnn else [CAFFE_ENGINE]

    def worker_python(self) -> tuple[str, dict[str, str]]:
        pycaffe = find_pycaffe()
        return pycaffe.python, pycaffe.env

    def preload(self) -> None:
        import caffe  # noqa: F401

        import harness.backends.caffe.worker  # noqa: F401 - the NetHolder a worker loads its network with

        this_build()  # finding pycaffe and what it links: a subprocess and two ldd runs

    def prepare_shared(self, target: RunTarget) -> None:
        prototxt_file(target.graph, self.name)
        WeightSource(target.graph.with_inputs(batch=target.batch), target.seed, target.weights).caffemodel()

    @classmethod
    def explain_death(cls, log: str) -> tuple[str, str] | None:
        message = fatal_message(log)
        if message is None:
            return None
        return ("oom" if OUT_OF_MEMORY.search(message) else "failed"), message

    def load(self, target: RunTarget) -> Session:
        """The network in a net process of its own (see the module docstring)."""
        request, arrays, info = self._prepare(target)
        pycaffe = find_pycaffe()
        worker = Worker(pycaffe, self.timeout_s, f"{target.network} batch {target.batch} on {target.device}",
                        self.worker_env(target.device, target.mode))
        try:
            loaded, _ = worker.request(request, arrays)
        except BaseException:
            worker.close()
            raise
        info["pid"] = worker.pid  # the measurement window reads this process's peak RSS
        return CaffeSession(RemoteNet(worker), loaded, request["output"], _with_engine(info, loaded), target.graph)

    def load_in_worker(self, target: RunTarget) -> Session:
        """The network in this very process: the per-configuration worker, already under pycaffe's
        interpreter, is the process an abort may end."""
        import caffe

        from harness.backends.caffe.worker import NetHolder

        request, arrays, info = self._prepare(target)
        holder = NetHolder(caffe)
        loaded = holder.load(request, arrays)
        return CaffeSession(LocalNet(holder), loaded, request["output"], _with_engine(info, loaded), target.graph)

    def _prepare(self, target: RunTarget) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        """The load request, the input arrays and the record's info for ``target`` (checks first)."""
        on_gpu = target.device.startswith("cuda")
        offered = self.modes(target.device)
        mode = target.mode or offered[0]
        if mode not in offered:
            raise HarnessError(f"caffe mode '{mode}' is not available on {target.device} (modes: {', '.join(offered)})")
        prototxt = prototxt_file(target.graph, "caffe")
        if target.weights is not None and not Path(target.weights).is_file():
            raise HarnessError(f"caffemodel not found: {target.weights}")
        pycaffe = find_pycaffe()
        details = this_build()
        if on_gpu and not details["gpu_build"]:
            raise BackendUnavailable(f"caffe at {details['caffe_root']} is a CPU-only build; {GPU_BUILD_HINT}")
        graph = target.graph.with_inputs(batch=target.batch)
        caffemodel = WeightSource(graph, target.seed, target.weights).caffemodel()
        # The rewrite is needed where the build has cuDNN; a CPU-only build only knows CAFFE already.
        rewrite = mode == CAFFE_ENGINE and details["cudnn"]
        request = {"op": "load", "prototxt": str(prototxt.resolve()), "caffemodel": str(Path(caffemodel).resolve()),
                   "batch": target.batch, "device": target.device, "output": output_blob(graph),
                   "engine": "CAFFE" if rewrite else None}
        info = {"framework": "caffe", "caffe_version": pycaffe.probe.get("caffe_version"),
                "caffe_commit": details["commit"], "gpu_build": details["gpu_build"],
                "cudnn_build": details["cudnn"], "blas": details["blas"], "python": pycaffe.python, "mode": mode,
                "device": target.device, "precision": "fp32",
                "engine": "CUDNN" if mode == CUDNN_ENGINE else "CAFFE",
                "engine_overrides": engine_overrides(target.graph),
                "weights": "caffemodel" if target.weights else f"deterministic seed {target.seed}"}
        if on_gpu:  # the net's process gets worker_env(): in a worker through spawn_worker, else through Worker
            tf32 = self.worker_env(target.device, mode).get("NVIDIA_TF32_OVERRIDE",
                                                             os.environ.get("NVIDIA_TF32_OVERRIDE"))
            info["tf32"] = ("disabled (NVIDIA_TF32_OVERRIDE=0)" if tf32 == "0"
                            else f"cuBLAS/cuDNN default (NVIDIA_TF32_OVERRIDE={tf32})")
        return request, network_inputs(graph, target.seed), info
