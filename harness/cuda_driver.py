"""The CUDA driver asked directly (``libcuda.so.1`` through ctypes): device UUIDs and compute capability
as CUDA enumerates them in this process's environment. ``cuInit`` creates no context and allocates no
GPU memory, so the process that plans and launches a sweep can ask without touching any GPU it measures;
and no framework has to be imported for it."""

from __future__ import annotations

import ctypes

from harness.errors import HarnessError


def format_uuid(raw: bytes) -> str:
    """NVML's text form of a 16-byte CUDA UUID: GPU-8-4-4-4-12 hex digits."""
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _libcuda() -> ctypes.CDLL | None:
    """The CUDA driver library, initialised; None where it cannot be loaded or initialised."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    return lib if lib.cuInit(0) == 0 else None


#: CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR (cuda.h)
_CC_MAJOR, _CC_MINOR = 75, 76


def cuda_capability(device: str) -> tuple[int, int] | None:
    """The compute capability of ``cuda:N`` as CUDA enumerates it here, asked of the driver: no framework
    import and no context, so a sweep's planning process holds no GPU memory. None where there is no such
    GPU or no driver."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or not index.isdigit():
        raise HarnessError(f"not a CUDA device: '{device}'")
    lib = _libcuda()
    if lib is None:
        return None
    ordinal = int(index)
    dev, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    if (lib.cuDeviceGet(ctypes.byref(dev), ordinal) != 0
            or lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev) != 0
            or lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev) != 0):
        return None
    return major.value, minor.value


def cuda_driver_uuids() -> list[str] | None:
    """UUIDs of CUDA's devices 0..n-1 as the driver enumerates them in this environment, or None where
    libcuda cannot be loaded or initialised. cuInit creates no context and allocates no GPU memory."""
    lib = _libcuda()
    if lib is None:
        return None
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return None
    get_uuid = getattr(lib, "cuDeviceGetUuid_v2", None) or lib.cuDeviceGetUuid
    out = []
    for ordinal in range(count.value):
        dev = ctypes.c_int(0)
        raw = (ctypes.c_ubyte * 16)()
        if lib.cuDeviceGet(ctypes.byref(dev), ordinal) != 0 or get_uuid(raw, dev) != 0:
            return None
        out.append(format_uuid(bytes(raw)))
    return out
