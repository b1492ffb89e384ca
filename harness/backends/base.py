"""The one small interface every backend implements.

A :class:`Backend` turns a :class:`RunTarget` (graph, batch, device, mode, weights) into a loaded
:class:`Session`; measurement (timer, NVML poller, memory) wraps any session from outside. Backends
are looked up by name through :data:`BACKENDS` and imported only when used.
"""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.errors import BackendUnavailable, HarnessError, LayerTimingUnsupported
from harness.ir.graph import Graph

if TYPE_CHECKING:
    from harness.measure.timer import Timing, TimingProtocol


@dataclass(frozen=True)
class RunTarget:
    """One configuration to load: which network, at which batch, on which device, in which mode."""

    graph: Graph
    network: str
    batch: int
    device: str = "cpu"  # "cpu" or "cuda:N"
    mode: str | None = None  # None: the backend's default (faithful) mode
    seed: int = 0
    weights: Path | None = None  # a .caffemodel; None: the deterministic weight set for (network, seed)


@dataclass
class BackendInfo:
    """What `harness doctor` prints and every result records about a backend."""

    name: str
    available: bool
    version: str | None = None
    origin: str | None = None  # where it came from: package path, Caffe commit, build flags
    devices: list[str] = field(default_factory=list)
    reason: str | None = None  # why it is unavailable
    hint: str | None = None  # what to do about it
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineLayer:
    """One unit of work as the engine runs it, for per-layer timing: a Caffe layer, a group of layers the
    engine fused into one (``conv1+relu1``), or a step the engine added that no prototxt layer names."""

    name: str  # as the engine names it; a fused group joins its prototxt layers with '+'
    layers: tuple[str, ...]  # the prototxt layers it ran, in file order (empty: added by the engine)
    ops: tuple[str, ...]  # what the engine ran: Caffe layer type, ONNX Runtime op types, torch module class
    note: str = ""  # how it relates to the prototxt, where that is not one layer run as written


class LayerTimer(ABC):
    """Per-layer timing by the engine's own mechanism (:meth:`Session.layer_timer`).

    ``forward`` runs one instrumented pass; ``passes`` gives, per pass run so far, the seconds of each of
    :meth:`units` (same order). ``attach`` and ``detach`` bracket the instrumented passes, so that an engine
    whose instruments would slow the plain forward (PyTorch's hooks) carries them only then."""

    #: what a per-layer time means for this engine, recorded with every layer profile
    mechanism: str

    @abstractmethod
    def units(self) -> list[EngineLayer]:
        """The units the engine runs, in the order it runs them."""

    @abstractmethod
    def forward(self) -> None:
        """One instrumented forward pass, synchronised like :meth:`Session.forward`."""

    @abstractmethod
    def passes(self) -> list[list[float]]:
        """Seconds per unit of every instrumented pass so far, oldest first."""

    def attach(self) -> None:  # noqa: B027 - optional hook
        """Put the instruments on (before instrumented passes)."""

    def detach(self) -> None:  # noqa: B027 - optional hook
        """Take them off again: plain forwards run as they always do."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the timer holds (a profiling session, its files)."""


