"""OpenCV DNN backend: the prototxt and a .caffemodel read by ``cv2.dnn.readNetFromCaffe``.

OpenCV parses the prototxt itself, so this is an engine independent of the PyTorch conversion.
Modes are OpenCV's backend/target pairs: ``cpu`` (DNN_BACKEND_OPENCV / DNN_TARGET_CPU) always;
``cuda`` and ``cuda-fp16`` (DNN_BACKEND_CUDA) when cv2's DNN module has its CUDA backend
(``getAvailableTargets(DNN_BACKEND_CUDA)``; ``cv2.cuda``'s device count alone says nothing about the
DNN module). OpenCV 5 dropped the Caffe importer, so this backend needs OpenCV 4.x.

OpenCV does not fail when it cannot honour a request: without CUDA support it switches the whole net
to the CPU (a log line), on a GPU without fp16 it quietly turns ``DNN_TARGET_CUDA_FP16`` into
``DNN_TARGET_CUDA``, and a layer its CUDA backend lacks runs on the CPU (an INFO log line). What ran
where is read back after the first forward pass, at load, from ``Net.dump()``: it labels every layer
(or fused group of layers) with ``<backend>/<target>``, the backend being the requested one only where
that layer got a node of it, else ``OCV``. Any label other than the requested pair makes the
configuration ``unavailable``, naming the layers.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, EngineLayer, LayerTimer, RunTarget, Session
from harness.backends.oom import OutOfMemoryAs, out_of_memory_cause
from harness.errors import BackendFailed, BackendUnavailable, HarnessError

# mode -> (backend constant, target constant) names in cv2.dnn
MODES = {"cpu": ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU"),
         "cuda": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA"),
         "cuda-fp16": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA_FP16")}
#: mode -> the ``<backend>/<target>`` label Net.dump() gives a layer that ran as requested
DUMP_LABELS = {"cpu": "OCV/CPU", "cuda": "CUDA/CUDA", "cuda-fp16": "CUDA/CUDA_FP16"}
# One node of the DOT text: `"name" [label="...<backend>/<target>\n" ...]`; a fused group's label is
# `{a\nType\n... | b\nType\n...<backend>/<target>\n }`. The layer names start the label and each `| `.
_DUMP_NODE = re.compile(r'^\s*"[^"]+" \[label="\{?(?P<label>.*?)\\[ln](?P<where>\w+/\w+)\\n(?: \})?"', re.MULTILINE)


def _cuda_devices(cv2: Any) -> int:
    """GPUs the DNN module's CUDA backend can use: none unless that backend was built in."""
    if not cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA):
        return 0
    return int(cv2.cuda.getCudaEnabledDeviceCount())


def layer_placement(dump: str) -> dict[str, str]:
    """Layer (or fused group, named by its layers joined with '+') -> ``<backend>/<target>``, from the
    DOT text of ``cv2.dnn.Net.dump()``."""
    placement = {}
    for node in _DUMP_NODE.finditer(dump):
        names = [part.strip().split("\\n")[0] for part in node["label"].split(" | ")]
        placement["+".join(names)] = node["where"]
    return placement


def check_placement(placement: dict[str, str], expected: str) -> str | None:
    """Why the layers did not all run as ``expected`` (or nothing was placed), or None."""
    if not placement:
        return "Net.dump() named no layers"
    elsewhere = {layer: where for layer, where in placement.items() if where != expected}
    if not elsewhere:
        return None
    counts = ", ".join(f"{n} on {where}" for where, n in sorted(Counter(elsewhere.values()).items()))
    return (f"{len(elsewhere)} of {len(placement)} layers did not run on {expected} ({counts}: "
            f"{', '.join(list(elsewhere)[:8])}{', ...' if len(elsewhere) > 8 else ''})")


class OpenCVBackend(Backend):
    name = "opencv"

    @classmethod
    def probe(cls) -> BackendInfo:
        try:
            import cv2
        except ImportError as exc:
            return BackendInfo(cls.name, False, reason=f"opencv is not installed ({exc})",
                               hint="pip install 'harness[opencv]'")
        if not hasattr(cv2.dnn, "readNetFromCaffe"):
            return BackendInfo(cls.name, False, version=cv2.__version__, origin=cv2.__file__,
                               reason=f"OpenCV {cv2.__version__} has no Caffe importer (removed in 5.0)",
                               hint="pip install 'opencv-python-headless<5'")
        devices = ["cpu"] + [f"cuda:{i}" for i in range(_cuda_devices(cv2))]
        return BackendInfo(cls.name, True, version=cv2.__version__, origin=cv2.__file__, devices=devices)

    def modes(self, device: str) -> list[str]:
        return ["cuda", "cuda-fp16"] if device.startswith("cuda") else ["cpu"]

    def preload(self) -> None:
        import cv2  # noqa: F401

    def prepare_shared(self, target: RunTarget) -> None:
        from harness.convert.cache import prototxt_file
        from harness.convert.weights import WeightSource

        prototxt_file(target.graph, self.name)
        WeightSource(target.graph.with_inputs(batch=target.batch), target.seed, target.weights).caffemodel()

    def load(self, target: RunTarget) -> Session:
        info = self.probe()
        if not info.available:
            raise BackendUnavailable(f"opencv: {info.reason}")
        if target.device not in info.devices:
            raise BackendUnavailable(f"opencv: {target.device} is not available to this cv2 build "
                                     f"(devices: {', '.join(info.devices)})")
        mode = target.mode or self.modes(target.device)[0]
        if mode not in self.modes(target.device):
            raise HarnessError(f"opencv mode '{mode}' is not available on {target.device} "
                               f"(modes: {', '.join(self.modes(target.device))})")
        return OpenCVSession(target, mode)


class OpenCVSession(Session):
    def __init__(self, target: RunTarget, mode: str) -> None:
        where = f"{target.network} B={target.batch} on {target.device}"
        self._oom_forward = OutOfMemoryAs("opencv", f"in forward of {where}")
        with OutOfMemoryAs("opencv", f"at load of {where}"):
            self._setup(target, mode)

    def _setup(self, target: RunTarget, mode: str) -> None:
        import cv2

        from harness.analysis.analyzer import fork_info
        from harness.convert.blobs import last_writer, output_blob, probe_blobs
        from harness.convert.cache import prototxt_file
        from harness.convert.weights import WeightSource, network_inputs

        self.graph = graph = target.graph.with_inputs(batch=target.batch)
        prototxt = prototxt_file(graph, "opencv")
        caffemodel = WeightSource(graph, target.seed, target.weights).caffemodel()
        self.files, self.mode = (prototxt, caffemodel), mode
        if target.device.startswith("cuda"):  # the DNN CUDA backend runs on the current device
            cv2.cuda.setDevice(int(target.device.split(":")[1]) if ":" in target.device else 0)
        self.feed = network_inputs(graph, target.seed)
        self.net = self._load(fusion=True)

        def reader(blob: str) -> str:  # OpenCV names outputs by layer: a blob is read from its last writer
            writer = last_writer(graph, blob)
            return writer.name if writer is not None else blob

        self.output_layer = reader(output_blob(graph))
        self.probe_layers = {name: reader(name) for name in probe_blobs(graph)}
        self.info: dict[str, Any] = {"backend": "opencv", "mode": mode, "device": target.device,
                                     "opencv": cv2.__version__, "precision": "fp16" if mode.endswith("fp16")
                                     else "fp32", "caffemodel": caffemodel.name, "threads": cv2.getNumThreads(),
                                     "tf32": {"NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE")}
                                     if target.device.startswith("cuda") else "not applicable on cpu",
                                     **fork_info(graph)}
        self._out: np.ndarray | None = None
        self.forward()  # allocates and places the layers; what ran where is known from here on
        placement = layer_placement(self.net.dump())
        self.info["layer_placement"] = dict(Counter(placement.values()))
        problem = check_placement(placement, DUMP_LABELS[mode])
        if problem:
            raise BackendUnavailable(f"opencv: {problem}")

    def _load(self, fusion: bool) -> Any:
        import cv2

        prototxt, caffemodel = self.files
        try:
            net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
            backend, dnn_target = MODES[self.mode]
            net.setPreferableBackend(getattr(cv2.dnn, backend))
            net.setPreferableTarget(getattr(cv2.dnn, dnn_target))
            net.enableFusion(fusion)
        except cv2.error as exc:
            if out_of_memory_cause(exc, "opencv") is not None:
                raise
            raise BackendFailed(f"opencv could not import {prototxt.name}: {_cv_message(exc)}") from None
        for name, value in self.feed.items():
            net.setInput(value, name)
        return net

    def forward(self) -> None:
        import cv2

        with self._oom_forward:
            try:
                self._out = self.net.forward(self.output_layer)  # returns when done (host copy on CUDA too)
            except cv2.error as exc:
                raise BackendFailed(f"opencv forward failed: {_cv_message(exc)}") from exc

    def output(self) -> np.ndarray:
        if self._out is None:
            self.forward()
        return np.asarray(self._out, dtype=np.float32)

    def layer_timer(self) -> LayerTimer:
        return OpenCVLayerTimer(self)

    def blobs(self) -> dict[str, np.ndarray]:
        import cv2

        names = list(self.probe_layers)
        # With fusion on, OpenCV lets a layer feeding a Concat write straight into the Concat's
        # buffer and reuses memory behind requested outputs: intermediates read that way are garbage
        # (seen with 4.14). Fusion cannot be switched off on the timed net either, since fusing has
        # already folded BatchNorm into the convolution weights; a second, unfused net is probed.
        with self._oom_forward:  # the probe net's own allocation too
            net = self._load(fusion=False)
            try:
                values = net.forward([self.probe_layers[n] for n in names])
            except cv2.error as exc:
                raise BackendFailed(f"opencv forward failed: {_cv_message(exc)}") from exc
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values, strict=True)}


