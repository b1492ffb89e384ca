"""Storage and dot-product cost of weight matrices in the dense, CSR, CER and CSER formats.

CER (Compressed Entropy Row) and CSER (Compressed Shared Elements Row) are the formats of Wiedemann,
Müller and Samek, "Compact and Computationally Efficient Representation of Deep Neural Networks" (2018):
a row's non-zero elements are grouped by value, so that a dot product adds the inputs of a group first and
multiplies once per distinct value. The arrays below follow the paper's layout (Ω, colI, wI, rowPtr; CSER
adds ΩI); the bit and operation counts are those of the encoders and the dot product implemented here (see
docs/metrics.md), each checked in tests against an instrumented run of that dot product.

For an m x n matrix with nnz non-zeros, K distinct non-zero values, b_v bits per value and b_i per index:

    dense  bits = m n b_v
    CSR    bits = nnz (b_v + b_i) + (m + 1) b_i                       values, colI, rowPtr
    CER    bits = K b_v + (nnz + sum_r (k_r + 1) + m + 1) b_i         Ω, colI, wI, rowPtr
    CSER   bits = K b_v + (nnz + sum_r d_r + sum_r (d_r + 1) + m + 1) b_i   Ω, colI, ΩI, wI, rowPtr

d_r is the number of distinct non-zero values in row r; k_r is one more than the highest frequency rank
(0 = most frequent value in the whole matrix) present in row r, since CER keeps an (possibly empty) group
for every more frequent value. Dot product y = M x, per matrix-vector product:

            multiplies      adds                    reads                                       writes
    dense   m n             m (n - 1)               2 m n                                       m
    CSR     nnz             nnz - rows_nz           3 nnz + m + 1                               m
    CER     sum d_r         nnz - rows_nz           2 nnz + sum (k_r + 1) + sum d_r + m + 1     m
    CSER    sum d_r         nnz - rows_nz           2 nnz + 3 sum d_r + m + m + 1               m

(rows_nz = rows with a non-zero; reads count every array element and input element loaded once.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import HarnessError

FORMATS = ("dense", "csr", "cer", "cser")
OPS = ("mul", "add", "read", "write")
#: CER.encode refuses matrices whose pointer array (wI) would hold more entries (8 bytes each): unquantised
#: weights have nearly one distinct value per weight, and wI approaches rows x distinct values
CER_MAX_POINTERS = 1 << 25
# Layer types whose first blob, reshaped to (rows, -1), is the matrix of their dot products; each output
# position applies it once (Convolution: rows = filters; InnerProduct: rows = outputs).
DOT_PRODUCT_TYPES = frozenset({"Convolution", "InnerProduct"})


@dataclass
class OpCounts:
    mul: int = 0
    add: int = 0
    read: int = 0
    write: int = 0

    def scaled(self, times: int) -> OpCounts:
        return OpCounts(self.mul * times, self.add * times, self.read * times, self.write * times)


# ---- the formats -------------------------------------------------------------------------------------

def _frequency_ranked(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values ordered by decreasing frequency (ties: increasing value) and each input's rank."""
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank_of = np.empty_like(order)
    rank_of[order] = np.arange(len(order))
    return distinct[order], rank_of[inverse.reshape(-1)]


@dataclass
class _Grouped:
    """Non-zeros sorted by (row, frequency rank of the value, column)."""

    shape: tuple[int, int]
    omega: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ranks: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray) -> _Grouped:
        m = _as_matrix(matrix)
        rows, cols = np.nonzero(m)  # row-major: sorted by row, then column
        omega, ranks = _frequency_ranked(m[rows, cols])
        order = np.argsort(rows.astype(np.int64) * max(len(omega), 1) + ranks, kind="stable")
        return cls(m.shape, omega, rows[order], cols[order], ranks[order])

    def row_ends(self) -> np.ndarray:
        return np.searchsorted(self.rows, np.arange(self.shape[0]), side="right")


def _as_matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise HarnessError(f"expected a 2-D weight matrix, got shape {m.shape}")
    return m


