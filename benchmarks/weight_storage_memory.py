"""Memory of the weight-storage analysis (`analyze --metrics storage`): the peak of Python and NumPy
allocations (tracemalloc) while the dense/CSR/CER/CSER statistics of every Convolution and InnerProduct
matrix of a zoo network are counted, unquantised (nearly one distinct value per weight, where CER's
pointer array would hold rows x distinct values: 2.3 GiB and more for SqueezeNet) and quantised to 8 bits.
The network's deterministic weights (harness.convert.weights) stand in for trained ones: what matters here
is the number of distinct values, which is as high in both.

Goal: peak <= 64 bytes per weight of the largest matrix + 64 MiB (a small multiple of the largest
matrix, never rows x distinct values). Memory figures do not depend on the machine's load.
Run: python benchmarks/weight_storage_memory.py [NETWORK ...]  (default: squeezenet_v1.0 squeezenet_v1.1
mobilenet_v1 alexnet)
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from harness.analysis.weight_storage import DOT_PRODUCT_TYPES, analyze_weights
from harness.convert.weights import weight_set
from harness.zoo import resolve

MIB = 2**20
DEFAULT = ("squeezenet_v1.0", "squeezenet_v1.1", "mobilenet_v1", "alexnet")


def goal_bytes(largest_weights: int) -> int:
    return 64 * largest_weights + 64 * MIB


def main(networks: list[str]) -> int:
    print(f"{'network':18s} {'quantised':>9s} {'weights MiB':>11s} {'largest MiB':>11s} {'peak MiB':>9s} "
          f"{'goal MiB':>9s} {'time s':>7s}")
    met = True
    for name in networks:
        graph = resolve(name)
        dot = {layer.name for layer in graph.layers if layer.type in DOT_PRODUCT_TYPES}
        matrices = {k: v for k, v in weight_set(graph).items() if k in dot and v}
        total = sum(blobs[0].size for blobs in matrices.values())
        largest = max(blobs[0].size for blobs in matrices.values())
        for bits in (None, 8):
            tracemalloc.start()
            start = time.perf_counter()
            analyze_weights(matrices, bits)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            goal = goal_bytes(largest)
            met &= peak <= goal
            print(f"{name:18s} {bits or 'no':>9} {total * 4 / MIB:11.1f} {largest * 4 / MIB:11.1f} {peak / MIB:9.1f} "
                  f"{goal / MIB:9.1f} {seconds:7.1f}")
    print(f"goal (peak <= 64 bytes per weight of the largest matrix + 64 MiB): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(DEFAULT)))
