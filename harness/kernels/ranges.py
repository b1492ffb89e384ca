"""The per-layer ranges the harness puts around each layer's forward call, read back by attribution.

A converter calls ``with layer_range(layer.name): module(x)``: that opens a
``torch.profiler.record_function`` range (a Kineto "user_annotation" event) and, when CUDA is in use,
an NVTX range (an NVTX_EVENTS row in an Nsight Systems capture), both named ``layer:<name>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

LAYER_PREFIX = "layer:"


@contextlib.contextmanager
def layer_range(name: str, nvtx: bool = False) -> Iterator[None]:
    """Mark one layer's forward call for the profilers (torch must be importable)."""
    import torch

    label = LAYER_PREFIX + name
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.profiler.record_function(label))
        if nvtx and torch.cuda.is_available():
            stack.enter_context(torch.cuda.nvtx.range(label))
        yield
