"""Child processes started in a session of their own (``start_new_session=True``), so that the whole group
(a worker and what it started: a profiler's target, the NVML poller) goes together when it must."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` and its process group, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
