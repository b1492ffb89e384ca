"""ONNX export of the converted network, cached on disk.

The TorchScript-based exporter (``dynamo=False``) at opset 17 is used: it exports every layer of the
12 zoo networks without extra dependencies (the dynamo exporter needs onnxscript) and names the graph
outputs after the Caffe blobs. One export per (graph, batch, weights) serves two models:

- the *probe* model, whose outputs are the network output plus the probe blobs (pre-softmax and a
  sample of intermediates), used by ``harness verify``;
- the *timing* model, the same graph with only the network output, so that ONNX Runtime may fuse
  freely when it is timed. It is derived from the probe model by dropping graph outputs, not by a
  second export, so the two cannot differ in anything but their outputs.

Both models keep their weights in one shared external-data file next to them, written once. The
batch is baked into the export (the converted layers fix their shapes at build time: a Reshape's
target shape, Caffe's pooling clip), so each batch is its own export; a dynamic batch axis would
silently keep one batch's constants.

A cached export is found without importing torch or onnx (the key names their versions as the installed
packages declare them): an ONNX Runtime worker whose export is cached never imports either, so its start-up
and its memory figure are ONNX Runtime's alone.
"""

from __future__ import annotations

import functools
import importlib.metadata
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.convert.blobs import output_blob, probe_blobs
from harness.convert.cache import CacheError, cache_dir, cache_key, graph_fingerprint, intact, record
from harness.convert.weights import WeightSource
from harness.errors import BackendFailed, HarnessError
from harness.files import name_part

OPSET = 17


@dataclass(frozen=True)
class OnnxModels:
    probe: Path
    timing: Path
    input_names: list[str]
    output: str
    probe_names: list[str]


@functools.cache
def exporter_versions() -> dict[str, str]:
    """The versions of torch and onnx installed here, as their packages declare them (no import)."""
    versions = {}
    for name in ("torch", "onnx"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def export_onnx(source: WeightSource) -> OnnxModels:
    """Export (or reuse from the cache) ``source.graph`` at its batch with ``source``'s weights;
    the weights are only drawn or read, and torch and onnx only imported, when the export is not cached.
    Failures raise BackendFailed."""
    graph = source.graph
    batch = graph.inputs[0].shape[0] if graph.inputs else 1
    output, probes = output_blob(graph), probe_blobs(graph)
    versions = exporter_versions()
    key = cache_key(graph_fingerprint(graph), source.key(), versions["torch"], versions["onnx"], OPSET,
                    output, probes)
    folder = cache_dir("onnx")
    stem = f"{name_part(graph.name)}-b{batch}-{key}"
    models = OnnxModels(folder / f"{stem}.probe.onnx", folder / f"{stem}.onnx", [s.name for s in graph.inputs],
                        output, probes)
    if intact(models.timing):  # the manifest covers the probe model, the timing model and the weights
        return models
    import onnx
    import torch

    from harness.convert.torch_module import build_module
    from harness.convert.weights import network_inputs

    module = build_module(graph, source.load(), batch, outputs=[output, *probes])
    example = tuple(torch.from_numpy(x) for x in network_inputs(graph).values())
    exported = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Slices with a step (Caffe pooling's explicit padding) are not constant-folded: harmless.
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # shapes are fixed per batch
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy exporter, chosen above
            torch.onnx.export(module, example, exported, dynamo=False, opset_version=OPSET,
                              input_names=models.input_names, output_names=[output, *probes])
    except HarnessError:
        raise
    except Exception as exc:  # the exporter's own errors: recorded as this backend's failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BackendFailed(f"ONNX export of {graph.name} failed: {type(exc).__name__}: {first}") from None
    del module
    model = onnx.load_from_string(exported.getvalue())
    del exported
    # Written in a private folder, then moved into place, then the manifest (harness.convert.cache) that
    # makes the set "cached": an interrupted or damaged export is never loaded, it is exported again.
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=folder))
        try:
            weights = f"{stem}.weights"
            onnx.save(model, str(work / models.probe.name), save_as_external_data=True,
                      all_tensors_to_one_file=True, location=weights, size_threshold=1024)
            del model.graph.output[1:]  # the tensors now point at the external file: only the graph is rewritten
            onnx.save(model, str(work / models.timing.name))
            written = [folder / name for name in (weights, models.probe.name, models.timing.name)
                       if (work / name).exists()]  # no weights file when every tensor is under the size threshold
            for path in written:
                os.replace(work / path.name, path)
            record(models.timing, written)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except OSError as exc:  # a full disk, a read-only cache folder
        raise CacheError(f"cannot write the ONNX export of {graph.name} to {folder} ({exc.strerror or exc})") from None
    return models
