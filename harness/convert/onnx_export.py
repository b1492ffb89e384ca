"""ONNX export of the converted network, cached on disk.

The TorchScript-based exporter (``dynamo=False``) at opset 17 is used: it exports every layer of the
12 zoo networks without extra dependencies (the dynamo exporter needs onnxscript) and names the graph
outputs after the Caffe blobs. One export per (graph, batch, weights) serves two models:

- the *probe* model, whose outputs are the network output plus the probe blobs (pre-softmax and a
  sample of intermediates), used by ``harness verify``;
- the *timing* model, the same graph with only the network output, so that ONNX Runtime may fuse
  freely when it is timed. It is derived from the probe model by dropping graph outputs, not by a
  second export, so the two cannot differ in anything but their outputs.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.convert.blobs import output_blob, probe_blobs
from harness.convert.cache import cache_dir, cache_key, graph_fingerprint, weights_fingerprint
from harness.convert.weights import Weights
from harness.errors import BackendFailed, HarnessError
from harness.ir.graph import Graph

OPSET = 17


@dataclass(frozen=True)
class OnnxModels:
    probe: Path
    timing: Path
    input_names: list[str]
    output: str
    probe_names: list[str]


def export_onnx(graph: Graph, weights: Weights, batch: int) -> OnnxModels:
    """Export (or reuse from the cache) the network built for ``batch``; failures raise BackendFailed."""
    import onnx
    import torch

    graph = graph.with_inputs(batch=batch)
    output, probes = output_blob(graph), probe_blobs(graph)
    key = cache_key(graph_fingerprint(graph), weights_fingerprint(weights), batch, torch.__version__,
                    onnx.__version__, OPSET, output, probes)
    stem = cache_dir("onnx") / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', graph.name)}-b{batch}-{key}"
    models = OnnxModels(Path(f"{stem}.probe.onnx"), Path(f"{stem}.onnx"), [s.name for s in graph.inputs],
                        output, probes)
    if models.probe.exists() and models.timing.exists():
        return models
    from harness.convert.torch_module import build_module
    from harness.convert.weights import network_inputs

    module = build_module(graph, weights, batch, outputs=[output, *probes])
    example = tuple(torch.from_numpy(x) for x in network_inputs(graph).values())
    tmp = models.probe.with_name(models.probe.name + ".part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Slices with a step (Caffe pooling's explicit padding) are not constant-folded: harmless.
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # shapes are fixed per batch
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy exporter, chosen above
            torch.onnx.export(module, example, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=models.input_names, output_names=[output, *probes])
    except HarnessError:
        raise
    except Exception as exc:  # the exporter's own errors: recorded as this backend's failure
        tmp.unlink(missing_ok=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BackendFailed(f"ONNX export of {graph.name} failed: {type(exc).__name__}: {first}") from None
    model = onnx.load(str(tmp))
    del model.graph.output[1:]
    timing_tmp = models.timing.with_name(models.timing.name + ".part")
    onnx.save(model, str(timing_tmp))
    tmp.replace(models.probe)
    timing_tmp.replace(models.timing)
    return models
