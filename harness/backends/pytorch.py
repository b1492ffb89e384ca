"""PyTorch backend: the prototxt converted to an ``nn.Module`` with Caffe's semantics.

Modes (see docs/frameworks.md for the table):

- ``eager-fp32`` (the faithful baseline), ``channels_last``, ``compile`` (``torch.compile``, compiled
  at load time) and, on CUDA, ``cuda-graphs`` (the eager forward captured once and replayed) all
  compute in IEEE fp32: TF32 is switched off for matmul and cuDNN at load.
- ``tf32``: the eager forward with TF32 allowed, on GPUs that have it (compute capability >= 8.0).
- ``fp16-autocast`` and ``bf16-autocast``: ``torch.autocast``, on CUDA (bf16 from compute capability
  8.0) and on CPU where this torch runs convolutions and matmuls in that dtype under CPU autocast.

Every session records what it really ran: the TF32 flags read back (CUDA), which layer types produced
reduced-precision outputs (autocast), the compile time and proof that a compiled graph ran (compile).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, EngineLayer, LayerTimer, RunTarget, Session
from harness.backends.oom import OutOfMemoryAs
from harness.cuda_driver import cuda_capability
from harness.errors import BackendFailed, BackendUnavailable, HarnessError, LayerTimingUnsupported

#: modes on every device, first the default
BASE_MODES = ["eager-fp32", "channels_last", "compile"]
#: autocast mode -> torch dtype name
AUTOCAST = {"fp16-autocast": "float16", "bf16-autocast": "bfloat16"}
TF32_MODE = "tf32"
CUDA_GRAPHS_MODE = "cuda-graphs"
#: TF32 and native bf16 arrived with Ampere
AMPERE = (8, 0)
#: the environment variable with which cuBLAS and cuDNN refuse TF32 whatever the framework asks
TF32_OVERRIDE = "NVIDIA_TF32_OVERRIDE"


@functools.cache
def cpu_autocast_works(dtype: str) -> bool:
    """Whether this torch runs convolution and matmul in ``dtype`` under CPU autocast. Tried, not
    looked up: releases that do not support a dtype on CPU warn and run fp32 instead."""
    import torch
    import torch.nn.functional as F

    x = torch.ones(1, 1, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.autocast("cpu", dtype=getattr(torch, dtype)):
                conv, linear = F.conv2d(x, x[:, :, :3, :3]), F.linear(x.flatten(1), x.flatten(1))
        except RuntimeError:
            return False
    return conv.dtype == linear.dtype == getattr(torch, dtype)


def _capability(device: str) -> tuple[int, int] | None:
    """The compute capability of ``cuda:N``; None when this torch cannot see that GPU."""
    import torch

    index = int(device.split(":")[1]) if ":" in device else 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        return None
    return tuple(torch.cuda.get_device_capability(index))  # type: ignore[return-value]


class PyTorchBackend(Backend):
    name = "pytorch"

    @classmethod
    def probe(cls) -> BackendInfo:
        try:
            import torch
        except ImportError as exc:
            return BackendInfo(cls.name, False, reason=f"torch is not installed ({exc})",
                               hint="pip install 'harness[pytorch]'")
        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return BackendInfo(cls.name, True, version=torch.__version__, origin=torch.__file__, devices=devices,
                           details={"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()
                                    if torch.backends.cudnn.is_available() else None,
                                    "threads": torch.get_num_threads()})

    def modes(self, device: str) -> list[str]:
        """On CPU: the base modes and the autocast dtypes CPU autocast supports. On a GPU: the base
        modes, tf32 and bf16 from compute capability 8.0, fp16, cuda-graphs; on a GPU this torch
        cannot see, every CUDA mode (loading then reports the device unavailable)."""
        if not device.startswith("cuda"):
            return BASE_MODES + [m for m, dtype in AUTOCAST.items() if cpu_autocast_works(dtype)]
        # Asked of the driver, not of torch: a sweep plans its modes in the process that launches the
        # workers, which must hold no CUDA context (its memory would count in every window).
        capability = cuda_capability(device)
        ampere = capability is None or capability >= AMPERE
        return (BASE_MODES + ([TF32_MODE] if ampere else []) + ["fp16-autocast"]
                + (["bf16-autocast"] if ampere else []) + [CUDA_GRAPHS_MODE])

    def default_mode(self, device: str) -> str:
        return BASE_MODES[0]  # eager fp32 everywhere, without trying autocast as modes() does

    def preload(self) -> None:
        import harness.convert.torch_module  # noqa: F401 - torch and the converted layers

    def prepare_shared(self, target: RunTarget) -> None:
        from harness.convert.weights import WeightSource

        WeightSource(target.graph.with_inputs(batch=target.batch), target.seed, target.weights).cache()

    def worker_env(self, device: str, mode: str | None) -> dict[str, str]:
        """IEEE fp32 everywhere (the base class's NVIDIA_TF32_OVERRIDE=0) except in the tf32 mode,
        where that variable would silently switch TF32 off again inside cuBLAS and cuDNN."""
        return {} if mode == TF32_MODE else super().worker_env(device, mode)

    def no_layer_timing(self, mode: str | None) -> str | None:
        return no_layer_modules(mode or BASE_MODES[0])

    def load(self, target: RunTarget) -> Session:
        import torch

        mode = target.mode or BASE_MODES[0]
        known = BASE_MODES + list(AUTOCAST) + [TF32_MODE, CUDA_GRAPHS_MODE]
        if mode not in known:
            raise HarnessError(f"pytorch mode '{mode}' is unknown (modes: {', '.join(known)})")
        cuda = target.device.startswith("cuda")
        if cuda and _capability(target.device) is None:
            raise BackendUnavailable(f"pytorch: {target.device} requested but this torch sees no such CUDA device "
                                     f"(torch {torch.__version__}, {torch.cuda.device_count()} GPUs)")
        if mode not in self.modes(target.device):
            why = (f"compute capability {'.'.join(map(str, _capability(target.device) or ()))} < 8.0" if cuda
                   else "needs a GPU" if mode in (TF32_MODE, CUDA_GRAPHS_MODE)
                   else "CPU autocast of this torch does not run that dtype")
            raise BackendUnavailable(f"pytorch mode '{mode}' is not available on {target.device} ({why})")
        if mode == TF32_MODE and os.environ.get(TF32_OVERRIDE) == "0":
            raise BackendUnavailable(f"pytorch mode 'tf32': {TF32_OVERRIDE}=0 in the environment keeps cuBLAS "
                                     "and cuDNN from using TF32")
        return PyTorchSession(target, mode)


def no_layer_modules(mode: str) -> str | None:
    """Why a mode runs no layer module that per-layer timing could time (None: it runs them all)."""
    # A compiled module runs inductor's fused code and a CUDA graph replays kernels: no layer module runs.
    if mode in ("compile", CUDA_GRAPHS_MODE):
        return f"pytorch mode '{mode}' runs no layer module to time: per-layer timing needs an eager mode"
    return None


def set_fp32_precision(tf32: bool) -> None:
    """fp32 matmul and convolution: IEEE (tf32 False) or TF32 allowed. Process-wide torch state, so it
    is set by every load, whatever the previous session in the process chose."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def precision_state(device: str) -> dict[str, Any]:
    """The fp32 precision flags as torch reports them now (recorded with every session)."""
    import torch

    state: dict[str, Any] = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    if not device.startswith("cuda"):
        state["tf32"] = "not applicable on cpu"
        return state
    flags: dict[str, Any] = {"cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                             "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                             TF32_OVERRIDE: os.environ.get(TF32_OVERRIDE)}
    for path in ("cuda.matmul", "cudnn.conv"):  # the fp32_precision API of torch >= 2.9, where present
        backend: Any = torch.backends
        for part in path.split("."):
            backend = getattr(backend, part)
        if hasattr(backend, "fp32_precision"):
            flags[f"{path}.fp32_precision"] = backend.fp32_precision
    capable = (_capability(device) or (0, 0)) >= AMPERE and flags[TF32_OVERRIDE] != "0"
    flags["matmul_tf32"] = bool(capable and flags["cuda.matmul.allow_tf32"])
    flags["cudnn_tf32"] = bool(capable and flags["cudnn.allow_tf32"])
    state["tf32"] = flags
    return state


class PyTorchSession(Session):
    def __init__(self, target: RunTarget, mode: str) -> None:
        where = f"{target.network} B={target.batch} on {target.device}"
        self._oom_forward = OutOfMemoryAs("pytorch", f"in forward of {where}")
        with OutOfMemoryAs("pytorch", f"at load of {where}"):
            self._load(target, mode)

    def _load(self, target: RunTarget, mode: str) -> None:
        import torch

        from harness.analysis.analyzer import fork_info
        from harness.convert.blobs import probe_blobs
        from harness.convert.torch_module import build_module
        from harness.convert.weights import WeightSource, network_inputs

        self.torch = torch
        self.device = torch.device(target.device)
        set_fp32_precision(tf32=mode == TF32_MODE)
        graph = target.graph.with_inputs(batch=target.batch)
        self.probe_names = probe_blobs(graph)
        weights = WeightSource(graph, target.seed, target.weights).load()
        self.module = build_module(graph, weights, target.batch).to(self.device)
        del weights
        # from_numpy shares the float32 input; on CPU it is used as is, on CUDA copied once to the GPU
        self.inputs = [torch.from_numpy(x).to(self.device) for x in network_inputs(graph, target.seed).values()]
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
        if mode == "channels_last":
            self.module = self.module.to(memory_format=torch.channels_last)
            self.inputs = [x.to(memory_format=torch.channels_last) if x.dim() == 4 else x for x in self.inputs]
        elif mode in AUTOCAST:
            dtype = getattr(torch, AUTOCAST[mode])
            self.autocast = lambda: torch.autocast(device_type=self.device.type, dtype=dtype)
        self.info: dict[str, Any] = {
            "backend": "pytorch", "mode": mode, "device": target.device, "torch": torch.__version__,
            "precision": {"fp16-autocast": "fp16 autocast", "bf16-autocast": "bf16 autocast",
                          TF32_MODE: "tf32"}.get(mode, "fp32"),
            "threads": torch.get_num_threads(), **precision_state(target.device), **fork_info(graph),
        }
        if self.device.type == "cuda":
            self.info["gpu"] = torch.cuda.get_device_name(self.device)
            self.info["cudnn"] = torch.backends.cudnn.version()
            torch.cuda.reset_peak_memory_stats(self.device)
        self._out = None
        self._call = self._eager
        if mode in AUTOCAST:
            self.info["autocast"] = self._autocast_report(AUTOCAST[mode])
        elif mode == "compile":
            self._compile()
        elif mode == CUDA_GRAPHS_MODE:
            self._capture()

    def _eager(self) -> Any:
        with self.torch.inference_mode(), self.autocast():
            return self.module(*self.inputs)

    def _autocast_report(self, dtype: str) -> dict[str, Any]:
        """Which layer types ran in reduced precision, measured: one forward pass with a hook on every
        layer recording its output dtype, and the first layer whose output is not finite (fp16 tops
        out at 65504; activations beyond that become inf)."""
        torch = self.torch
        seen: dict[str, set[str]] = {}
        nonfinite: list[str] = []

        def record(name: str, type_: str, module: Any, args: Any, output: Any) -> None:
            outs = [t for t in (output if isinstance(output, tuple) else (output,)) if t.is_floating_point()]
            seen.setdefault(type_, set()).update(str(t.dtype).removeprefix("torch.") for t in outs)
            # a float64 sum is finite exactly when every element is, and is several times cheaper than
            # isfinite().all() on CPU
            if not nonfinite and not all(bool(torch.isfinite(t.sum(dtype=torch.float64))) for t in outs):
                nonfinite.append(f"{name} ({type_})")

        net = self.module
        handles = [module.register_forward_hook(functools.partial(record, name, type_))
                   for name, type_, module in zip(net.layer_names, net.layer_types, net.layer_modules, strict=True)]
        try:
            self._out = self._eager()
        finally:
            for handle in handles:
                handle.remove()
        return {"dtype": dtype,
                "layer_output_dtypes": {t: sorted(d) for t, d in sorted(seen.items())},
                "reduced_precision_layer_types": sorted(t for t, d in seen.items() if dtype in d),
                "first_nonfinite_layer": nonfinite[0] if nonfinite else None}

    def _compile(self) -> None:
        """Compile at load with ``fullgraph=True``, so that a graph break or dynamo's recompile limit
        raises here instead of running eager silently; then prove that the compiled graph runs: one more
        call under the profiler must show dynamo's ``Torch-Compiled Region`` (and inductor's graph)."""
        torch = self.torch
        from torch._dynamo.utils import counters

        def snapshot() -> dict[str, int]:
            return {f"{group}.{key}": counters[group][key] for group, keys in
                    (("stats", ("unique_graphs",)),
                     ("inductor", ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass")),
                     ("aot_autograd", ("autograd_cache_hit", "autograd_cache_miss", "autograd_cache_bypass")))
                    for key in keys}

        before = snapshot()
        compiled = torch.compile(self.module, fullgraph=True)

        def call() -> Any:
            with torch.inference_mode():
                return compiled(*self.inputs)

        start = time.perf_counter()
        try:
            self._out = call()  # compilation happens here, not in the timed runs
            self._sync()
        except Exception as exc:
            if isinstance(exc, getattr(torch._dynamo.exc, "FailOnRecompileLimitHit", ())):
                reason = (f"dynamo's recompile limit ({torch._dynamo.config.recompile_limit}) for the converted "
                          "networks' shared forward was reached in this process, so this network would run eager")
            else:
                lines = str(exc).strip().splitlines()
                reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
            raise BackendFailed(f"torch.compile failed: {reason}") from exc
        compile_s = time.perf_counter() - start
        regions, inductor_calls = self._compiled_regions(call)
        if not regions:
            raise BackendFailed("torch.compile: the compiled module ran no compiled region (eager fallback)")
        after = snapshot()
        delta = {k: after[k] - before[k] for k in after}
        from torch._inductor import config as inductor_config
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        self.info["compile_s"] = round(compile_s, 3)
        self.info["compile"] = {
            "backend": "inductor", "fullgraph": True, "compiled_graph_ran": True,
            "compiled_regions": regions, "inductor_graph_calls": inductor_calls,
            "new_dynamo_graphs": delta["stats.unique_graphs"],  # 0: a graph compiled earlier in this process
            "fx_graph_cache": {"enabled": bool(inductor_config.fx_graph_cache), "dir": cache_dir(),
                               **{k: delta[f"inductor.fxgraph_cache_{k}"] for k in ("hit", "miss", "bypass")}},
            "aot_autograd_cache": {k: delta[f"aot_autograd.autograd_cache_{k}"] for k in ("hit", "miss", "bypass")},
        }
        self._call = call

    def _compiled_regions(self, call: Callable[[], Any]) -> tuple[list[str], int]:
        """Dynamo's compiled-region ids (frame/compile) and the number of inductor graph calls seen by
        the profiler in one call."""
        torch = self.torch
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            call()
            self._sync()
        names = [e.name for e in prof.events()]
        regions = sorted({n.removeprefix("Torch-Compiled Region: ") for n in names
                          if n.startswith("Torch-Compiled Region")})
        return regions, sum(1 for n in names if "CompiledFxGraph" in n)

    def _capture(self) -> None:
        torch = self.torch
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm up cuDNN autotuning and the allocator outside the capture
                self._eager()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._eager()

        def replay() -> Any:
            graph.replay()
            return static_out
        self._call = replay

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def forward(self) -> None:
        with self._oom_forward:
            self._out = self._call()
            self._sync()

    def output(self) -> np.ndarray:
        if self._out is None:
            self.forward()
        return self._out.detach().float().cpu().numpy()

    def blobs(self) -> dict[str, np.ndarray]:
        """Pre-softmax and sampled intermediate blobs, from an eager run of the same module (compiled
        and captured modes compute the same function; autocast modes keep their precision)."""
        with self._oom_forward, self.torch.inference_mode(), self.autocast():
            values = self.module.run(*self.inputs, keep=self.probe_names)
        return {name: values[name].float().cpu().numpy() for name in self.probe_names}

    def mark_layers(self, nvtx: bool = False) -> bool:
        # A compiled module runs inductor's code and a CUDA graph replays kernels: neither calls the
        # layers from Python, so a range around those calls would be empty or break the graph.
        if self.info["mode"] in ("compile", CUDA_GRAPHS_MODE):
            return False
        self.module.layer_ranges, self.module.nvtx_ranges = True, nvtx
        return True

    def framework_memory_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return int(self.torch.cuda.max_memory_allocated(self.device))

    def layer_timer(self) -> LayerTimer:
        why = no_layer_modules(self.info["mode"])
        if why is not None:
            raise LayerTimingUnsupported(why)
        return TorchLayerTimer(self)


class TorchLayerTimer(LayerTimer):
    """A timer around every layer module of the eager forward: a forward pre-hook starts it, a forward hook
    stops it. On the CPU a timer is ``perf_counter``: torch's CPU operators return when their work is done.
    On a GPU it is a pair of CUDA events on the current stream, read once the pass has synchronised."""

    def __init__(self, session: PyTorchSession) -> None:
        self.session, self.torch = session, session.torch
        net = session.module
        self.modules = list(net.layer_modules)
        self._units = [EngineLayer(name, (name,), (type(module).__name__,))
                       for name, module in zip(net.layer_names, self.modules, strict=True)]
        self.cuda = session.device.type == "cuda"
        self.mechanism = ("CUDA events recorded on the current stream before and after each layer module "
                          "(forward pre-hook and hook), read after the synchronised pass" if self.cuda else
                          "perf_counter before and after each layer module (forward pre-hook and hook)")
        n = len(self.modules)
        if self.cuda:
            self._events = [(self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True))
                            for _ in range(n)]
        self._started = [0.0] * n
        self._current = [0.0] * n
        self._passes: list[list[float]] = []
        self._handles: list[Any] = []

    def units(self) -> list[EngineLayer]:
        return list(self._units)

    def attach(self) -> None:
        for i, module in enumerate(self.modules):
            self._handles.append(module.register_forward_pre_hook(functools.partial(self._start, i)))
            self._handles.append(module.register_forward_hook(functools.partial(self._stop, i)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _start(self, i: int, module: Any, args: Any) -> None:
        if self.cuda:
            self._events[i][0].record()
        else:
            self._started[i] = time.perf_counter()

    def _stop(self, i: int, module: Any, args: Any, output: Any) -> None:
        if self.cuda:
            self._events[i][1].record()
        else:
            self._current[i] = time.perf_counter() - self._started[i]

    def forward(self) -> None:
        session = self.session
        with session._oom_forward:
            session._out = session._eager()
            session._sync()
        if self.cuda:  # synchronised: every event has completed
            self._current = [start.elapsed_time(end) / 1e3 for start, end in self._events]
        self._passes.append(list(self._current))

    def passes(self) -> list[list[float]]:
        return self._passes
