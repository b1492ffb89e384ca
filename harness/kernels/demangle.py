"""C++ demangling of kernel names, with no hard dependency.

Tried in order: libstdc++'s ``__cxa_demangle`` through ctypes (present wherever Python itself runs
on glibc Linux: libstdc++6 is a dependency of python3 on Debian), then the ``c++filt`` binary
(binutils), then the optional ``cxxfilt`` package (which itself wraps ``__cxa_demangle``). If none
works, names stay mangled and :func:`demangler_name` says ``"none"`` so callers can warn once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import shutil
import subprocess
from collections.abc import Callable, Iterable


def is_mangled(name: str) -> bool:
    return name.startswith("_Z")


@functools.lru_cache(maxsize=1)
def _cxa_demangle() -> Callable[[str], str | None] | None:
    path = ctypes.util.find_library("stdc++") or "libstdc++.so.6"
    try:
        lib = ctypes.CDLL(path)
        fn = lib.__cxa_demangle
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    libc.free.argtypes = [ctypes.c_void_p]

    def demangle(name: str) -> str | None:
        status = ctypes.c_int()
        ptr = fn(name.encode(), None, None, ctypes.byref(status))
        if not ptr or status.value != 0:
            return None
        try:
            return ctypes.string_at(ptr).decode(errors="replace")
        finally:
            libc.free(ptr)

    return demangle


def _cxxfilt_binary(names: list[str]) -> list[str] | None:
    exe = shutil.which("c++filt")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], input="\n".join(names), capture_output=True, text=True, check=True,
                             timeout=60).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if len(out) == len(names) else None


def demangler_name() -> str:
    if _cxa_demangle() is not None:
        return "libstdc++ __cxa_demangle"
    if shutil.which("c++filt"):
        return "c++filt"
    try:
        import cxxfilt  # noqa: F401
    except ImportError:
        return "none"
    return "cxxfilt"


def demangle_all(names: Iterable[str]) -> dict[str, str]:
    """Mangled name -> demangled name for every mangled name given (others map to themselves)."""
    unique = sorted(set(names))
    result = {n: n for n in unique}
    mangled = [n for n in unique if is_mangled(n)]
    if not mangled:
        return result
    fn = _cxa_demangle()
    if fn is not None:
        for n in mangled:
            result[n] = fn(n) or n
        return result
    via_binary = _cxxfilt_binary(mangled)
    if via_binary is not None:
        result.update(zip(mangled, via_binary, strict=True))
        return result
    try:
        import cxxfilt
    except ImportError:
        return result
    for n in mangled:
        with contextlib.suppress(cxxfilt.InvalidName):
            result[n] = cxxfilt.demangle(n)
    return result


def demangle(name: str) -> str:
    return demangle_all([name])[name]
