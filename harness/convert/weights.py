"""The one deterministic weight set per (network, seed) that every backend loads.

PyTorch and ONNX Runtime receive the arrays directly; Caffe and OpenCV read them from the
``.caffemodel`` that :mod:`harness.convert.caffemodel` writes. The arrays have exactly the shapes of
Caffe's parameter blobs (the analyzer's ``caffe`` convention), so a trained ``.caffemodel`` can
replace the set without any backend noticing.

Scales are chosen so that activations stay O(1) through deep networks (He fan-in scaling), which
keeps the cross-framework comparison meaningful: a network whose activations vanish or explode
would "agree" trivially or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.analysis.analyzer import NetAnalysis, engine_analysis
from harness.convert.cache import cache_dir, cache_key, cached, file_fingerprint, graph_fingerprint, write_atomic
from harness.convert.caffemodel import SourceLayer, match_blobs
from harness.errors import GraphError
from harness.files import name_part
from harness.ir.graph import Graph, Layer, Shape
from harness.layers.base import bool_field
from harness.layers.vision import conv_geometry

Weights = dict[str, list[np.ndarray]]
Initializer = Callable[[Layer, list[Shape], list[Shape], np.random.Generator], list[np.ndarray]]

# BatchNorm's third blob: Caffe accumulates s <- s * moving_average_fraction + 1 while training, and
# stores the running mean/variance multiplied by s. A trained model with the default fraction 0.999
# has s close to 1/(1-0.999) = 1000, so the stored statistics are ~1000x the real ones; using that
# realistic value (not 1.0) makes every backend prove it divides by the factor.
BATCHNORM_SCALE_FACTOR = 999.982


def _he(shape: Shape, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / max(fan_in, 1)))


def _small(shape: Shape, rng: np.random.Generator, bound: float = 0.1) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape)


def _convolution(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    weight = shapes[0]  # (out, in/group, *kernel): fan-in of one output is everything but axis 0
    return [_he(weight, math.prod(weight[1:]), rng), *(_small(s, rng) for s in shapes[1:])]


def _deconvolution(layer: Layer, ins: list[Shape], shapes: list[Shape],
                   rng: np.random.Generator) -> list[np.ndarray]:
    # (in, out/group, *kernel): each output sums (in/group) * prod(kernel) / prod(stride) products.
    geo = conv_geometry(layer, ins)
    fan_in = shapes[0][0] // geo.group * math.prod(geo.kernel) // max(math.prod(geo.stride), 1)
    return [_he(shapes[0], fan_in, rng), *(_small(s, rng) for s in shapes[1:])]


def _inner_product(layer: Layer, ins: list[Shape], shapes: list[Shape],
                   rng: np.random.Generator) -> list[np.ndarray]:
    transpose = bool_field(layer, layer.param("inner_product_param"), "transpose", False)
    fan_in = shapes[0][0] if transpose else shapes[0][1]
    return [_he(shapes[0], fan_in, rng), *(_small(s, rng) for s in shapes[1:])]


def _batch_norm(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    mean = rng.normal(0.0, 0.2, size=shapes[0])
    var = rng.uniform(0.5, 2.0, size=shapes[1])  # strictly positive, as a real running variance
    factor = np.full(shapes[2], BATCHNORM_SCALE_FACTOR)
    return [mean * BATCHNORM_SCALE_FACTOR, var * BATCHNORM_SCALE_FACTOR, factor]


def _scale(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    # One bottom: [gamma, beta?]; two bottoms (gamma is the second bottom): [beta?].
    if len(ins) == 1:
        return [rng.uniform(0.8, 1.2, size=shapes[0]), *(_small(s, rng) for s in shapes[1:])]
    return [_small(s, rng) for s in shapes]


def _bias(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    return [_small(s, rng) for s in shapes]


def _prelu(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(0.05, 0.3, size=shapes[0])]


def _normalize(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(0.5, 1.5, size=shapes[0])]


def _fork_bn(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(0.8, 1.2, size=shapes[0]), _small(shapes[1], rng)]  # the fork BN's scale and shift


def _small_blobs(layer: Layer, ins: list[Shape], shapes: list[Shape], rng: np.random.Generator) -> list[np.ndarray]:
    """Embedding rows, a Parameter blob, recurrent weights: small values (a recurrent state stays O(1))."""
    return [_small(s, rng, 0.5 / math.sqrt(max(s[-1], 1)) if len(s) > 1 else 0.1) for s in shapes]


# Layer type -> how its parameter blobs are drawn. Every handler whose param_shapes can be non-empty
# has an entry (tests/test_convert_weights.py checks this against the handler table).
INITIALIZERS: dict[str, Initializer] = {
    "Convolution": _convolution,
    "Deconvolution": _deconvolution,
    "InnerProduct": _inner_product,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
    "Bias": _bias,
    "PReLU": _prelu,
    "Normalize": _normalize,
    "BN": _fork_bn,
    "Embed": _small_blobs,
    "Parameter": _small_blobs,
    "LSTM": _small_blobs,
    "RNN": _small_blobs,
}


def layer_seed(seed: int, layer_name: str) -> list[int]:
    """Seed of one layer's generator: independent of the other layers, so editing one layer of a
    prototxt leaves the weights of every other layer unchanged."""
    return [seed, zlib.crc32(layer_name.encode())]


def weight_set(graph: Graph, seed: int = 0) -> Weights:
    """Caffe parameter blobs (float32, read-only) of every layer that has any, keyed by layer name.

    The blob shapes are those of the graph as given (its input shapes): they depend on the batch only
    for the rare Scale/Bias over axis 0, so pass the graph at the batch it will run.
    """
    return _draw(graph, engine_analysis(graph), seed)


@functools.cache
def _generator_id() -> str:
    """What, besides (graph, seed), decides the drawn values: this module's initializers and NumPy's
    generators (NumPy does not promise the same stream across versions). Part of every cache key,
    so an edited initializer or a new NumPy never reuses a stale converted file."""
    return f"{np.__version__}-{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}"


@dataclass(frozen=True)
class WeightSource:
    """The weights a backend loads, named without drawing or reading them: the deterministic set of
    (graph, seed), or the ``.caffemodel`` at ``path``. Converted files (a written .caffemodel, an ONNX
    export) are cached under :meth:`key`, so a backend whose file exists never touches the weights."""

    graph: Graph  # at the batch it will run
    seed: int = 0
    path: Path | None = None

    def key(self) -> str:
        if self.path is not None:
            return "file-" + file_fingerprint(self.path)
        # Keyed by the graph at batch 1 and the blob shapes, not the batch: B=1 and B=4 of one network
        # share one set (and one .caffemodel) unless a blob shape depends on the batch.
        shapes = tuple(tuple(map(tuple, s.param_shapes)) for s in engine_analysis(self.graph).layers)
        return cache_key(graph_fingerprint(self.graph.with_inputs(batch=1)), self.seed, shapes, _generator_id())

    def load(self) -> Weights:
        """The weights: the .caffemodel checked against the graph, or the deterministic set (read-only views
        of its cached array file, :meth:`cache`)."""
        if self.path is None:
            return read_arrays(self.cache())
        from harness.convert.caffemodel import read_source_layers

        return check_weights(self.graph, read_source_layers(self.path), where=str(self.path))

    def cache(self) -> Path:
        """The deterministic set as a cached array file, drawn only when the cache does not hold it intact:
        the weights are drawn once per (network, seed), not once per configuration (a ``.caffemodel``
        given as ``path`` is the file itself)."""
        if self.path is not None:
            return self.path

        def write(path: Path) -> list[Path]:
            return write_arrays(path, weight_set(self.graph, self.seed))

        return cached(cache_dir("weights") / f"{self._file_stem()}-{self.key()}.npy", write)

    def _file_stem(self) -> str:
        return name_part(self.graph.name) or "net"

    def caffemodel(self) -> Path:
        """A .caffemodel holding these weights (what Caffe and OpenCV read): ``path`` once its blobs are
        checked against the graph (so weights of another network are one GraphError naming the layer, not
        an engine's abort), or the deterministic set, written to the cache unless it is there intact."""
        if self.path is not None:
            self.load()
            return self.path
        from harness.convert.caffemodel import write_caffemodel

        def write(path: Path) -> list[Path]:
            weights = self.load()
            types = {lay.name: lay.type for lay in self.graph.layers if lay.name in weights}
            return [write_caffemodel(path, weights, types, self.graph.name)]

        return cached(cache_dir("caffemodel") / f"{self._file_stem()}-{self.key()}.caffemodel", write)


def write_arrays(path: Path, weights: Weights) -> list[Path]:
    """A weight set as one flat float32 ``.npy`` (``path``) and its index (layer, blob shapes) beside it;
    both written whole (:func:`harness.convert.cache.write_atomic`)."""
    blobs = [np.ravel(b).astype(np.float32, copy=False) for layer in weights.values() for b in layer]
    flat = np.concatenate(blobs) if blobs else np.zeros(0, np.float32)
    index = [[name, [list(b.shape) for b in layer]] for name, layer in weights.items()]
    index_path = path.with_suffix(".json")

    def save(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file, not a name: np.save would append .npy to the temporary's
            np.save(fh, flat, allow_pickle=False)

    write_atomic(path, save)
    write_atomic(index_path, lambda tmp: tmp.write_text(json.dumps(index), encoding="utf-8"))
    return [path, index_path]


def read_arrays(path: Path) -> Weights:
    """The weight set :func:`write_arrays` wrote: read-only views of the file, mapped, not read (loading a
    network copies what it needs; the pages are shared by every process that maps them)."""
    index = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    total = sum(math.prod(shape) for _, shapes in index for shape in shapes)
    flat = np.load(path, mmap_mode="r", allow_pickle=False) if total else np.zeros(0, np.float32)
    weights: Weights = {}
    offset = 0
    for name, shapes in index:
        blobs = []
        for shape in shapes:
            size = math.prod(shape)
            blobs.append(flat[offset:offset + size].reshape(shape))
            offset += size
        weights[name] = blobs
    return weights


def _draw(graph: Graph, analysis: NetAnalysis, seed: int) -> Weights:
    weights: Weights = {}
    for layer, stats in zip(graph.layers, analysis.layers, strict=True):
        if not stats.param_shapes:
            continue
        init = INITIALIZERS.get(layer.type)
        if init is None:
            raise GraphError(f"{layer.where()}: no weight initializer for this type")
        rng = np.random.default_rng(layer_seed(seed, layer.name))
        blobs = init(layer, stats.input_shapes, stats.param_shapes, rng)
        # np.require, not ascontiguousarray, which makes a 0-axis blob (channel-shared PReLU) 1-D
        weights[layer.name] = [_read_only(np.require(b, np.float32, "C")) for b in blobs]
    return weights


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared between backends through the cache: nobody may edit it
    return array


def check_weights(graph: Graph, weights: list[SourceLayer], partial: bool = False,
                  where: str = "the weights") -> Weights:
    """Weights matched to the graph's Caffe blob shapes as Caffe's CopyTrainedLayersFrom matches them
    (:func:`harness.convert.caffemodel.match_blobs`): ``weights`` are the layers of a .caffemodel
    (:func:`~harness.convert.caffemodel.read_source_layers`).

    Layers the graph does not have are ignored (Caffe ignores them too); a layer the graph has with another
    number of blobs (none included), a blob of another shape or holding another number of values raises
    :class:`~harness.convert.caffemodel.CaffemodelMismatch` naming the layer. Unless ``partial`` (an
    analysis of the weights that are there), every layer with parameters must be given, or
    :class:`GraphError` names it.
    """
    analysis = engine_analysis(graph)
    targets: dict[str, list[Shape]] = {}
    for layer, stats in zip(graph.layers, analysis.layers, strict=True):
        targets.setdefault(layer.name, [tuple(s) for s in stats.param_shapes])
    matched = match_blobs(targets, weights, where)
    if not partial:
        for layer, stats in zip(graph.layers, analysis.layers, strict=True):
            if stats.param_shapes and layer.name not in matched:
                raise GraphError(f"{layer.where()}: {where} have no blobs for this layer")
    return {name: arrays for name, arrays in matched.items() if arrays}


#: recorded with every result: the input distribution changes CPU latency (ReLU and pooling branch on values)
INPUT_DISTRIBUTION = "uniform[-1, 1) float32, numpy PCG64 seeded [seed + input index, 0x1A2B]"


def make_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The deterministic input every backend gets for (shape, seed): uniform in [-1, 1), float32.

    Drawn in float32 and scaled in place: a float64 draw of the paper's largest input (B=128) would
    cost 154 MB more than the input itself."""
    rng = np.random.default_rng([seed, 0x1A2B])
    x = rng.random(size=shape, dtype=np.float32)
    x *= 2.0
    x -= 1.0
    return x


def network_inputs(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs every backend feeds: input i is ``make_input(shape_i, seed + i)``."""
    return {spec.name: make_input(spec.shape, seed + i) for i, spec in enumerate(graph.inputs)}
