"""Host memory of the process running a network: peak resident set since a reset.

Linux keeps a per-process high-water mark (VmHWM in /proc/PID/status); writing "5" to
/proc/PID/clear_refs resets it to the current RSS, so each configuration gets its own peak even in
a long-lived process. Device memory comes from the NVML poller, framework memory from the Session.
"""

from __future__ import annotations

import os
from pathlib import Path


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss(pid: int | None = None) -> bool:
    """Reset the process's RSS high-water mark; False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid or os.getpid()}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """Peak resident set (since start or the last reset) of ``pid`` (default: this process); None off Linux."""
    kib = _status_kib(pid or os.getpid(), "VmHWM")
    return None if kib is None else kib * 1024
