"""Each framework's out-of-memory, as it reports it, turned into :class:`DeviceOutOfMemory` (status ``oom``).

No framework raises one exception type for running out of memory. What they raise was observed here
under an address-space limit (``RLIMIT_AS``) on CPU, and is read from the frameworks' sources for CUDA:

- PyTorch: ``torch.cuda.OutOfMemoryError`` ("CUDA out of memory. Tried to allocate ..."); the CPU
  allocator's ``RuntimeError`` "[enforce fail at alloc_cpu.cpp:...] ... DefaultCPUAllocator: can't
  allocate memory: you tried to allocate N bytes. Error code 12 (Cannot allocate memory)"; cuBLAS/cuDNN
  status ``*_ALLOC_FAILED``.
- ONNX Runtime: ``Fail`` "... BFCArena::AllocateRawInternal ... Failed to allocate memory for requested
  buffer of size N" in a run; ``RuntimeException`` "Exception during initialization: std::bad_alloc"
  when a session is created; "CUDA failure 2: out of memory" from its CUDA provider.
- OpenCV: ``cv2.error`` "(-4:Insufficient memory) Failed to allocate N bytes" in a forward pass;
  "std::bad_alloc" while a net is read; "(-217:Gpu API call) out of memory" from its CUDA backend.
- NumPy (the weights and the input every backend draws): ``MemoryError`` "Unable to allocate ...".

A backend's failure that *wraps* one of these (e.g. the ONNX export, which reports its errors as
``BackendFailed``) is an out-of-memory too: the chain of causes and contexts is searched.
"""

from __future__ import annotations

from types import TracebackType

from harness.errors import BackendUnavailable, DeviceOutOfMemory, UnsupportedLayer

#: substrings of an exception's text that mean "out of memory", per framework
MARKERS: dict[str, tuple[str, ...]] = {
    "pytorch": ("out of memory", "can't allocate memory", "ALLOC_FAILED"),
    "onnxruntime": ("Failed to allocate memory", "bad_alloc", "out of memory", "ALLOC_FAILED",
                    "can't allocate memory"),  # the last: PyTorch's, from the ONNX export
    "opencv": ("Insufficient memory", "Failed to allocate", "bad_alloc", "out of memory", "ALLOC_FAILED"),
}

#: errors that already say what happened; never re-read as an out-of-memory
_FINAL = (DeviceOutOfMemory, UnsupportedLayer, BackendUnavailable)


def out_of_memory_cause(exc: BaseException, framework: str) -> BaseException | None:
    """The exception in ``exc``'s chain of causes and contexts that says ``framework`` (or NumPy) ran
    out of memory; None if none does."""
    markers = MARKERS[framework]
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, MemoryError) or type(link).__name__ == "OutOfMemoryError":
            return link
        if any(marker in str(link) for marker in markers):
            return link
        link = link.__cause__ or link.__context__
    return None


class OutOfMemoryAs:
    """``with OutOfMemoryAs("pytorch", "in forward of alexnet B=128 on cuda:0"):`` re-raises the
    framework's out-of-memory inside the block as DeviceOutOfMemory naming where it happened; every
    other exception passes unchanged. A class rather than a generator-based context manager: a
    forward pass enters it on every timed iteration, and this costs a plain method call."""

    def __init__(self, framework: str, where: str) -> None:
        self.framework, self.where = framework, where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, _FINAL):
            return False
        cause = out_of_memory_cause(exc, self.framework)
        if cause is None:
            return False
        lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
        detail = lines[0] if lines else type(cause).__name__
        raise DeviceOutOfMemory(f"{self.framework} ran out of memory {self.where}: {detail}") from exc
