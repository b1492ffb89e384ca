"""Dense / CSR / CER / CSER: round trips, dot products against NumPy, and bit and operation counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.analyzer import analyze
from harness.analysis.metrics import metric_columns
from harness.analysis.weight_storage import (
    CER,
    CSER,
    CSR,
    FORMATS,
    MatrixStats,
    OpCounts,
    analyze_weights,
    dense_dot,
    quantize_uniform,
)
from harness.convert.caffemodel import read_caffemodel, write_caffemodel
from harness.convert.weights import weight_set
from harness.errors import HarnessError
from harness.ir.build import load_graph

# Worked example (4 x 4, values 2 three times and 3 twice, one empty row, and a row whose only value is
# the *less* frequent one, so that CER needs an empty group):
HAND = np.array([[0, 2, 0, 2],
                 [3, 0, 0, 2],
                 [0, 0, 0, 0],
                 [0, 3, 0, 0]], dtype=np.float32)


def test_worked_example_arrays_bits_and_operations_by_hand() -> None:
    # m = n = 4, nnz = 5, rows with a non-zero = 3. Frequencies: 2 -> 3, 3 -> 2, so Ω = [2, 3].
    # CER, row by row (groups by rank: rank 0 = value 2, rank 1 = value 3):
    #   row 0: rank 0 at cols 1, 3                      k_0 = 1  wI += [0, 2]
    #   row 1: rank 0 at col 3, rank 1 at col 0         k_1 = 2  wI += [2, 3, 4]
    #   row 2: empty                                    k_2 = 0  wI += [4]
    #   row 3: rank 0 empty, rank 1 at col 1            k_3 = 2  wI += [4, 4, 5]
    #   colI = [1, 3, 3, 0, 1], rowPtr = [0, 2, 5, 6, 9]
    cer = CER.encode(HAND)
    assert cer.omega.tolist() == [2, 3]
    assert cer.col_idx.tolist() == [1, 3, 3, 0, 1]
    assert cer.w_ptr.tolist() == [0, 2, 2, 3, 4, 4, 4, 4, 5]
    assert cer.row_ptr.tolist() == [0, 2, 5, 6, 9]
    # CSER lists only present values: d = [1, 2, 0, 1], ΩI = [0, 0, 1, 1],
    #   wI = [0, 2 | 2, 3, 4 | 4 | 4, 5], rowPtr = [0, 2, 5, 6, 8]
    cser = CSER.encode(HAND)
    assert cser.omega_idx.tolist() == [0, 0, 1, 1]
    assert cser.w_ptr.tolist() == [0, 2, 2, 3, 4, 4, 4, 5]
    assert cser.row_ptr.tolist() == [0, 2, 5, 6, 8]

    # Bits with b_v = 32 per value and b_i = 16 per index:
    #   dense = 16 * 32                                             = 512
    #   CSR   = 5 values * 32 + (5 colI + 5 rowPtr) * 16 = 160 + 160 = 320
    #   CER   = 2 Ω * 32 + (5 colI + 9 wI + 5 rowPtr) * 16 = 64 + 304 = 368
    #   CSER  = 2 Ω * 32 + (5 colI + 4 ΩI + 8 wI + 5 rowPtr) * 16 = 64 + 352 = 416
    expected_bits = {"dense": 512, "csr": 320, "cer": 368, "cser": 416}
    stats = MatrixStats.of(HAND)
    assert {f: stats.bits(f, 32, 16) for f in FORMATS} == expected_bits
    assert CSR.encode(HAND).bits(32, 16) == 320 and cer.bits(32, 16) == 368 and cser.bits(32, 16) == 416

    # Operations of y = M x:
    #   dense: 16 mul, 4 rows * 3 adds = 12, reads 16 M + 16 x = 32, 4 writes
    #   CSR:   5 mul, adds 5 - 3 = 2, reads 5 values + 5 colI + 5 x + 5 rowPtr = 20
    #   CER:   one mul per non-empty group = 1 + 2 + 0 + 1 = 4, adds 2,
    #          reads 5 colI + 5 x + 9 wI + 4 Ω + 5 rowPtr = 28
    #   CSER:  4 mul, adds 2, reads 5 colI + 5 x + 8 wI + 4 ΩI + 4 Ω + 5 rowPtr = 31
    expected_ops = {"dense": OpCounts(16, 12, 32, 4), "csr": OpCounts(5, 2, 20, 4),
                    "cer": OpCounts(4, 2, 28, 4), "cser": OpCounts(4, 2, 31, 4)}
    assert {f: stats.ops(f) for f in FORMATS} == expected_ops

    # Entropy over the 16 elements: p(0) = 11/16, p(2) = 3/16, p(3) = 2/16.
    h = -sum(p * math.log2(p) for p in (11 / 16, 3 / 16, 2 / 16))
    assert stats.entropy == pytest.approx(h)  # 1.1995 bit/element
    assert (stats.nnz, stats.distinct, stats.sparsity) == (5, 2, pytest.approx(11 / 16))

    x = np.array([1, 2, 3, 4], dtype=np.float32)
    for fmt, name in ((CSR.encode(HAND), "csr"), (cer, "cer"), (cser, "cser")):
        y, ops = fmt.dot(x)
        assert y.tolist() == [12, 11, 0, 6]  # 2*2 + 2*4, 3*1 + 2*4, 0, 3*2
        assert ops == expected_ops[name]
    y, ops = dense_dot(HAND, x)
    assert y.tolist() == [12, 11, 0, 6] and ops == expected_ops["dense"]


def _matrices() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    low_entropy = rng.choice([0, 0, 0, 0.5, -0.25, 1.75, 3.0], size=(23, 41)).astype(np.float32)
    distinct = rng.normal(size=(9, 13)).astype(np.float32)
    one_row = rng.choice([0.0, 1.0, 2.0], size=(1, 30)).astype(np.float32)
    with_empty_rows = low_entropy.copy()
    with_empty_rows[[0, 5, 22]] = 0
    return [low_entropy, distinct, one_row, with_empty_rows, np.zeros((3, 4), np.float32)]


@pytest.mark.parametrize("index", range(5))
def test_round_trip_dot_and_counts_agree_with_the_instrumented_dot(index: int) -> None:
    matrix = _matrices()[index]
    x = np.random.default_rng(index).normal(size=matrix.shape[1])
    stats = MatrixStats.of(matrix)
    for cls in (CSR, CER, CSER):
        encoded = cls.encode(matrix)
        name = cls.__name__.lower()
        np.testing.assert_array_equal(encoded.decode(), matrix)
        y, ops = encoded.dot(x)
        np.testing.assert_allclose(y, matrix.astype(np.float64) @ x, rtol=1e-5, atol=1e-6)
        assert ops == stats.ops(name), name
        assert encoded.bits(32, 16) == stats.bits(name, 32, 16), name
    _, ops = dense_dot(matrix, x)
    assert ops == stats.ops("dense")


def test_low_entropy_matrix_is_smallest_in_cer_and_cer_saves_multiplies() -> None:
    matrix = _matrices()[0]  # 5 symbols, 4/7 zeros: entropy ~1.8 bit
    stats = MatrixStats.of(matrix)
    # CER replaces a 32-bit value per non-zero by an index per group: it pays off with narrower indices.
    bits = {f: stats.bits(f, 32, 16) for f in FORMATS}
    assert bits["cer"] < bits["csr"] < bits["dense"]
    assert stats.ops("cer").mul < stats.ops("csr").mul < stats.ops("dense").mul


def test_quantize_uniform_keeps_zeros_and_bounds_the_error() -> None:
    w = np.random.default_rng(1).normal(size=(50, 40)).astype(np.float32)
    w[w < 0.3] = 0
    q = quantize_uniform(w, 4)
    assert len(np.unique(q)) <= 2**4 - 1
    assert np.all(q[w == 0] == 0)
    step = np.abs(w).max() / (2**3 - 1)
    assert np.abs(q - w).max() <= step / 2 + 1e-6
    with pytest.raises(HarnessError):
        quantize_uniform(w, 1)
    stats = analyze_weights({"fc": [w]}, quantize_bits=4)["fc"].stats
    assert stats.distinct <= 15


# The tiny network with a BatchNorm, a layer with parameter blobs that is not a weight matrix.
BATCHNORM = 'layer { name: "bn" type: "BatchNorm" bottom: "fc" top: "fc" }\n'


def test_caffemodel_weights_through_metric_columns(tmp_path, tiny_prototxt) -> None:
    graph = load_graph("tiny.prototxt", text=tiny_prototxt.read_text() + BATCHNORM)
    weights = weight_set(graph, seed=3)
    path = write_caffemodel(tmp_path / "tiny.caffemodel", weights, {lay.name: lay.type for lay in graph.layers})
    analysis = analyze(graph, "caffe")
    per_layer, totals = metric_columns(analysis, weights=read_caffemodel(path))
    rows = dict(zip((s.name for s in analysis.layers), per_layer, strict=True))
    # conv: 4 x 27 matrix applied at 8 x 8 positions; fc: 10 x 256 applied once; BatchNorm has no matrix.
    assert rows["conv"]["w_matrix"] == "4x27" and rows["conv"]["w_applications"] == 64
    assert rows["fc"]["w_matrix"] == "10x256" and rows["fc"]["w_applications"] == 1
    assert "bits_dense" not in rows["bn"] and "bits_dense" not in rows["relu"]
    # The dense format multiplies once per MAC.
    assert totals["mul_dense"] == sum(s.macs for s in analysis.layers if s.name in ("conv", "fc"))
    assert totals["bits_dense"] == 32 * (4 * 27 + 10 * 256)
    assert totals["weights_unmatched_layers"] == []
    _, totals = metric_columns(analysis, weights={**weights, "other": [np.ones((2, 2), np.float32)]})
    assert totals["weights_unmatched_layers"] == ["other"]


def test_counts_without_encoding_equal_the_encoders() -> None:
    """MatrixStats counts groups from one sort of the non-zeros: the encoders' arrays have those lengths,
    also with repeated values in a row, negative zeros and NaNs."""
    rng = np.random.default_rng(5)
    matrix = rng.choice([0.0, -0.0, 0.5, -0.5, 1.0, 2.0, np.nan], size=(17, 29)).astype(np.float32)
    matrix[3] = 0
    stats = MatrixStats.of(matrix)
    cer, cser = CER.encode(matrix), CSER.encode(matrix)
    assert (stats.sum_k, stats.sum_d) == (len(cer.w_ptr) - matrix.shape[0], len(cser.omega_idx))
    assert (stats.nnz, stats.distinct, stats.rows_nonzero) == (len(cer.col_idx), len(cer.omega), 16)


def test_unquantised_weights_are_counted_in_bounded_memory() -> None:
    """SqueezeNet's conv10 shape (1000 x 512) with nearly one distinct value per weight, as unquantised
    trained weights have: CER's pointer array would hold about 5e8 entries (4 GiB); counting it stays within a
    small multiple of the matrix, and building it is refused in one line."""
    import tracemalloc

    matrix = np.random.default_rng(0).normal(size=(1000, 512)).astype(np.float32)
    tracemalloc.start()
    stats = MatrixStats.of(matrix)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert stats.distinct > 0.99 * matrix.size and stats.sum_k > 2.5e8  # what CER's wI would have held
    assert peak < 64 * matrix.size + 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    with pytest.raises(HarnessError, match=r"needs \d+ group pointers .* over the \d+ this encoder builds") as err:
        CER.encode(matrix)
    assert "\n" not in str(err.value)
