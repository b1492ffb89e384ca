"""ONNX Runtime backend: the converted network exported to ONNX (see harness.convert.onnx_export).

Modes are ONNX Runtime's graph optimization levels; the execution provider follows the device
(CPUExecutionProvider on ``cpu``, CUDAExecutionProvider on ``cuda:N``, with inputs and outputs bound
on the GPU so that a timed run does not copy them).

A session is labelled with a provider only if that provider ran every node that computes. ONNX Runtime
places a node its CUDA provider cannot take on the CPU provider, and says so only in a log line; so the
first run, at load, is profiled: every executed node's event names the provider that ran it and the types
of its outputs, and any node run by another provider makes the configuration ``unavailable`` - except
shape arithmetic (nodes whose every output is an integer tensor: Shape, Gather of a dimension, Unsqueeze,
Concat of dimensions...), which the CUDA provider leaves to the CPU on purpose, since its results are
read on the host (Reshape's target shape); they are counted in ``info["shape_arithmetic_on_cpu"]``. (The
session option ``session.disable_cpu_ep_fallback`` is not used: it refuses those nodes too, so every
export with a computed shape - AlexNet's and GoogLeNet's LRN among them - would be refused on CUDA.)
Profiling is ended after that run, so timed runs are not profiled. On CUDA, fp32 is IEEE fp32: the
provider option ``use_tf32`` is 0 (it defaults to 1), read back and recorded.

The CUDA provider's library names cuBLAS, cudart and cuDNN without a search path; pip's NVIDIA wheels are
found only once something loads them. The worker imports no torch (which would), so a CUDA session first
loads them with onnxruntime's own ``preload_dlls`` (from the wheels' ``nvidia/cu13/lib`` and
``nvidia/cudnn/lib``, else the system's).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, EngineLayer, LayerTimer, RunTarget, Session
from harness.backends.onnxruntime_layers import node_units, profile_passes, read_profile
from harness.backends.oom import OutOfMemoryAs, out_of_memory_cause
from harness.cuda_driver import cuda_driver_uuids
from harness.errors import BackendFailed, BackendUnavailable, HarnessError

# mode -> GraphOptimizationLevel attribute; the first is ONNX Runtime's own default.
OPT_LEVELS = {"opt-all": "ORT_ENABLE_ALL", "opt-extended": "ORT_ENABLE_EXTENDED",
              "opt-basic": "ORT_ENABLE_BASIC", "opt-disabled": "ORT_DISABLE_ALL"}
CPU_EP, CUDA_EP = "CPUExecutionProvider", "CUDAExecutionProvider"


def _cuda_devices() -> list[str]:
    """The GPUs the CUDA provider could use, as the CUDA driver enumerates them (no framework imported:
    a sweep's planning process probes backends)."""
    return [f"cuda:{i}" for i in range(len(cuda_driver_uuids() or []))]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def probe(cls) -> BackendInfo:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return BackendInfo(cls.name, False, reason=f"onnxruntime is not installed ({exc})",
                               hint="pip install 'harness[onnx,pytorch]'")
        providers = ort.get_available_providers()
        devices = ["cpu"] + (_cuda_devices() if CUDA_EP in providers else [])
        return BackendInfo(cls.name, True, version=ort.__version__, origin=ort.__file__, devices=devices,
                           details={"providers": providers, "device": ort.get_device()})

    def modes(self, device: str) -> list[str]:
        return list(OPT_LEVELS)

    def preload(self) -> None:
        import onnxruntime  # noqa: F401

        from harness.convert.onnx_export import exporter_versions

        exporter_versions()  # not torch or onnx: a cached export needs neither

    def prepare_shared(self, target: RunTarget) -> None:
        from harness.convert.onnx_export import export_onnx
        from harness.convert.weights import WeightSource

        export_onnx(WeightSource(target.graph.with_inputs(batch=target.batch), target.seed, target.weights))

    def load(self, target: RunTarget) -> Session:
        import onnxruntime as ort

        mode = target.mode or next(iter(OPT_LEVELS))
        if mode not in OPT_LEVELS:
            raise HarnessError(f"onnxruntime mode '{mode}' is unknown (modes: {', '.join(OPT_LEVELS)})")
        if target.device.startswith("cuda") and CUDA_EP not in ort.get_available_providers():
            raise BackendUnavailable(f"onnxruntime {ort.__version__}: {CUDA_EP} is not available here "
                                     f"(providers: {', '.join(ort.get_available_providers())}; "
                                     "install onnxruntime-gpu)")
        if target.device.startswith("cuda"):
            load_cuda_libraries(ort)
        return OnnxRuntimeSession(target, mode)


def load_cuda_libraries(ort: Any) -> None:
    """CUDA and cuDNN loaded for the CUDA provider (module docstring). ``preload_dlls`` (onnxruntime >= 1.21)
    prints what it could not load to stdout: sent to stderr, the worker's log, whose tail a failed
    configuration's record shows."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with contextlib.redirect_stdout(sys.stderr):
            preload(cuda=True, cudnn=True, msvc=False)


def node_providers(profile: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Provider -> the nodes it ran (``op_type:node name``), from the events of an ONNX Runtime profile."""
    ran: dict[str, list[str]] = {}
    for event in profile:
        if event.get("cat") != "Node" or "provider" not in event.get("args", {}):
            continue
        args = event["args"]
        name = event["name"].removesuffix("_kernel_time")
        ran.setdefault(args["provider"], []).append(f"{args.get('op_name', '?')}:{name}")
    return ran


#: ONNX element types of shape arithmetic's outputs (dimensions, indices, masks)
INTEGER_TYPES = frozenset({"int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool"})


def shape_arithmetic(profile: list[dict[str, Any]]) -> frozenset[str]:
    """The executed nodes (``op_type:node name``) whose every output is an integer tensor: shape arithmetic,
    which a GPU provider may leave to the CPU by design (see the module docstring)."""
    nodes = set()
    for event in profile:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "provider" not in args:
            continue
        types = [t for output in args.get("output_type_shape", []) for t in output]
        if types and all(t in INTEGER_TYPES for t in types):
            nodes.add(f"{args.get('op_name', '?')}:{event['name'].removesuffix('_kernel_time')}")
    return frozenset(nodes)


def cuda_provider_options(device_id: int) -> dict[str, str | int]:
    """The CUDA provider's options: this GPU, and IEEE fp32 (``use_tf32`` 0; ORT's default, 1, would run fp32
    convolutions and GEMMs in TF32, which the harness measures as its own PyTorch mode instead)."""
    return {"device_id": device_id, "use_tf32": "0"}


def check_providers(ran: dict[str, list[str]], expected: str, excused: frozenset[str] = frozenset()) -> str | None:
    """Why the run does not count as ``expected``'s (nodes run elsewhere, or none run), or None. ``excused``:
    nodes the CPU provider may run beside a GPU one (:func:`shape_arithmetic`)."""
    if expected not in ran:
        return f"no node ran on {expected} (ran: {', '.join(sorted(ran)) or 'nothing'})"
    elsewhere = {p: kept for p, nodes in ran.items() if p != expected
                 if (kept := [n for n in nodes if not (p == CPU_EP and n in excused)])}
    if not elsewhere:
        return None
    parts = [f"{len(nodes)} on {p} ({', '.join(Counter(n.split(':')[0] for n in nodes))})"
             for p, nodes in sorted(elsewhere.items())]
    return f"{sum(map(len, elsewhere.values()))} of {sum(map(len, ran.values()))} nodes ran outside {expected}: " \
           + "; ".join(parts)


class OnnxRuntimeSession(Session):
    def __init__(self, target: RunTarget, mode: str) -> None:
        where = f"{target.network} B={target.batch} on {target.device}"
        self._oom_forward = OutOfMemoryAs("onnxruntime", f"in forward of {where}")
        with OutOfMemoryAs("onnxruntime", f"at load of {where}"):
            self._load(target, mode)

    def _load(self, target: RunTarget, mode: str) -> None:
        import onnxruntime as ort

        from harness.analysis.analyzer import fork_info
        from harness.convert.onnx_export import OPSET, export_onnx, exporter_versions
        from harness.convert.weights import WeightSource, network_inputs

        self.graph = graph = target.graph.with_inputs(batch=target.batch)
        self.models = export_onnx(WeightSource(graph, target.seed, target.weights))
        self.feed = network_inputs(graph, target.seed)
        self.cuda = target.device.startswith("cuda")
        self.provider = CUDA_EP if self.cuda else CPU_EP
        self.device_id = device_id = int(target.device.split(":")[1]) if ":" in target.device else 0
        self.providers: list[Any] = [(CUDA_EP, cuda_provider_options(device_id))] if self.cuda else [CPU_EP]
        self.level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[mode])
        self._profile_dir = tempfile.TemporaryDirectory(prefix="harness-ort-profile-")
        self.session = self._session(self.models.timing, profile_prefix=Path(self._profile_dir.name) / "run")
        self.info: dict[str, Any] = {
            "backend": "onnxruntime", "mode": mode, "device": target.device, "onnxruntime": ort.__version__,
            "provider": self.session.get_providers()[0], "opset": OPSET,
            "exporter": f"torch {exporter_versions()['torch']} torch.onnx.export(dynamo=False)",
            "precision": "fp32", "model": self.models.timing.name,
            **fork_info(graph),
        }
        if self.info["provider"] != self.provider:
            raise BackendUnavailable(f"onnxruntime: {self.provider} was requested but the session runs on "
                                     f"{', '.join(self.session.get_providers())}")
        if self.cuda:
            options = self.session.get_provider_options().get(CUDA_EP, {})
            self.info["tf32"] = {"use_tf32": options.get("use_tf32"),
                                 "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE")}
        else:
            self.info["tf32"] = "not applicable on cpu"
        self._out: np.ndarray | None = None
        self.binding = self.bind(self.session) if self.cuda else None
        self.forward()  # the profiled run
        ran, shapes = self._end_profiling()
        self.info["node_providers"] = {p: len(nodes) for p, nodes in sorted(ran.items())}
        excused = shapes if self.cuda else frozenset()
        on_cpu = [n for n in ran.get(CPU_EP, []) if n in excused]
        if on_cpu:
            self.info["shape_arithmetic_on_cpu"] = dict(Counter(n.split(":")[0] for n in on_cpu))
        problem = check_providers(ran, self.provider, excused)
        if problem:
            raise BackendUnavailable(f"onnxruntime: {problem}")

    def _session(self, path: Path, profile_prefix: Path | None = None, optimized_to: Path | None = None,
                 stop_spinning: bool = False) -> Any:
        """A session of ``path`` in this configuration's mode and provider; profiled with ``profile_prefix``;
        with ``optimized_to``, the graph it runs after optimisation is saved there (weights beside it); with
        ``stop_spinning``, its threads stop spin-waiting as soon as a run returns (they spin within a run, as
        by default)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = self.level
        if stop_spinning:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_prefix)
        if optimized_to is not None:
            options.optimized_model_filepath = str(optimized_to)
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                             optimized_to.name + ".weights")
            options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                             "1024")
        try:
            return ort.InferenceSession(str(path), options, providers=self.providers)
        except Exception as exc:  # a model ORT rejects: this backend's failure, the sweep goes on
            if out_of_memory_cause(exc, "onnxruntime") is not None:
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendFailed(f"onnxruntime could not load {path.name}: {message}") from None

    def stop_spinning_after_runs(self) -> None:
        """Run from now on in a session whose threads stop spin-waiting when a run returns (OrtLayerTimer says
        why); the session's info says so."""
        self.session = self._session(self.models.timing, stop_spinning=True)
        self.binding = self.bind(self.session) if self.cuda else None
        self.info["session_config"] = {"session.force_spinning_stop": "1"}

    def bind(self, session: Any) -> Any:
        """``session``'s inputs and output bound on the GPU, so that a run copies nothing to or from the host."""
        import onnxruntime as ort

        binding = session.io_binding()
        for name, value in self.feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", self.device_id))
        binding.bind_output(self.models.output, "cuda", self.device_id)
        return binding

    def _end_profiling(self) -> tuple[dict[str, list[str]], frozenset[str]]:
        """Stop profiling (later runs are not profiled) and read which provider ran each node, and which
        nodes were shape arithmetic."""
        path = self.session.end_profiling()
        try:
            profile = json.loads(Path(path).read_text())
        finally:
            self._profile_dir.cleanup()
        return node_providers(profile), shape_arithmetic(profile)

    def forward(self) -> None:
        with self._oom_forward:
            if self.binding is not None:
                self.session.run_with_iobinding(self.binding)  # Run synchronises the CUDA stream before returning
                self._out = None
            else:
                self._out = self.session.run([self.models.output], self.feed)[0]

    def output(self) -> np.ndarray:
        if self.binding is not None:
            self.forward()
            return np.asarray(self.binding.copy_outputs_to_cpu()[0], dtype=np.float32)
        if self._out is None:
            self.forward()
        return np.asarray(self._out, dtype=np.float32)

    def layer_timer(self) -> LayerTimer:
        return OrtLayerTimer(self)

    def blobs(self) -> dict[str, np.ndarray]:
        """The probe blobs, from the probe model (same graph, extra outputs), run once."""
        with self._oom_forward:  # the probe session's own allocation too
            session = self._session(self.models.probe)
            values = session.run(self.models.probe_names, self.feed)
        return {name: np.asarray(v, dtype=np.float32) for name, v in zip(self.models.probe_names, values, strict=True)}


