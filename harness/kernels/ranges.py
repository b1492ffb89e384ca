"""The ranges the harness marks for profilers: per-layer ranges read back by attribution, and the capture
range that limits a profile to the timed forward passes.

Per layer: a converter calls ``with layer_range(layer.name): module(x)``: that opens a
``torch.profiler.record_function`` range (a Kineto "user_annotation" event) and, when CUDA is in use,
an NVTX range (an NVTX_EVENTS row in an Nsight Systems capture), both named ``layer:<name>``.

Capture range: :func:`cuda_capture_range` calls the CUDA driver's ``cuProfilerStart`` / ``cuProfilerStop``
around the timed forward passes, so ``ncu --profile-from-start off`` and ``nsys profile
--capture-range=cudaProfilerApi`` see those passes and nothing else (not model loading, not warm-up).
Through ctypes on ``libcuda.so.1``: the driver is in every CUDA process whatever framework (or Caffe
build) loaded it, so the same code serves every backend in the process that runs the network.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

from harness.errors import HarnessError

LAYER_PREFIX = "layer:"
#: the Kineto annotation torch.profiler puts around each step of a schedule: one per profiled iteration
KINETO_STEP_PREFIX = "ProfilerStep#"


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


class CaptureRangeError(HarnessError):
    """The profiler's capture range could not be opened: profiling would capture nothing (or everything)."""


def _driver() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise CaptureRangeError(f"no CUDA driver to open the capture range with (libcuda.so.1: {exc})") from None


def _check(driver: ctypes.CDLL, call: str) -> None:
    code = getattr(driver, call)()
    if code != 0:  # CUDA_SUCCESS
        # 201 CUDA_ERROR_INVALID_CONTEXT: the network has not created a CUDA context on this thread
        raise CaptureRangeError(f"{call} returned CUDA error {code}: the capture range was not "
                                f"{'opened' if call.endswith('Start') else 'closed'} (is the network on a GPU, "
                                "in this process?)")


@contextlib.contextmanager
def cuda_capture_range() -> Iterator[None]:
    """cuProfilerStart on entry, cuProfilerStop on exit, for the CUDA context current on this thread (the
    one the network runs in: call after loading it and running a forward pass)."""
    driver = _driver()
    _check(driver, "cuProfilerStart")
    try:
        yield
    except BaseException:
        driver.cuProfilerStop()  # the forward pass's error is the one to report
        raise
    _check(driver, "cuProfilerStop")
