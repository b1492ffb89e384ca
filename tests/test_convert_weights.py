"""The deterministic weight set shared by every backend."""

from __future__ import annotations

import numpy as np

from harness.analysis.analyzer import analyze
from harness.convert.weights import BATCHNORM_SCALE_FACTOR, INITIALIZERS, weight_set
from harness.ir.build import load_graph
from harness.layers.base import LayerHandler, handlers

NET = """
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "c1" top: "c1" }
layer { name: "sc" type: "Scale" bottom: "c1" top: "c1" scale_param { bias_term: true } }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "c2" top: "fc" inner_product_param { num_output: 10 } }
"""


def test_shapes_are_caffes_param_blobs() -> None:
    graph = load_graph("<n>", text=NET)
    weights = weight_set(graph)
    for stats in analyze(graph, "caffe").layers:
        got = [b.shape for b in weights.get(stats.name, [])]
        assert got == [tuple(s) for s in stats.param_shapes], stats.name
        assert all(b.dtype == np.float32 for b in weights.get(stats.name, []))


def test_deterministic_per_seed_and_layer_independent() -> None:
    graph = load_graph("<n>", text=NET)
    a, b, c = weight_set(graph, 1), weight_set(graph, 1), weight_set(graph, 2)
    assert all(np.array_equal(x, y) for k in a for x, y in zip(a[k], b[k], strict=True))
    assert not np.array_equal(a["c1"][0], c["c1"][0])
    # editing one layer leaves the others' weights unchanged
    other = load_graph("<n>", text=NET.replace("num_output: 10", "num_output: 12"))
    assert np.array_equal(weight_set(other, 1)["c1"][0], a["c1"][0])


def test_scales_are_sensible() -> None:
    weights = weight_set(load_graph("<n>", text=NET))
    std = float(weights["c1"][0].std())
    assert 0.5 * np.sqrt(2 / 27) < std < 1.5 * np.sqrt(2 / 27)  # He fan-in scaling, fan-in 3*3*3
    _mean, var, factor = weights["bn"]
    assert factor.tolist() == [np.float32(BATCHNORM_SCALE_FACTOR)]
    assert (var > 0).all() and float((var / factor).min()) > 0.4 and float((var / factor).max()) < 2.1
    assert not weights["c1"][0].flags.writeable  # shared through the cache: read-only


def test_every_type_with_parameters_has_an_initializer() -> None:
    overriding = {t for t, h in handlers().items() if type(h).compute_params is not LayerHandler.compute_params}
    assert overriding == set(INITIALIZERS)
