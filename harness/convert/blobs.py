"""Which blobs of a graph the backends report and the verifier compares.

A blob's value is the one it has after the whole forward pass, as in Caffe's ``net.blobs``: a blob
rewritten in place (``ReLU`` with top == bottom) holds the rectified values. An engine that names
outputs by layer (OpenCV) reads the blob from its last writer.
"""

from __future__ import annotations

from harness.ir.graph import Graph, Layer

#: intermediate blobs sampled for cross-engine comparison, besides the output and the pre-softmax blob
DEFAULT_SAMPLES = 6


def last_writer(graph: Graph, blob: str) -> Layer | None:
    """The last layer that writes ``blob`` (None for a network input)."""
    writer = None
    for layer in graph.layers:
        if blob in layer.tops:
            writer = layer
    return writer


def output_blob(graph: Graph) -> str:
    """The network output: the first top of the last layer (Caffe's deploy convention)."""
    for layer in reversed(graph.layers):
        if layer.tops:
            return layer.tops[0]
    return graph.inputs[0].name


def pre_softmax_blob(graph: Graph) -> str | None:
    """The bottom of the final Softmax, whose values a Softmax output flattens (None if no Softmax)."""
    writer = last_writer(graph, output_blob(graph))
    if writer is not None and writer.type == "Softmax" and not writer.in_place:
        return writer.bottoms[0]
    return None


def probe_blobs(graph: Graph, samples: int = DEFAULT_SAMPLES) -> list[str]:
    """Pre-softmax blob plus ``samples`` intermediate blobs spread evenly through the network.

    Only blobs whose last writer has a single top are sampled, so that every engine that names
    outputs by layer can read them.
    """
    out = output_blob(graph)
    pre = pre_softmax_blob(graph)
    inputs = {s.name for s in graph.inputs}
    candidates: list[str] = []
    for layer in graph.layers:
        for top in layer.tops:
            if top in inputs or top in (out, pre) or top in candidates:
                continue
            writer = last_writer(graph, top)
            if writer is not None and len(writer.tops) == 1:
                candidates.append(top)
    if samples and len(candidates) > samples:
        step = len(candidates) / samples
        candidates = [candidates[int(step * (i + 0.5))] for i in range(samples)]
    return ([pre] if pre else []) + candidates[:samples]
