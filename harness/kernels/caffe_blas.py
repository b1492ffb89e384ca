"""The CPU counterpart: the BLAS calls a Caffe forward pass makes, the cuBLAS kernel family each becomes
on a GPU, and their measured cost on this machine's BLAS.

The calls are derived from the graph IR exactly as BVLC Caffe's GPU forward issues them
(``Forward_gpu``; the CPU path differs only where noted):

- Convolution, engine CAFFE (``base_conv_layer.cpp`` ``forward_gpu_gemm``/``forward_gpu_bias``, called per
  image by ``conv_layer.cu``): per image and group ``gemm(NoTrans, NoTrans, conv_out_channels/group,
  conv_out_spatial_dim, kernel_dim)``, then ``gemm(NoTrans, NoTrans, num_output, out_spatial_dim, 1)``
  for the bias - a GEMM with K = 1. With cuDNN (Caffe's default engine when built with it) convolutions
  run in cuDNN and issue no BLAS call; ``engine: CAFFE`` layers keep the GEMM path.
- Deconvolution (``deconv_layer.cu`` -> ``backward_gpu_gemm``): per image and group
  ``gemm(Trans, NoTrans, kernel_dim, conv_out_spatial_dim, conv_out_channels/group)`` and the K = 1 bias GEMM.
- InnerProduct (``inner_product_layer.cu``): M == 1 -> ``gemv(NoTrans, N, K)`` plus ``axpy`` for the bias;
  otherwise ``gemm(NoTrans, transpose ? NoTrans : Trans, M, N, K)`` and the K = 1 bias GEMM
  ``gemm(NoTrans, NoTrans, M, N, 1)``. (The CPU path always uses the GEMMs.)
- BatchNorm (``batch_norm_layer.cu``, TEST phase = use_global_stats): four K = 1 GEMMs that broadcast
  mean and variance: ``gemm(num, C, 1)``, ``gemm(C*num, spatial, 1)``, twice; with
  ``use_global_stats: false`` also ``gemv(NoTrans, C*num, spatial)`` and ``gemv(Trans, num, C)`` twice.

``math_functions.cu`` turns Caffe's row-major calls into column-major cuBLAS calls:
``caffe_gpu_gemm(TA, TB, M, N, K)`` -> ``cublasSgemm(opB, opA, N, M, K)`` and
``caffe_gpu_gemv(TA, M, N)`` -> ``cublasSgemv(TA == NoTrans ? OP_T : OP_N, N, M)``. So a Caffe
``gemv(NoTrans)`` runs as ``gemv2T`` and ``gemv(Trans)`` as ``gemv2N``; a GEMM with K = 1 as ``gemmk1``.
A GEMM with a unit M or N is a matrix-vector product; which kernel cuBLAS picks for it is a run-time
heuristic, so those mappings are flagged ``heuristic`` (expected gemv2N/gemv2T by the operand's op).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.analysis.analyzer import NetAnalysis, analyze
from harness.ir.graph import Graph, Layer
from harness.kernels.taxonomy import CONVOLUTION, GEMM, GEMMK1, GEMV2N, GEMV2T
from harness.layers.base import bool_field, count
from harness.layers.normalization import channels as bn_channels
from harness.layers.vision import conv_geometry

NO, T = "N", "T"  # CblasNoTrans, CblasTrans


@dataclass(frozen=True)
class BlasCall:
    """One distinct BLAS call of a layer (Caffe's row-major arguments) and how often a forward makes it."""

    layer: str
    layer_type: str
    routine: str  # "sgemm", "sgemv" or "cudnn" (a convolution that issues no BLAS call)
    trans_a: str
    trans_b: str  # "" for gemv
    m: int
    n: int
    k: int  # 0 for gemv
    count: int
    purpose: str  # "conv", "bias", "fc", "bn-broadcast", "bn-reduce", ...
    seconds_each: float | None = None  # measured on this machine's BLAS (numpy)

    @property
    def cublas(self) -> str:
        """The cuBLAS call math_functions.cu makes for it (column-major)."""
        if self.routine == "sgemv":
            return f"cublasSgemv({'OP_T' if self.trans_a == NO else 'OP_N'}, m={self.n}, n={self.m})"
        if self.routine == "sgemm":
            op = lambda t: "OP_N" if t == NO else "OP_T"  # noqa: E731
            return f"cublasSgemm({op(self.trans_b)}, {op(self.trans_a)}, m={self.n}, n={self.m}, k={self.k})"
        return "cuDNN convolution"

    @property
    def family(self) -> str:
        return gpu_family(self)[0]

    @property
    def heuristic(self) -> bool:
        return gpu_family(self)[1]

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * (self.k or 1) * self.count if self.routine != "cudnn" else 0

    @property
    def total_s(self) -> float | None:
        return None if self.seconds_each is None else self.seconds_each * self.count


def gpu_family(call: BlasCall) -> tuple[str, bool]:
    """(cuBLAS kernel family, whether that is cuBLAS's run-time choice rather than fixed by the call)."""
    if call.routine == "cudnn":
        return CONVOLUTION, False
    if call.routine == "sgemv":
        return (GEMV2T if call.trans_a == NO else GEMV2N), False
    if call.k == 1:
        return GEMMK1, False
    if call.m == 1:  # cuBLAS n == 1: y = op(B') x, B' op = Caffe's TransB
        return (GEMV2N if call.trans_b == NO else GEMV2T), True
    if call.n == 1:  # cuBLAS m == 1: y^T = x^T op(A'), i.e. op(A')^T x
        return (GEMV2T if call.trans_a == NO else GEMV2N), True
    return GEMM, False


def _engine_is_caffe(layer: Layer) -> bool:
    engine = layer.param("convolution_param").get("engine") or layer.spec.get("engine")
    return engine is not None and str(engine).upper() == "CAFFE"


def _conv(layer: Layer, ins: list, outs: list, cudnn: bool) -> list[BlasCall]:
    geo = conv_geometry(layer, ins)
    n, c_in = ins[0][0], ins[0][1]
    if cudnn and not _engine_is_caffe(layer):
        return [BlasCall(layer.name, layer.type, "cudnn", "", "", 0, 0, 0, 1, "conv")]
    kernel_dim = c_in // geo.group * math.prod(geo.kernel)
    spatial = count(outs[0][2:])
    calls = [BlasCall(layer.name, layer.type, "sgemm", NO, NO, geo.num_output // geo.group, spatial, kernel_dim,
                      n * geo.group, "conv")]
    if geo.bias:
        calls.append(BlasCall(layer.name, layer.type, "sgemm", NO, NO, geo.num_output, spatial, 1, n, "bias"))
    return calls


def _deconv(layer: Layer, ins: list, outs: list, cudnn: bool) -> list[BlasCall]:
    geo = conv_geometry(layer, ins)
    n, c_in = ins[0][0], ins[0][1]
    kernel_dim = geo.num_output // geo.group * math.prod(geo.kernel)
    calls = [BlasCall(layer.name, layer.type, "sgemm", T, NO, kernel_dim, count(ins[0][2:]), c_in // geo.group,
                      n * geo.group, "conv")]
    if geo.bias:
        calls.append(BlasCall(layer.name, layer.type, "sgemm", NO, NO, geo.num_output, count(outs[0][2:]), 1, n,
                              "bias"))
    return calls


def _inner_product(layer: Layer, ins: list, outs: list, cudnn: bool) -> list[BlasCall]:
    p = layer.param("inner_product_param")
    n_out = outs[0][-1] if len(outs[0]) == 2 else count(outs[0][1:])
    axis = len(outs[0]) - 1
    m, k = math.prod(ins[0][:axis]), count(ins[0][axis:])
    bias = bool_field(layer, p, "bias_term", True)
    if m == 1:
        return [BlasCall(layer.name, layer.type, "sgemv", NO, "", n_out, k, 0, 1, "fc")]
    trans_b = NO if bool_field(layer, p, "transpose", False) else T
    calls = [BlasCall(layer.name, layer.type, "sgemm", NO, trans_b, m, n_out, k, 1, "fc")]
    if bias:
        calls.append(BlasCall(layer.name, layer.type, "sgemm", NO, NO, m, n_out, 1, 1, "bias"))
    return calls


def _batch_norm(layer: Layer, ins: list, outs: list, cudnn: bool) -> list[BlasCall]:
    num, channels = ins[0][0], bn_channels(ins)
    spatial = count(ins[0][2:])
    calls = [BlasCall(layer.name, layer.type, "sgemm", NO, NO, num, channels, 1, 2, "bn-broadcast"),
             BlasCall(layer.name, layer.type, "sgemm", NO, NO, channels * num, spatial, 1, 2, "bn-broadcast")]
    if not bool_field(layer, layer.param("batch_norm_param"), "use_global_stats", True):
        calls += [BlasCall(layer.name, layer.type, "sgemv", NO, "", channels * num, spatial, 0, 2, "bn-reduce"),
                  BlasCall(layer.name, layer.type, "sgemv", T, "", num, channels, 0, 2, "bn-reduce")]
    return calls


# Per layer type, in ONE place: the BLAS calls its Caffe Forward_gpu makes (types absent here make none).
CALLS_BY_TYPE: dict[str, Callable[[Layer, list, list, bool], list[BlasCall]]] = {
    "Convolution": _conv,
    "Deconvolution": _deconv,
    "InnerProduct": _inner_product,
    "BatchNorm": _batch_norm,
}


def blas_calls(graph: Graph, batch: int | None = None, cudnn: bool = False,
               analysis: NetAnalysis | None = None) -> list[BlasCall]:
    """Every distinct BLAS call of one forward pass, in layer order (CAFFE-convention shapes)."""
    a = analysis or analyze(graph, "caffe", batch=batch)
    calls: list[BlasCall] = []
    for layer, stats in zip(graph.layers, a.layers, strict=True):  # by position: Caffe allows repeated names
        fn = CALLS_BY_TYPE.get(stats.type)
        if fn is not None:
            calls += fn(layer, stats.input_shapes, stats.output_shapes, cudnn)
    return calls


def time_calls(calls: list[BlasCall], repeats: int = 5, min_s: float = 0.002) -> list[BlasCall]:
    """Measure each distinct call on numpy's float32 BLAS (median of ``repeats`` timed batches)."""
    cache: dict[tuple, float] = {}
    rng = np.random.default_rng(0)
    out = []
    for c in calls:
        if c.routine == "cudnn":
            out.append(c)
            continue
        key = (c.routine, c.trans_a, c.trans_b, c.m, c.n, c.k)
        if key not in cache:
            cache[key] = _time_one(_operation(c, rng), repeats, min_s)
        out.append(replace(c, seconds_each=cache[key]))
    return out


def _operation(c: BlasCall, rng: np.random.Generator) -> Callable[[], object]:
    f32 = np.float32
    if c.routine == "sgemv":
        rows, cols = (c.m, c.n)
        a = rng.standard_normal((rows, cols), dtype=f32)
        a = a if c.trans_a == NO else np.ascontiguousarray(a.T).T
        x = rng.standard_normal(cols if c.trans_a == NO else rows, dtype=f32)
        mat = a if c.trans_a == NO else a.T
        return lambda: mat @ x
    # op(A) is M x K, op(B) is K x N; a transposed operand is a transposed view of a contiguous array
    a = rng.standard_normal((c.m, c.k), dtype=f32) if c.trans_a == NO else rng.standard_normal((c.k, c.m), dtype=f32).T
    b = rng.standard_normal((c.k, c.n), dtype=f32) if c.trans_b == NO else rng.standard_normal((c.n, c.k), dtype=f32).T
    dst = np.empty((c.m, c.n), dtype=f32)
    return lambda: np.matmul(a, b, out=dst)


def _time_one(fn: Callable[[], object], repeats: int, min_s: float) -> float:
    fn()
    number = 1
    while True:  # grow the batch until one timing lasts min_s (perf_counter resolution, call overhead)
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_s or number >= 1 << 16:
            break
        number *= 2
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(np.median(samples))


@dataclass
class BlasProfile:
    network: str
    batch: int
    cudnn: bool
    calls: list[BlasCall]

    def family_seconds(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for c in self.calls:
            if c.total_s is not None:
                out[c.family] += c.total_s
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def layer_seconds(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for c in self.calls:
            if c.total_s is not None:
                out[c.layer] += c.total_s
        return dict(out)

    def to_json(self) -> dict:
        fam = self.family_seconds()
        total = sum(fam.values())
        return {
            "network": self.network, "batch": self.batch, "cudnn": self.cudnn,
            "denominator": "sum of the measured BLAS call times (CPU, numpy float32 BLAS); "
                           "im2col, pooling, activations and other non-BLAS work are not included",
            "total_blas_s": total,
            "families": {f: {"seconds": s, "pct": 100.0 * s / total if total else 0.0} for f, s in fam.items()},
            "layers": self.layer_seconds(),
            "calls": [{**asdict(c), "cublas": c.cublas, "family": c.family, "heuristic": c.heuristic,
                       "total_s": c.total_s} for c in self.calls],
        }


def profile(graph: Graph, network: str, batch: int = 1, cudnn: bool = False, repeats: int = 5) -> BlasProfile:
    return BlasProfile(network, batch, cudnn, time_calls(blas_calls(graph, batch, cudnn), repeats))
