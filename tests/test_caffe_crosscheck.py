"""The analyzer's ``caffe`` convention against real Caffe: every blob shape and every parameter blob
shape of the 12 zoo networks, at batch 1 and 4, must be exactly what Caffe itself builds."""

from __future__ import annotations

import pytest

from harness.analysis.analyzer import analyze
from harness.backends.base import RunTarget
from harness.backends.caffe.backend import CaffeBackend, CaffeSession
from harness.layers import Convention
from harness.zoo import zoo_graph, zoo_names

ZOO = list(zoo_names())
pytestmark = pytest.mark.needs_pycaffe


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("network", ZOO)
def test_analyzer_caffe_convention_equals_caffe(network: str, batch: int) -> None:
    graph = zoo_graph(network)
    analysis = analyze(graph.with_inputs(batch=batch), Convention.CAFFE, batch=batch)
    session = CaffeBackend().load(RunTarget(graph=graph, network=network, batch=batch))
    assert isinstance(session, CaffeSession)
    with session:
        caffe_blobs = session.blob_shapes
        caffe_params = session.param_shapes

    # Every blob the analyzer knows has Caffe's shape; Caffe's only extra blobs are the Split copies
    # it inserts for blobs read by several layers.
    ours = {name: tuple(shape) for name, shape in analysis.blob_shapes.items()}
    mismatched = {n: (s, caffe_blobs.get(n)) for n, s in ours.items() if caffe_blobs.get(n) != s}
    assert not mismatched, f"{network} B={batch}: blob shapes (analyzer, caffe) differ: {mismatched}"
    extra = [n for n in caffe_blobs if n not in ours and "_split_" not in n]
    assert not extra, f"{network}: Caffe has blobs the analyzer lacks: {extra}"

    our_params = {s.name: [tuple(p) for p in s.param_shapes] for s in analysis.layers if s.param_shapes}
    assert our_params == caffe_params, f"{network} B={batch}: parameter blob shapes differ"
