"""PyTorch backend: the prototxt converted to an ``nn.Module`` with Caffe's semantics.

Modes: ``eager-fp32`` (the faithful baseline), ``channels_last``, ``compile`` (``torch.compile``,
compiled at load time) on any device; on CUDA also ``fp16-autocast``, ``bf16-autocast`` and
``cuda-graphs`` (the eager fp32 forward captured once and replayed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, RunTarget, Session
from harness.errors import BackendFailed, BackendUnavailable, HarnessError

CPU_MODES = ["eager-fp32", "channels_last", "compile"]
CUDA_ONLY_MODES = ["fp16-autocast", "bf16-autocast", "cuda-graphs"]


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
        return CPU_MODES + (CUDA_ONLY_MODES if device.startswith("cuda") else [])

    def load(self, target: RunTarget) -> Session:
        import torch

        mode = target.mode or CPU_MODES[0]
        if mode not in self.modes(target.device):
            raise HarnessError(f"pytorch mode '{mode}' is not available on {target.device} "
                               f"(modes: {', '.join(self.modes(target.device))})")
        if target.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(f"pytorch: {target.device} requested but this torch has no CUDA device "
                                     f"(torch {torch.__version__})")
        return PyTorchSession(target, mode)


class PyTorchSession(Session):
    def __init__(self, target: RunTarget, mode: str) -> None:
        import torch

        from harness.convert.blobs import probe_blobs
        from harness.convert.torch_module import build_module
        from harness.convert.weights import WeightSource, network_inputs

        self.torch = torch
        self.device = torch.device(target.device)
        graph = target.graph.with_inputs(batch=target.batch)
        self.probe_names = probe_blobs(graph)
        weights = WeightSource(graph, target.seed, target.weights).load()
        self.module = build_module(graph, weights, target.batch).to(self.device)
        self.inputs = [torch.from_numpy(x).to(self.device) for x in network_inputs(graph, target.seed).values()]
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
        if mode == "channels_last":
            self.module = self.module.to(memory_format=torch.channels_last)
            self.inputs = [x.to(memory_format=torch.channels_last) if x.dim() == 4 else x for x in self.inputs]
        elif mode in ("fp16-autocast", "bf16-autocast"):
            dtype = torch.float16 if mode.startswith("fp16") else torch.bfloat16
            self.autocast = lambda: torch.autocast(device_type="cuda", dtype=dtype)
        self.info: dict[str, Any] = {
            "backend": "pytorch", "mode": mode, "device": target.device, "torch": torch.__version__,
            "precision": {"fp16-autocast": "fp16 autocast", "bf16-autocast": "bf16 autocast"}.get(mode, "fp32"),
            "threads": torch.get_num_threads(),
        }
        if self.device.type == "cuda":
            self.info["gpu"] = torch.cuda.get_device_name(self.device)
            self.info["cudnn"] = torch.backends.cudnn.version()
        self._out = None
        self._call = self._eager
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if mode == "compile":
            self._compile()
        elif mode == "cuda-graphs":
            self._capture()

    def _eager(self) -> Any:
        with self.torch.inference_mode(), self.autocast():
            return self.module(*self.inputs)

    def _compile(self) -> None:
        compiled = self.torch.compile(self.module)
        start = time.perf_counter()
        try:
            with self.torch.inference_mode():
                self._out = compiled(*self.inputs)  # compilation happens here, not in the timed runs
        except Exception as exc:  # inductor needs a C++ compiler / Triton: a failure is recorded, not fatal
            raise BackendFailed(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        self.info["compile_s"] = round(time.perf_counter() - start, 3)

        def call() -> Any:
            with self.torch.inference_mode():
                return compiled(*self.inputs)
        self._call = call

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

    def forward(self) -> None:
        self._out = self._call()
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def output(self) -> np.ndarray:
        if self._out is None:
            self.forward()
        return self._out.detach().float().cpu().numpy()

    def blobs(self) -> dict[str, np.ndarray]:
        """Pre-softmax and sampled intermediate blobs, from an eager run of the same module (compiled
        and captured modes compute the same function; autocast modes keep their precision)."""
        with self.torch.inference_mode(), self.autocast():
            values = self.module.run(*self.inputs, keep=self.probe_names)
        return {name: values[name].float().cpu().numpy() for name in self.probe_names}

    def mark_layers(self, nvtx: bool = False) -> bool:
        # A compiled module runs inductor's code and a CUDA graph replays kernels: neither calls the
        # layers from Python, so a range around those calls would be empty or break the graph.
        if self.info["mode"] in ("compile", "cuda-graphs"):
            return False
        self.module.layer_ranges, self.module.nvtx_ranges = True, nvtx
        return True

    def framework_memory_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return int(self.torch.cuda.max_memory_allocated(self.device))
