"""ONNX Runtime backend: the converted network exported to ONNX (see harness.convert.onnx_export).

Modes are ONNX Runtime's graph optimization levels; the execution provider follows the device
(CPUExecutionProvider on ``cpu``, CUDAExecutionProvider on ``cuda:N``, with inputs and outputs bound
on the GPU so that a timed run does not copy them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, RunTarget, Session
from harness.errors import BackendFailed, BackendUnavailable, HarnessError

# mode -> GraphOptimizationLevel attribute; the first is ONNX Runtime's own default.
OPT_LEVELS = {"opt-all": "ORT_ENABLE_ALL", "opt-extended": "ORT_ENABLE_EXTENDED",
              "opt-basic": "ORT_ENABLE_BASIC", "opt-disabled": "ORT_DISABLE_ALL"}


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
        devices = ["cpu"] + (["cuda:0"] if "CUDAExecutionProvider" in providers else [])
        return BackendInfo(cls.name, True, version=ort.__version__, origin=ort.__file__, devices=devices,
                           details={"providers": providers, "device": ort.get_device()})

    def modes(self, device: str) -> list[str]:
        return list(OPT_LEVELS)

    def load(self, target: RunTarget) -> Session:
        import onnxruntime as ort

        mode = target.mode or next(iter(OPT_LEVELS))
        if mode not in OPT_LEVELS:
            raise HarnessError(f"onnxruntime mode '{mode}' is unknown (modes: {', '.join(OPT_LEVELS)})")
        if target.device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("onnxruntime: CUDAExecutionProvider is not available "
                                     "(install onnxruntime-gpu)")
        return OnnxRuntimeSession(target, mode)


class OnnxRuntimeSession(Session):
    def __init__(self, target: RunTarget, mode: str) -> None:
        import onnxruntime as ort
        import torch

        from harness.convert.onnx_export import OPSET, export_onnx
        from harness.convert.weights import WeightSource, network_inputs

        graph = target.graph.with_inputs(batch=target.batch)
        self.models = export_onnx(WeightSource(graph, target.seed, target.weights))
        self.feed = network_inputs(graph, target.seed)
        self.options = ort.SessionOptions()
        self.options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[mode])
        self.cuda = target.device.startswith("cuda")
        device_id = int(target.device.split(":")[1]) if ":" in target.device else 0
        self.providers: list[Any] = [("CUDAExecutionProvider", {"device_id": device_id})] if self.cuda \
            else ["CPUExecutionProvider"]
        self.session = self._session(self.models.timing)
        self.info: dict[str, Any] = {
            "backend": "onnxruntime", "mode": mode, "device": target.device, "onnxruntime": ort.__version__,
            "provider": self.session.get_providers()[0], "opset": OPSET, "exporter": f"torch {torch.__version__} "
            "torch.onnx.export(dynamo=False)", "precision": "fp32", "model": self.models.timing.name,
        }
        self._out: np.ndarray | None = None
        self.binding = None
        if self.cuda:
            self.binding = self.session.io_binding()
            for name, value in self.feed.items():
                self.binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", device_id))
            self.binding.bind_output(self.models.output, "cuda", device_id)

    def _session(self, path: Any) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(path), self.options, providers=self.providers)
        except Exception as exc:  # a model ORT rejects: this backend's failure, the sweep goes on
            raise BackendFailed(f"onnxruntime could not load {path.name}: {str(exc).splitlines()[0]}") from None

    def forward(self) -> None:
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

    def blobs(self) -> dict[str, np.ndarray]:
        """The probe blobs, from the probe model (same graph, extra outputs), run once."""
        session = self._session(self.models.probe)
        values = session.run(self.models.probe_names, self.feed)
        return {name: np.asarray(v, dtype=np.float32) for name, v in zip(self.models.probe_names, values, strict=True)}