class OrtLayerTimer(LayerTimer):
    """A second session of the same model, mode and provider with ONNX Runtime's profiler on (the timed
    session stays unprofiled); its node events become per-row times when :meth:`passes` ends profiling.

    The two sessions alternate in one process, each with its own intra-op thread pool, and by default ONNX
    Runtime's threads go on spin-waiting after a run: one session's spinning threads took the cores from the
    other's next run, by an amount that changed from one worker to the next (on the 2-core development VM,
    MobileNet's median profiled/plain ratio over 140 pairs was 0.99, 1.14, 1.18 and 1.55 in four runs). Both
    sessions here stop spinning when a run returns (``session.force_spinning_stop``; four runs: 1.08 to
    1.09); the plain forward's session says so in the profile's metadata (``session_config``), where
    ``harness bench`` keeps ONNX Runtime's defaults."""

    def __init__(self, timed: OnnxRuntimeSession) -> None:
        import onnx

        self.timed = timed
        timed.stop_spinning_after_runs()
        self._folder = tempfile.TemporaryDirectory(prefix="harness-ort-layers-")
        folder = Path(self._folder.name)
        optimized_path = folder / "optimized.onnx"
        self.session = timed._session(timed.models.timing, profile_prefix=folder / "layers",
                                      optimized_to=optimized_path, stop_spinning=True)
        exported = onnx.load(str(timed.models.timing), load_external_data=False)
        optimized = onnx.load(str(optimized_path), load_external_data=False)
        self._units, self._row_of = node_units(timed.graph, exported, optimized)
        self.binding = timed.bind(self.session) if timed.cuda else None
        self.mechanism = ("ONNX Runtime's profiler: the duration of each executed node of the optimised graph "
                          "(<node>_kernel_time events, microseconds), summed over the nodes a row's layers became"
                          + ("; on CUDA a node event times the host side of the node (its launches), not its "
                             "kernels" if timed.cuda else "")
                          + "; both sessions (this one and the plain forward's) stop spin-waiting when a run "
                            "returns")
        self._passes: list[list[float]] | None = None

    def units(self) -> list[EngineLayer]:
        return list(self._units)

    def forward(self) -> None:
        if self._passes is not None:
            raise RuntimeError("onnxruntime's profiling has ended: no more instrumented passes")
        with self.timed._oom_forward:
            if self.binding is not None:
                self.session.run_with_iobinding(self.binding)
            else:
                self.session.run([self.timed.models.output], self.timed.feed)

    def passes(self) -> list[list[float]]:
        """Every profiled run's seconds per row; ends profiling (the profile is read from its file)."""
        if self._passes is None:
            self._passes = profile_passes(read_profile(self.session.end_profiling()), self._row_of,
                                          len(self._units))
        return self._passes

    def close(self) -> None:
        self.session = self.binding = None
        self._folder.cleanup()