class OpenCVLayerTimer(LayerTimer):
    """OpenCV's own per-layer clock: after every forward, ``Net.getPerfProfile()`` holds the ticks of each
    layer of that pass. Layers OpenCV fused (``Net.dump()`` groups them) report 0 ticks and their work is in
    the group's first layer, so a fused group is one row."""

    def __init__(self, session: OpenCVSession) -> None:
        import cv2

        self.session, self.tick_s = session, 1.0 / cv2.getTickFrequency()
        net = session.net
        names = list(net.getLayerNames())  # layer ids 1..n; 0 is OpenCV's input layer
        types = {name: net.getLayer(i + 1).type for i, name in enumerate(names)}
        prototxt = {layer.name for layer in session.graph.layers}
        group_of = {layer: group.split("+") for group in layer_placement(net.dump()) for layer in group.split("+")}
        self._units: list[EngineLayer] = []
        self._row: list[int] = []  # perf-profile index -> row
        rows: dict[str, int] = {}
        for name in names:
            members = group_of.get(name, [name])
            key = "+".join(members)
            if key not in rows:
                rows[key] = len(self._units)
                known = tuple(m for m in members if m in prototxt)
                note = ("fused by OpenCV" if len(members) > 1 else "") if known else "added by OpenCV"
                self._units.append(EngineLayer(key, known, tuple(types.get(m, "?") for m in members), note))
            self._row.append(rows[key])
        self.mechanism = ("cv2.dnn.Net.getPerfProfile() after each forward: OpenCV's tick count of every layer it "
                          "ran (a fused group's work is in its first layer)"
                          + ("; with the CUDA backend a layer's ticks are the host's, around launches that "
                             "need not have finished" if session.mode != "cpu" else ""))
        self._passes: list[list[float]] = []

    def units(self) -> list[EngineLayer]:
        return list(self._units)

    def forward(self) -> None:
        self.session.forward()
        _, ticks = self.session.net.getPerfProfile()
        seconds = [0.0] * len(self._units)
        for index, value in enumerate(np.asarray(ticks, dtype=np.float64).ravel()):
            seconds[self._row[index]] += value * self.tick_s
        self._passes.append(seconds)

    def passes(self) -> list[list[float]]:
        return self._passes


def _cv_message(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