class Session(ABC):
    """A network loaded in a backend, with a fixed input, ready to run forward passes."""

    #: recorded with every result: framework versions, mode, engine/provider, precision...
    info: dict[str, Any]

    @abstractmethod
    def forward(self) -> None:
        """One forward pass that returns only after the device has finished (synchronised)."""

    @abstractmethod
    def output(self) -> np.ndarray:
        """The network output of the last forward pass, as float32 on the host."""

    def blobs(self) -> dict[str, np.ndarray]:
        """Intermediate blobs by Caffe blob name, where the engine exposes them."""
        return {}

    def framework_memory_bytes(self) -> int | None:
        """Device (or host) memory the framework itself reports for this network, if it can."""
        return None

    def mark_layers(self, nvtx: bool = False) -> bool:
        """From now on, run each layer inside a ``layer:<name>`` profiler range (and an NVTX range with
        ``nvtx`` on CUDA) for per-layer kernel attribution; False where the engine runs no per-layer
        host code the harness could wrap. For profiling runs only, never for timing runs."""
        return False

    def layer_timer(self) -> LayerTimer:
        """Per-layer timing of this session (``harness layers``); LayerTimingUnsupported where the engine
        (or this mode of it) cannot time its layers."""
        raise LayerTimingUnsupported(f"{self.info.get('backend') or self.info.get('framework')} has no per-layer "
                                     "timing")

    def run_timed(self, protocol: TimingProtocol) -> Timing:
        """Run the timing protocol; a backend living in another process runs it there."""
        return protocol.run(self.forward)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release framework resources."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(ABC):
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def probe(cls) -> BackendInfo:
        """Availability, version and origin, without raising."""

    @abstractmethod
    def modes(self, device: str) -> list[str]:
        """The modes this backend can run on ``device``; the first is its default."""

    def default_mode(self, device: str) -> str:
        """The first of :meth:`modes`; a backend whose ``modes`` is costly (it tries things) says it
        cheaply, since sweeps and reports ask for it where nothing else of the backend is needed."""
        return self.modes(device)[0]

    @abstractmethod
    def load(self, target: RunTarget) -> Session:
        """Load the network; raises UnsupportedLayer, DeviceOutOfMemory, BackendUnavailable or BackendFailed."""

    def no_layer_timing(self, mode: str | None) -> str | None:
        """Why ``mode`` cannot time its layers, known before anything is loaded (None: it can, as far as the
        backend knows before loading; :meth:`Session.layer_timer` has the last word)."""
        return None

    def load_in_worker(self, target: RunTarget) -> Session:
        """Load inside the per-configuration worker (:mod:`harness.worker`). A backend whose ``load``
        keeps the network in a process of its own (Caffe) keeps it right there instead: the worker is
        already that process."""
        return self.load(target)

    def preload(self) -> None:  # noqa: B027 - optional hook
        """Import, in a warm parent of this backend's workers (:mod:`harness.forkserver`), what each of its
        workers would import, and compute what each would compute the same way; nothing that runs an
        operator, creates a session or touches a device (a forked worker would inherit it)."""

    def prepare_shared(self, target: RunTarget) -> None:  # noqa: B027 - optional hook
        """Make the cached files that loading ``target`` reads (converted prototxt, weights, an export),
        once per sweep and before its workers run (:func:`harness.worker_start.prepare_shared`), so that
        a worker only reads them."""

    def worker_python(self) -> tuple[str, dict[str, str]]:
        """The interpreter a worker of this backend runs under, and the environment it needs for that
        (Caffe: the one that imports pycaffe). Raises BackendUnavailable where there is none."""
        return sys.executable, {}

    def worker_env(self, device: str, mode: str | None) -> dict[str, str]:
        """Environment of the worker process that runs this backend on ``device`` in ``mode``.

        On CUDA, ``fp32`` means IEEE fp32: NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS and cuDNN from using TF32
        behind a framework's back (their default on Ampere and newer). A backend with a TF32 mode leaves
        it out there."""
        return {"NVIDIA_TF32_OVERRIDE": "0"} if device.startswith("cuda") else {}

    @classmethod
    def explain_death(cls, log: str) -> tuple[str, str] | None:
        """(status, message) for a worker of this backend that died with ``log`` on stderr, where the
        backend recognises why (e.g. Caffe's fatal CHECK line); None leaves the generic message."""
        return None


def runs_on(info: BackendInfo, device: str) -> bool:
    """Whether a probed backend runs on ``device``: its devices name it, or name ``cuda:N`` (any GPU)."""
    if not info.available:
        return False
    return device in info.devices or (device.startswith("cuda:") and "cuda:N" in info.devices)


# name -> "module:Class"; filled by the backend modules' issues. Imported lazily.
BACKENDS: dict[str, str] = {
    "caffe": "harness.backends.caffe.backend:CaffeBackend",
    "pytorch": "harness.backends.pytorch:PyTorchBackend",
    "onnxruntime": "harness.backends.onnxruntime:OnnxRuntimeBackend",
    "opencv": "harness.backends.opencv:OpenCVBackend",
}


def get_backend(name: str) -> Backend:
    try:
        spec = BACKENDS[name]
    except KeyError:
        raise HarnessError(f"unknown backend '{name}' (known: {', '.join(sorted(BACKENDS)) or 'none'})") from None
    module, cls = spec.split(":")
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendUnavailable(f"backend '{name}' cannot be imported: {exc}") from None
    return backend_cls()
