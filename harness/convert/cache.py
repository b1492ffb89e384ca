"""Where converted artefacts (.caffemodel, .onnx) are cached, and the keys that name them.

A key is a hash of everything the artefact depends on (the graph's layers and hyperparameters, the
batch, which weights - :class:`harness.convert.weights.WeightSource` names them without drawing
them -, the exporter's version), so a changed prototxt or seed never reuses a stale file.
``HARNESS_CACHE_DIR`` overrides the location (tests point it at a temporary folder).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.errors import BackendFailed
from harness.ir.graph import Graph
from harness.ir.textformat import Message


def cache_dir(kind: str) -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "harness")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _message_text(msg: Message) -> str:
    """A canonical rendering of a message that ignores file locations."""
    parts = []
    for f in msg.fields:
        if isinstance(f.value, Message):
            value = f"{{{_message_text(f.value)}}}"
        else:
            value = f"{type(f.value).__name__}:{f.value!r}"
        parts.append(f"{f.name}={value}")
    return ";".join(parts)


def graph_fingerprint(graph: Graph) -> str:
    h = hashlib.sha256()
    for spec in graph.inputs:
        h.update(f"input {spec.name} {spec.shape}\n".encode())
    for layer in graph.layers:
        h.update(f"{layer.name}|{layer.type}|{layer.bottoms}|{layer.tops}|{_message_text(layer.spec)}\n".encode())
    return h.hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def prototxt_file(graph: Graph, backend: str) -> Path:
    """The prototxt file an engine that reads files itself (Caffe, OpenCV) loads: the graph's source, or
    for a zoo graph with no checked-out file (source ``zoo:<name>``) its generated text, cached once."""
    if graph.source.startswith("zoo:"):
        from harness.zoo import zoo_prototxt

        name = graph.source.removeprefix("zoo:")
        text = zoo_prototxt(name)
        path = cache_dir("prototxt") / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.prototxt"
        if not path.is_file():
            part = path.with_name(f"{path.name}.{os.getpid()}.part")
            part.write_text(text, encoding="utf-8")
            part.replace(path)  # concurrent writers never expose a half-written file
        return path
    path = Path(graph.source)
    if not path.is_file():
        raise BackendFailed(f"{backend} reads the prototxt file itself, but '{graph.source}' is not a file")
    return path


def cache_key(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:20]
