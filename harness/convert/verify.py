"""Proof that the backends compute the same function: same weights, same input, compared blob by blob.

Each backend runs the network once; every pair of backends that ran is compared on the network
output, on the pre-softmax blob (a final Softmax squashes differences) and on the sampled
intermediate blobs both engines expose (:func:`harness.convert.blobs.probe_blobs`). The error of a
blob is ``max|a - b|`` and, relative to the blob's scale, ``max|a - b| / max(max|a|, max|b|)``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.backends.base import RunTarget, get_backend
from harness.convert.blobs import output_blob, pre_softmax_blob
from harness.errors import BackendFailed, BackendUnavailable, DeviceOutOfMemory, HarnessError, UnsupportedLayer
from harness.ir.graph import Graph

DEFAULT_TOLERANCE = 1e-4


@dataclass
class BackendRun:
    backend: str
    status: str  # "ok", "oom", "unsupported", "unavailable", "failed"
    message: str | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    output: np.ndarray | None = None
    blobs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class BlobError:
    a: str
    b: str
    blob: str
    role: str  # "output", "pre-softmax" or "intermediate"
    max_abs: float
    rel: float
    ok: bool
    note: str | None = None


@dataclass
class Verification:
    network: str
    batch: int
    seed: int
    tolerance: float
    runs: list[BackendRun]
    errors: list[BlobError]
    device: str = "cpu"

    @property
    def compared(self) -> int:
        return sum(r.status == "ok" for r in self.runs)

    @property
    def ok(self) -> bool:
        """All requested backends ran, at least two, and every compared blob agrees."""
        return (all(r.status == "ok" for r in self.runs) and self.compared >= 2
                and all(e.ok for e in self.errors))


def run_backend(name: str, graph: Graph, network: str, batch: int, seed: int, mode: str | None = None,
                device: str = "cpu") -> BackendRun:
    """Load and run one backend once on ``device``; a failure becomes the run's status, never an exception."""
    start = time.perf_counter()
    try:
        backend = get_backend(name)
        with backend.load(RunTarget(graph, network, batch, device=device, mode=mode, seed=seed)) as session:
            session.forward()
            output = session.output()
            blobs = session.blobs()
            info = dict(session.info)
    except UnsupportedLayer as exc:
        return BackendRun(name, "unsupported", str(exc), time.perf_counter() - start)
    except DeviceOutOfMemory as exc:  # this backend's result at this batch; the others go on
        return BackendRun(name, "oom", str(exc), time.perf_counter() - start)
    except BackendUnavailable as exc:
        return BackendRun(name, "unavailable", str(exc), time.perf_counter() - start)
    except BackendFailed as exc:
        return BackendRun(name, "failed", str(exc), time.perf_counter() - start)
    except HarnessError:
        raise  # bad input (a graph error, an unknown mode): the user's to fix, not a backend result
    except Exception as exc:  # a crash inside a framework: recorded for this backend, others go on
        return BackendRun(name, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                          time.perf_counter() - start)
    return BackendRun(name, "ok", None, time.perf_counter() - start, info, output, blobs)


def compare_blob(a: np.ndarray, b: np.ndarray) -> tuple[float, float, str | None]:
    """(max abs error, error relative to the larger of the two maxima, note). Shapes that differ
    only by size-1 axes are compared flattened (engines disagree on trailing 1x1 axes)."""
    note = None
    if a.shape != b.shape:
        if a.size != b.size:
            return float("inf"), float("inf"), f"shape {a.shape} vs {b.shape}"
        note = f"shape {a.shape} vs {b.shape}, compared flattened"
        a, b = a.reshape(-1), b.reshape(-1)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        return float("inf"), float("inf"), "non-finite values"
    max_abs = float(np.max(np.abs(a64 - b64))) if a.size else 0.0
    scale = max(float(np.max(np.abs(a64))), float(np.max(np.abs(b64)))) if a.size else 0.0
    return max_abs, (max_abs / scale if scale > 0 else max_abs), note


def verify(graph: Graph, network: str, backends: list[str], batch: int = 1, seed: int = 0,
           tolerance: float = DEFAULT_TOLERANCE, device: str = "cpu") -> Verification:
    graph = graph.with_inputs(batch=batch)
    runs = [run_backend(name, graph, network, batch, seed, device=device) for name in backends]
    out, pre = output_blob(graph), pre_softmax_blob(graph)
    errors: list[BlobError] = []
    for ra, rb in itertools.combinations([r for r in runs if r.status == "ok"], 2):
        blobs = [(out, "output", ra.output, rb.output)]
        for name in ra.blobs:
            if name in rb.blobs:
                blobs.append((name, "pre-softmax" if name == pre else "intermediate", ra.blobs[name], rb.blobs[name]))
        for name, role, va, vb in blobs:
            max_abs, rel, note = compare_blob(va, vb)
            errors.append(BlobError(ra.backend, rb.backend, name, role, max_abs, rel, rel <= tolerance, note))
    return Verification(network, batch, seed, tolerance, runs, errors, device)