@dataclass
class CSR:
    shape: tuple[int, int]
    values: np.ndarray
    col_idx: np.ndarray
    row_ptr: np.ndarray

    @classmethod
    def encode(cls, matrix: np.ndarray) -> CSR:
        m = _as_matrix(matrix)
        rows, cols = np.nonzero(m)
        row_ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m.shape[0]))])
        return cls(m.shape, m[rows, cols], cols, row_ptr)

    def decode(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=self.values.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr))
        out[rows, self.col_idx] = self.values
        return out

    def bits(self, value_bits: int, index_bits: int) -> int:
        return len(self.values) * value_bits + (len(self.col_idx) + len(self.row_ptr)) * index_bits

    def dot(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        ops = OpCounts()
        y = np.zeros(self.shape[0], dtype=np.result_type(self.values, x))
        start = self.row_ptr[0]
        ops.read += 1
        for r in range(self.shape[0]):
            end = self.row_ptr[r + 1]
            ops.read += 1
            acc = None
            for p in range(start, end):
                term = self.values[p] * x[self.col_idx[p]]
                ops.read += 3
                ops.mul += 1
                acc = _accumulate(acc, term, ops)
            y[r] = 0 if acc is None else acc
            ops.write += 1
            start = end
        return y, ops


@dataclass
class CER:
    """Ω: distinct non-zero values by decreasing frequency; colI: columns grouped per row by value rank;
    wI: per row, k_r + 1 pointers into colI delimiting the groups of ranks 0..k_r-1 (empty groups kept);
    rowPtr: where each row's pointers start in wI."""

    shape: tuple[int, int]
    omega: np.ndarray
    col_idx: np.ndarray
    w_ptr: np.ndarray
    row_ptr: np.ndarray

    @classmethod
    def encode(cls, matrix: np.ndarray, grouped: _Grouped | None = None) -> CER:
        g = grouped or _Grouped.of(matrix)
        n_rows = g.shape[0]
        ends = g.row_ends()
        starts = np.concatenate([[0], ends[:-1]])
        # k_r = 1 + the highest rank in row r (0 for an empty row): its last element, sorted by rank.
        k = np.zeros(n_rows, dtype=np.int64)
        nonempty = ends > starts
        k[nonempty] = g.ranks[ends[nonempty] - 1] + 1
        pointers = int((k + 1).sum())
        if pointers > CER_MAX_POINTERS:
            raise HarnessError(f"the CER encoding of this {n_rows}x{g.shape[1]} matrix needs {pointers} group "
                               f"pointers ({pointers * 8 / 2**30:.1f} GiB), over the {CER_MAX_POINTERS} this encoder "
                               "builds; MatrixStats.of counts its storage without building it (or quantise first)")
        # Pointer j of row r = first position of row r with rank >= j, j = 0..k_r.
        row_of = np.repeat(np.arange(n_rows), k + 1)
        j = np.arange(len(row_of)) - np.repeat(np.concatenate([[0], np.cumsum(k + 1)[:-1]]), k + 1)
        key = g.rows.astype(np.int64) * (len(g.omega) + 1) + g.ranks
        w_ptr = np.searchsorted(key, row_of.astype(np.int64) * (len(g.omega) + 1) + j, side="left")
        row_ptr = np.concatenate([[0], np.cumsum(k + 1)])
        return cls(g.shape, g.omega, g.cols, w_ptr, row_ptr)

    def decode(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=self.omega.dtype)
        for r in range(self.shape[0]):
            for j in range(self.row_ptr[r], self.row_ptr[r + 1] - 1):
                out[r, self.col_idx[self.w_ptr[j]:self.w_ptr[j + 1]]] = self.omega[j - self.row_ptr[r]]
        return out

    def bits(self, value_bits: int, index_bits: int) -> int:
        return len(self.omega) * value_bits + (len(self.col_idx) + len(self.w_ptr) + len(self.row_ptr)) * index_bits

    def dot(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        return _grouped_dot(self, x, lambda r, j: j - self.row_ptr[r], omega_idx_reads=False)


@dataclass
class CSER:
    """As CER, but a row lists only the values it has: ΩI gives each group's index into Ω, and wI holds
    d_r + 1 pointers per row."""

    shape: tuple[int, int]
    omega: np.ndarray
    col_idx: np.ndarray
    omega_idx: np.ndarray
    w_ptr: np.ndarray
    row_ptr: np.ndarray

    @classmethod
    def encode(cls, matrix: np.ndarray, grouped: _Grouped | None = None) -> CSER:
        g = grouped or _Grouped.of(matrix)
        n_rows = g.shape[0]
        new_group = np.ones(len(g.ranks), dtype=bool)
        new_group[1:] = (g.rows[1:] != g.rows[:-1]) | (g.ranks[1:] != g.ranks[:-1])
        group_starts = np.flatnonzero(new_group)
        d = np.bincount(g.rows[group_starts], minlength=n_rows)
        # Each row's pointers: its group starts, then its end; sort the union by (row, is-end, position).
        positions = np.concatenate([group_starts, g.row_ends()])
        owner = np.concatenate([g.rows[group_starts], np.arange(n_rows)])
        is_end = np.concatenate([np.zeros(len(group_starts), int), np.ones(n_rows, int)])
        w_ptr = positions[np.lexsort((positions, is_end, owner))]
        row_ptr = np.concatenate([[0], np.cumsum(d + 1)])
        return cls(g.shape, g.omega, g.cols, g.ranks[group_starts], w_ptr, row_ptr)

    def decode(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=self.omega.dtype)
        for r in range(self.shape[0]):
            for j in range(self.row_ptr[r], self.row_ptr[r + 1] - 1):
                out[r, self.col_idx[self.w_ptr[j]:self.w_ptr[j + 1]]] = self.omega[self.omega_idx[j - r]]
        return out

    def bits(self, value_bits: int, index_bits: int) -> int:
        indices = len(self.col_idx) + len(self.omega_idx) + len(self.w_ptr) + len(self.row_ptr)
        return len(self.omega) * value_bits + indices * index_bits

    def dot(self, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
        # Group j of row r is the (j - r)-th group overall: every row before r has one extra (end) pointer.
        return _grouped_dot(self, x, lambda r, j: self.omega_idx[j - r], omega_idx_reads=True)


def _accumulate(acc, term, ops: OpCounts):
    """The row's first term starts the sum; every later one costs an add."""
    if acc is None:
        return term
    ops.add += 1
    return acc + term


def _grouped_dot(fmt: CER | CSER, x: np.ndarray, value_index, omega_idx_reads: bool) -> tuple[np.ndarray, OpCounts]:
    """y = M x summing each group's inputs before one multiply by the group's value."""
    ops = OpCounts()
    y = np.zeros(fmt.shape[0], dtype=np.result_type(fmt.omega, x))
    a = fmt.row_ptr[0]
    ops.read += 1
    for r in range(fmt.shape[0]):
        b = fmt.row_ptr[r + 1]
        lo = fmt.w_ptr[a]
        ops.read += 2
        acc = None
        for j in range(a, b - 1):
            hi = fmt.w_ptr[j + 1]
            ops.read += 1
            if hi > lo:
                s = x[fmt.col_idx[lo]]
                ops.read += 2
                for p in range(lo + 1, hi):
                    s = s + x[fmt.col_idx[p]]
                    ops.read += 2
                    ops.add += 1
                term = fmt.omega[value_index(r, j)] * s
                ops.read += 2 if omega_idx_reads else 1
                ops.mul += 1
                acc = _accumulate(acc, term, ops)
            lo = hi
        y[r] = 0 if acc is None else acc
        ops.write += 1
        a = b
    return y, ops


def dense_dot(matrix: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, OpCounts]:
    m = _as_matrix(matrix)
    ops = OpCounts()
    y = np.zeros(m.shape[0], dtype=np.result_type(m, x))
    for r in range(m.shape[0]):
        acc = None
        for c in range(m.shape[1]):
            term = m[r, c] * x[c]
            ops.read += 2
            ops.mul += 1
            acc = _accumulate(acc, term, ops)
        y[r] = 0 if acc is None else acc
        ops.write += 1
    return y, ops


# ---- statistics and closed-form costs ----------------------------------------------------------------

def quantize_uniform(matrix: np.ndarray, bits: int) -> np.ndarray:
    """Symmetric uniform quantisation to 2^bits - 1 levels {-L..L} * step, L = 2^(bits-1) - 1, step =
    max|w| / L: zero stays exactly zero, so pruned weights stay pruned."""
    if not 2 <= bits <= 24:
        raise HarnessError(f"quantisation bits must be between 2 and 24, got {bits}")
    m = np.asarray(matrix, dtype=np.float64)
    top = float(np.max(np.abs(m))) if m.size else 0.0
    if top == 0.0:
        return np.zeros_like(m, dtype=np.float32)
    step = top / (2 ** (bits - 1) - 1)
    return (np.round(m / step) * step).astype(np.float32)


@dataclass
class MatrixStats:
    rows: int
    cols: int
    nnz: int
    rows_nonzero: int
    distinct: int  # K: distinct non-zero values
    entropy: float  # bits per element, zeros included
    sum_d: int  # sum over rows of distinct non-zero values (CSER groups)
    sum_k: int  # sum over rows of 1 + highest frequency rank present (CER groups, empty ones included)

    @classmethod
    def of(cls, matrix: np.ndarray) -> MatrixStats:
        """The statistics, counted without building any encoding: CER's pointer array alone holds
        sum_k + m entries, and sum_k approaches rows x distinct values for unquantised weights (5e8 for
        SqueezeNet's conv10), while this needs one sort of the non-zeros and a few arrays of their length
        (benchmarks/weight_storage_memory.py measures the peak)."""
        m = _as_matrix(matrix)
        row_nnz = np.count_nonzero(m, axis=1)
        values = m[m != 0]  # row by row
        nnz = len(values)
        index = np.int32 if nnz < 2**31 else np.int64
        perm = np.argsort(values, kind="stable")  # by value; equal values keep row order
        ordered = values[perm]
        same = ordered[1:] == ordered[:-1]
        if np.issubdtype(ordered.dtype, np.floating):
            same |= np.isnan(ordered[1:]) & np.isnan(ordered[:-1])  # NaNs are one value, as np.unique has it
        # CSER's groups: distinct (row, value) pairs = non-zeros less the repeats of a value within a row
        rows_sorted = np.repeat(np.arange(len(row_nnz), dtype=index), row_nnz)[perm]
        sum_d = nnz - int(np.count_nonzero(same & (rows_sorted[1:] == rows_sorted[:-1])))
        del rows_sorted
        new_value = np.concatenate([[True], ~same]) if nnz else np.zeros(0, dtype=bool)
        distinct = ordered[new_value]
        counts = np.diff(np.append(np.flatnonzero(new_value), nnz))
        del ordered, same
        # frequency ranks as _frequency_ranked gives them (ties: increasing value), scattered back to row order
        rank_of = np.empty(len(counts), dtype=index)
        rank_of[np.argsort(-counts, kind="stable")] = np.arange(len(counts), dtype=index)
        ranks = np.empty(nnz, dtype=index)
        ranks[perm] = rank_of[np.cumsum(new_value, dtype=index) - 1]
        del perm, new_value
        # CER's groups: row r keeps one for every rank up to its highest, 1 + that rank
        nonempty = np.flatnonzero(row_nnz)
        starts = np.concatenate([[0], np.cumsum(row_nnz)[:-1]])[nonempty]
        sum_k = int(np.maximum.reduceat(ranks, starts).astype(np.int64).sum()) + len(nonempty) if nnz else 0
        zeros = m.size - nnz  # every count in np.unique's order of values, zero included
        all_counts = np.insert(counts, int(np.searchsorted(distinct, 0)), zeros) if zeros else counts
        p = all_counts / m.size if m.size else all_counts.astype(np.float64)
        return cls(rows=m.shape[0], cols=m.shape[1], nnz=nnz, rows_nonzero=len(nonempty), distinct=len(counts),
                   entropy=float(-(p * np.log2(p)).sum()) + 0.0, sum_d=sum_d, sum_k=sum_k)

    @property
    def elements(self) -> int:
        return self.rows * self.cols

    @property
    def sparsity(self) -> float:
        return 1 - self.nnz / self.elements if self.elements else 0.0

    def bits(self, fmt: str, value_bits: int, index_bits: int) -> int:
        m, nnz, k = self.rows, self.nnz, self.distinct
        if fmt == "dense":
            return self.elements * value_bits
        if fmt == "csr":
            return nnz * (value_bits + index_bits) + (m + 1) * index_bits
        if fmt == "cer":
            return k * value_bits + (nnz + self.sum_k + m + m + 1) * index_bits
        if fmt == "cser":
            return k * value_bits + (nnz + self.sum_d + self.sum_d + m + m + 1) * index_bits
        raise ValueError(fmt)

    def ops(self, fmt: str) -> OpCounts:
        """Operations of one matrix-vector product (see the module docstring's table)."""
        m, n, nnz = self.rows, self.cols, self.nnz
        adds = nnz - self.rows_nonzero
        if fmt == "dense":
            return OpCounts(m * n, m * (n - 1), 2 * m * n, m)
        if fmt == "csr":
            return OpCounts(nnz, adds, 3 * nnz + m + 1, m)
        if fmt == "cer":
            return OpCounts(self.sum_d, adds, 2 * nnz + self.sum_k + m + self.sum_d + m + 1, m)
        if fmt == "cser":
            return OpCounts(self.sum_d, adds, 2 * nnz + 3 * self.sum_d + m + m + 1, m)
        raise ValueError(fmt)


@dataclass
class LayerWeightStats:
    layer: str
    shape: tuple[int, ...]
    stats: MatrixStats
    applications: int  # matrix-vector products per forward pass (output positions x batch)
    value_bits: int
    index_bits: int
    quantize_bits: int | None = None
    bits: dict[str, int] = field(init=False)
    ops: dict[str, OpCounts] = field(init=False)

    def __post_init__(self) -> None:
        self.bits = {f: self.stats.bits(f, self.value_bits, self.index_bits) for f in FORMATS}
        self.ops = {f: self.stats.ops(f).scaled(self.applications) for f in FORMATS}

    def columns(self) -> dict[str, Any]:
        s = self.stats
        row: dict[str, Any] = {"w_matrix": f"{s.rows}x{s.cols}", "w_sparsity": s.sparsity,
                               "w_entropy_bits": s.entropy, "w_distinct": s.distinct,
                               "w_applications": self.applications}
        for f in FORMATS:
            row[f"bits_{f}"] = self.bits[f]
        for f in FORMATS:
            for op in OPS:
                row[f"{op}_{f}"] = getattr(self.ops[f], op)
        return row


def analyze_weights(weights: Mapping[str, list[np.ndarray]], quantize_bits: int | None = None,
                    value_bits: int = 32, index_bits: int = 32,
                    applications: Mapping[str, int] | None = None) -> dict[str, LayerWeightStats]:
    """Per layer with a >=2-D first blob: statistics of that blob as a (rows, -1) matrix, optionally
    quantised to ``quantize_bits`` first. ``applications[layer]`` (default 1) multiplies the op counts."""
    out = {}
    for name, blobs in weights.items():
        if not blobs or np.asarray(blobs[0]).ndim < 2:
            continue  # biases, BatchNorm/Scale vectors: no dot-product matrix
        blob = np.asarray(blobs[0])
        matrix = blob.reshape(blob.shape[0], -1)
        if quantize_bits is not None:
            matrix = quantize_uniform(matrix, quantize_bits)
        times = 1 if applications is None else applications.get(name, 1)
        out[name] = LayerWeightStats(name, blob.shape, MatrixStats.of(matrix), times, value_bits, index_bits,
                                     quantize_bits)
    return out


def total_columns(layers: Iterable[LayerWeightStats]) -> dict[str, Any]:
    """Sums over layers; entropy is the element-weighted mean of the layers' entropies (not the entropy
    of all weights pooled)."""
    layers = list(layers)
    elements = sum(w.stats.elements for w in layers)
    row: dict[str, Any] = {
        "w_elements": elements,
        "w_sparsity": 1 - sum(w.stats.nnz for w in layers) / elements if elements else None,
        "w_entropy_bits": sum(w.stats.entropy * w.stats.elements for w in layers) / elements if elements else None,
        "w_quantize_bits": layers[0].quantize_bits if layers else None,
        "w_value_bits": layers[0].value_bits if layers else None,
        "w_index_bits": layers[0].index_bits if layers else None,
    }
    for f in FORMATS:
        row[f"bits_{f}"] = sum(w.bits[f] for w in layers)
    for f in FORMATS:
        for op in OPS:
            row[f"{op}_{f}"] = sum(getattr(w.ops[f], op) for w in layers)
    return row


COLUMN_LABELS: dict[str, str] = {
    "w_matrix": "weight matrix",
    "w_elements": "weight elements",
    "w_sparsity": "sparsity",
    "w_entropy_bits": "entropy (bit/elem)",
    "w_distinct": "distinct values",
    "w_applications": "mat-vec per pass",
    "w_quantize_bits": "quantised to (bits)",
    "w_value_bits": "bits per stored value",
    "w_index_bits": "bits per stored index",
    **{f"bits_{f}": f"{f.upper()} bits" for f in FORMATS},
    **{f"{op}_{f}": f"{f.upper()} {op}s" for f in FORMATS for op in OPS},
}
