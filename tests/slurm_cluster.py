"""A real single-node Slurm cluster on localhost for the tests, from Debian's packages.

``slurmctld``, ``slurmd`` and ``munged`` run as our own child processes with everything in a temporary
folder: a fresh munge key, a ``slurm.conf`` on free ports with ``ProctrackType=proctrack/linuxproc`` and
``TaskPlugin=task/none`` (no systemd, no cgroups), state and spool directories, logs. ``SLURM_CONF`` points
every client (sbatch, srun, scancel, squeue, scontrol) at it. No accounting daemon: ``sacct`` answers
"accounting storage is disabled", so the harness falls back to ``scontrol``, as on a cluster without
slurmdbd. It starts in about a second and is stopped (jobs cancelled, daemons terminated by pid) at the end.

:func:`cluster_or_skip` says why it cannot run here: not root (slurmd starts tasks as their user),
a package missing (``apt-get install slurmctld slurmd munge slurm-client``), or submitit missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "srun", "scancel", "squeue", "scontrol")
START_TIMEOUT_S = 30.0
#: seconds between SIGTERM and SIGKILL when a job ends (the default, 30, would only make the tests wait)
KILL_WAIT_S = 10


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    node: str

    def run(self, *args: str) -> str:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for log in sorted((self.root / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def why_not_here() -> str | None:
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd starts tasks as their user)"
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (f"Slurm/munge not installed ({', '.join(missing)} missing): "
                "apt-get install slurmctld slurmd munge slurm-client")
    if importlib.util.find_spec("submitit") is None:
        return "submitit is not installed (pip install 'harness[cluster]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(root: Path, node: str) -> str:
    return f"""ClusterName=harnesstest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={root}/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait={KILL_WAIT_S}
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def local_cluster(root: Path) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd under ``root``; stop them afterwards."""
    node = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True)
    (root / "munge").chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, node))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge_pid = root / "munge" / "munged.pid"
    daemons: list[subprocess.Popen[bytes]] = []
    cluster = SlurmCluster(root, conf, node)
    try:
        subprocess.run(["munged", "--force", f"--key-file={key}", f"--socket={root}/munge/socket",
                        f"--pid-file={munge_pid}", f"--log-file={root}/log/munged.log",
                        f"--seed-file={root}/munge/seed"], check=True, env=env, timeout=30)
        for cmd, name in ((["slurmctld", "-D", "-c", "-f", str(conf)], "slurmctld.out"),
                          (["slurmd", "-D", "-f", str(conf), "-N", node], "slurmd.out")):
            with (root / "log" / name).open("wb") as out:
                daemons.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
            if state.stdout.strip() == "idle":
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the local Slurm did not come up in {START_TIMEOUT_S:.0f} s\n{cluster.log_tail()}")
        yield cluster
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
        time.sleep(0.5)
        for proc in reversed(daemons):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(munge_pid.read_text().strip()), signal.SIGTERM)


def cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """The body of a module-scoped fixture: skips with the reason, or yields a running cluster with
    ``SLURM_CONF`` set for this process (and so for the jobs it submits)."""
    reason = why_not_here()
    if reason is not None:
        pytest.skip(reason)
    with local_cluster(tmp_path_factory.mktemp("slurm")) as cluster, pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster
