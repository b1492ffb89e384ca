"""Child processes started in a session of their own (``start_new_session=True``), so that the whole group
(a worker and what it started: a profiler's target, the NVML poller) goes together when it must."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def kill_process_group(pid: int) -> None:
    """Kill the process group ``pid`` leads, or the process alone where it leads none; nothing where it is gone.
    Reaping it is its parent's business (a warm parent reaps its forked workers as they end)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` and its process group, and reap it."""
    if proc.returncode is None:  # reaped already: its pid may be another process's by now
        kill_process_group(proc.pid)
    proc.wait()
