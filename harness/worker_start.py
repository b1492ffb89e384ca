"""How a worker process comes to be: spawned fresh, or forked from a warm parent. The one place that decides.

Executors (:mod:`harness.executors`) decide WHERE a configuration's worker runs, :mod:`harness.worker` is WHAT
it does; this module is HOW its process starts. A fresh interpreter per configuration is clean but slow:
it imports the harness and the framework again (PyTorch alone takes seconds), Caffe's worker probes pycaffe
and the libraries it links again, and its exit tears all of that down again. So during a sweep
(:func:`sweep_workers`) every worker is forked from a warm parent (:mod:`harness.forkserver`): one per
interpreter, backend and environment, which has imported what that backend's workers import and nothing
else - the CPU memory figure is the worker's peak RSS, and a child starts with its parent's pages, so a
parent that had imported every framework would add the others' memory to each backend's figure. The
child is still one fresh process per configuration: its own allocator pool, CUDA context, dynamo cache,
its own crash; nothing measured is shared.

The warm parents of a sweep start together, beside the sweep's one-time preparation of the artefacts
its workers read (:func:`prepare_shared`: the converted prototxts, the weights, the ONNX exports), and the
first configuration starts once they are all ready, so no window is measured beside an importing parent.

Every failure of this machinery falls back to what it replaces, never to a lost configuration: a warm
parent that cannot start (its framework is not installed) is not started again and its workers are spawned
(the spawned worker then records why); one that refuses to fork (:func:`harness.forkserver.fork_hazards`:
what it refuses for does not go away) or dies (killed, out of memory) is closed and replaced, up to
:data:`MAX_RESTARTS` times in a sweep, and after that its workers are spawned. A worker whose parent dies
under it still replies and is recorded; only its exit status is then unknown.

Each parent has a lock of its own: a lane waiting for a replacement parent to import its framework stalls
only the lanes of that parent, never those of another backend.

``HARNESS_FORK_SERVER=0`` (``harness bench --no-fork-server``) spawns every worker fresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Protocol

from harness.backends.base import BackendInfo, RunTarget, get_backend
from harness.errors import BackendUnavailable, HarnessError
from harness.results.records import Config

FORK_SERVER_ENV = "HARNESS_FORK_SERVER"
#: variables a framework reads when it initialises a device, never at import (CUDA at cuInit, cuBLAS and
#: cuDNN when they create a handle): they may differ between a warm parent and its children, so that one
#: parent serves every GPU of a multi-GPU sweep. Any other difference needs a parent of its own.
LATE_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_TF32_OVERRIDE"})
#: how long a warm parent may take to import its framework
READY_TIMEOUT_S = 600.0
#: a warm parent that died or refused to fork this many times in one sweep is not started again: its
#: workers are spawned
MAX_RESTARTS = 3
#: a fork takes milliseconds; a warm parent that has not answered by then is stuck, and replaced
FORK_TIMEOUT_S = 60.0
#: how much of a log (a dead worker's, a warm parent's that did not start) a message quotes
LOG_TAIL_LINES = 3


def log_tail(text: str) -> list[str]:
    """The last LOG_TAIL_LINES non-blank lines of a worker's or warm parent's log: what a failure says of it."""
    return [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]


def fork_server_on() -> bool:
    return os.environ.get(FORK_SERVER_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


class WorkerProcess(Protocol):
    """What :mod:`harness.worker` uses of a worker process, spawned (a Popen) or forked."""

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None
    returncode: int | None

    def wait(self, timeout: float | None = None) -> int | None: ...

    def kill(self) -> None: ...


class ParentUnavailable(Exception):
    """A warm parent that did not start, refused to fork, or died."""


@dataclass(frozen=True)
class ParentKey:
    python: str
    backend: str
    env: tuple[tuple[str, str], ...]  # the parent's environment: the workers' without LATE_ENV

    @classmethod
    def of(cls, python: str, backend: str, env: dict[str, str]) -> ParentKey:
        return cls(python, backend, tuple(sorted((k, v) for k, v in env.items() if k not in LATE_ENV)))


class ForkedWorker:
    """A worker forked by a warm parent: its pipes here, its exit status reported by the parent."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes], conn: socket.socket,
                 started: dict[str, Any]) -> None:
        self.pid, self.stdin, self.stdout, self.conn = pid, stdin, stdout, conn
        #: how it started, as the parent of the sweep knows it (the worker records its own, the same)
        self.started = started
        self.returncode: int | None = None
        #: why the exit status is unknown (its parent died while it ran), or None
        self.exit_unknown: str | None = None
        self._done = False

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (Popen's convention); subprocess.TimeoutExpired when it is not there in time."""
        if self._done:
            return self.returncode
        with selectors.DefaultSelector() as sel:
            sel.register(self.conn, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        try:
            data = self.conn.recv(4096)
        except OSError:
            data = b""
        self._done = True
        self.conn.close()
        if data:
            self.returncode = json.loads(data)["exit"]
        else:  # the warm parent died: the worker was its child, and its status went with it
            self.exit_unknown = "its warm parent died while it ran, so its exit status is unknown"
            _wait_gone(self.pid)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)


def how_started(proc: WorkerProcess) -> dict[str, Any]:
    """How a worker process started, as its record says it (``metadata["worker_start"]``)."""
    return dict(proc.started) if isinstance(proc, ForkedWorker) else {"how": "spawned"}


def exit_unknown(proc: WorkerProcess) -> str | None:
    """Why ``proc``'s exit status is unknown (a forked worker whose warm parent died under it), or None."""
    return proc.exit_unknown if isinstance(proc, ForkedWorker) else None


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    """Wait for a process that is not our child to end (its new parent reaps it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.01)


class WarmParent:
    """One ``python -m harness.forkserver`` process: started, waited for, asked to fork, closed."""

    def __init__(self, key: ParentKey) -> None:
        self.key = key
        self.folder = tempfile.mkdtemp(prefix="harness-fork-")  # 0700: only our user reaches the socket
        self.socket = os.path.join(self.folder, "s")
        self.log = tempfile.TemporaryFile(prefix="harness-forkserver-")  # noqa: SIM115 - closed in close()
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen([key.python, "-m", "harness.forkserver", "--backend", key.backend,
                                      "--socket", self.socket], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=dict(key.env), start_new_session=True)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        if self.info:
            return
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            line = self.proc.stdout.readline() if sel.select(timeout_s) else b""
        try:
            reply = json.loads(line) if line.strip() else {}
        except ValueError:
            reply = {}
        if not reply.get("ready"):
            why = reply.get("error") or ("no word within the time limit" if self.proc.poll() is None
                                         else f"it exited with status {self.proc.poll()}")
            self.close()
            raise ParentUnavailable(f"the warm parent of {self.key.backend} did not start: {why}"
                                    + self._log_tail())
        self.info = reply

    def fork(self, env: dict[str, str], stderr: int, entry: str = "worker") -> ForkedWorker:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.settimeout(FORK_TIMEOUT_S)
        try:
            try:
                conn.connect(self.socket)
                socket.send_fds(conn, [json.dumps({"entry": entry, "env": env}).encode()],
                                [stdin_r, stdout_w, stderr])
                data = conn.recv(4096)
            except TimeoutError:
                self.proc.kill()  # stuck: it counts as dead, and is replaced
                self.proc.wait()
                data, why = b"", f"it did not answer within {FORK_TIMEOUT_S:g} s"
            except OSError as exc:
                data = b""
                why = exc.strerror or str(exc)
            else:
                why = "it closed the connection"
            finally:
                os.close(stdin_r)
                os.close(stdout_w)
            conn.settimeout(None)
            reply = json.loads(data) if data else {}
            if "refused" in reply:
                raise ParentUnavailable(f"the warm parent of {self.key.backend} refused to fork: {reply['refused']}")
            if "pid" not in reply:
                raise ParentUnavailable(f"the warm parent of {self.key.backend} died ({why})" + self._log_tail())
        except BaseException:
            conn.close()
            os.close(stdin_w)
            os.close(stdout_r)
            raise
        return ForkedWorker(reply["pid"], os.fdopen(stdin_w, "wb"), os.fdopen(stdout_r, "rb"), conn, reply["started"])

    def hang_up(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def close(self) -> None:
        """End of file on its stdin: the parent kills any child it still has and exits."""
        self.hang_up()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            self.log.seek(0)
            lines = log_tail(self.log.read().decode(errors="replace"))
        except (OSError, ValueError):
            return ""
        return (": " + " | ".join(lines)) if lines else ""


class WarmParents:
    """The warm parents of one sweep, by key; thread-safe (the lanes of a multi-GPU sweep share them).

    Each key has a lock of its own, held while its parent starts, gets ready, forks or is replaced: a lane
    waits only for the parent it needs. ``registry`` guards the dictionaries, and is held only to read or
    change them."""

    def __init__(self, note: Callable[[str], None] | None = None) -> None:
        self.note = note or (lambda text: None)
        self.parents: dict[ParentKey, WarmParent] = {}
        self.spawn_only: dict[ParentKey, str] = {}  # keys whose workers are spawned, and why
        self.restarts: dict[ParentKey, int] = {}
        self.retired: list[WarmParent] = []  # replaced while alive: closed with the sweep (below)
        self.locks: dict[ParentKey, threading.Lock] = {}  # one start, fork, probe or replacement per key at a time
        self.registry = threading.Lock()

    def _lock(self, key: ParentKey) -> threading.Lock:
        with self.registry:
            return self.locks.setdefault(key, threading.Lock())

    def _parent(self, key: ParentKey) -> WarmParent | None:
        """The parent to ask for ``key`` (started here where it has none), or None: spawn. Under key's lock."""
        with self.registry:
            if key in self.spawn_only:
                return None
            parent = self.parents.get(key)
        if parent is None:
            try:
                parent = WarmParent(key)
            except OSError as exc:  # no such interpreter: its spawned workers will say so
                with self.registry:
                    self.spawn_only[key] = f"cannot start {key.python}: {exc.strerror or exc}"
                return None
            with self.registry:
                self.parents[key] = parent
        return parent

    def prestart(self, keys: Sequence[ParentKey]) -> None:
        """Start the parents of ``keys`` without waiting for them; several threads may call this at once
        (each key's lock is held only while its process starts, so their imports overlap from the first moment)."""
        for key in keys:
            with self._lock(key):
                self._parent(key)

    def wait_ready(self) -> None:
        with self.registry:
            keys = list(self.parents)
        for key in keys:
            with self._lock(key):
                with self.registry:
                    parent = self.parents.get(key)
                if parent is not None:
                    self._ready(key, parent)

    def start(self, python: str, backend: str, env: dict[str, str], stderr: int,
              entry: str = "worker") -> ForkedWorker | None:
        """A worker forked from the parent of (python, backend, env), or None: spawn it instead."""
        key = ParentKey.of(python, backend, env)
        with self._lock(key):
            while (parent := self._parent(key)) is not None and self._ready(key, parent):
                try:
                    return parent.fork(env, stderr, entry)
                except ParentUnavailable as exc:  # died or refused: replaced, and this worker asks the next
                    self._replace(key, parent, str(exc))
        return None

    def call(self, key: ParentKey, entry: str, timeout_s: float = 300.0) -> Any:
        """What a child of ``key``'s parent running ``entry`` prints (JSON), or None where it could not."""
        with tempfile.TemporaryFile(prefix="harness-forkserver-call-") as log:
            with self._lock(key):
                with self.registry:
                    parent = self.parents.get(key)
                if parent is None or not self._ready(key, parent):
                    return None
                try:
                    child = parent.fork(dict(key.env), log.fileno(), entry)
                except ParentUnavailable as exc:  # the next fork asks its replacement
                    self._replace(key, parent, str(exc))
                    return None
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            with selectors.DefaultSelector() as sel:
                sel.register(child.stdout, selectors.EVENT_READ)
                out = child.stdout.read() if sel.select(timeout_s) else b""
            child.stdout.close()
            if not out:
                child.kill()
            child.wait()
        try:
            return json.loads(out) if child.returncode == 0 else None
        except ValueError:
            return None

    def close(self, which: Callable[[ParentKey], bool] | None = None) -> None:
        """End the parents ``which`` selects (all, the retired ones too, by default)."""
        with self.registry:
            keys = [k for k in self.parents if which is None or which(k)]
        closing = []
        for key in keys:
            with self._lock(key), self.registry:  # none of them is forking now, nor starts to
                parent = self.parents.pop(key, None)
            if parent is not None:
                closing.append(parent)
        with self.registry:
            if which is None:
                closing += self.retired
                self.retired = []
        for parent in closing:
            parent.hang_up()  # all at once: they exit side by side
        for parent in closing:
            parent.close()

    def _ready(self, key: ParentKey, parent: WarmParent) -> bool:
        """Whether ``parent`` is ready (waited for, outside the registry); one that did not start is forgotten
        and its key's workers are spawned. Under key's lock."""
        try:
            parent.wait_ready()
            return True
        except ParentUnavailable as exc:
            with self.registry:
                if self.parents.get(key) is parent:
                    del self.parents[key]
                self.spawn_only[key] = str(exc)  # a framework that cannot be imported: the spawned worker records why
            return False

    def _replace(self, key: ParentKey, parent: WarmParent, why: str) -> None:
        """``parent`` died or refused to fork: the next request starts a new one, unless it was the
        :data:`MAX_RESTARTS`-th of ``key`` (then its workers are spawned). A parent that refused is still
        alive and may have children measuring in other lanes (closing it would kill them): it is retired,
        and closed with the sweep. Under key's lock."""
        alive = parent.proc.poll() is None
        with self.registry:
            if self.parents.get(key) is parent:
                del self.parents[key]
            self.restarts[key] = n = self.restarts.get(key, 0) + 1
            if n >= MAX_RESTARTS:
                self.spawn_only[key] = why
            if alive:
                self.retired.append(parent)
        if not alive:
            parent.close()
        if n >= MAX_RESTARTS:
            self.note(f"{key.backend}: {why}; after {n} warm parents, its workers are spawned fresh from now on")
        else:
            self.note(f"{key.backend}: {why}; starting a new warm parent")


_active: WarmParents | None = None


def start_worker(python: str, backend: str, env: dict[str, str], stderr: int) -> WorkerProcess:
    """The process of one worker (``harness.worker``) with ``env``, its stderr to the file ``stderr``: forked
    from the sweep's warm parent where there is one, else spawned fresh (``python -m harness.worker``)."""
    forked = _active.start(python, backend, env, stderr) if _active is not None else None
    if forked is not None:
        return forked
    return subprocess.Popen([python, "-m", "harness.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, env=env, start_new_session=True)


def parent_key(backend: str) -> ParentKey | None:
    """The warm parent a plain worker of ``backend`` is forked from (None: the backend has no interpreter here)."""
    try:
        python, python_env = get_backend(backend).worker_python()
    except (BackendUnavailable, HarnessError):
        return None
    return ParentKey.of(python, backend, {**os.environ, **python_env})


def prepare_shared(configs: Sequence[Config]) -> None:
    """Make, once for the sweep and before any worker runs, the cached artefacts its workers read
    (:meth:`Backend.prepare_shared`). What fails here is left for the worker, which meets it again and
    records it."""
    from harness import zoo

    graphs: dict[str, Any] = {}
    done: set[tuple[Any, ...]] = set()
    for config in configs:
        what = (config.backend, config.network, config.batch, config.seed)
        if what in done:
            continue
        done.add(what)
        try:
            graph = graphs.get(config.network) or graphs.setdefault(config.network, zoo.resolve(config.network))
            target = RunTarget(graph=graph, network=config.network, batch=config.batch, device=config.device,
                               mode=config.mode, seed=config.seed)
            get_backend(config.backend).prepare_shared(target)
        except Exception:  # the worker meets it again and records it
            continue


class SweepStart:
    """The start-up of one sweep's workers, from before its planning to its end (:func:`sweep_workers`)."""

    def __init__(self, backends: Sequence[str], note: Callable[[str], None] | None = None) -> None:
        self.parents = WarmParents(note) if fork_server_on() else None
        # Each parent starts as soon as its interpreter is known (finding Caffe's takes a probe), all at
        # once and in the background: planning goes on meanwhile, and waits only for the parent it asks.
        self.pool = ThreadPoolExecutor(max(len(backends), 1), thread_name_prefix="warm-parent")
        self.launches: dict[str, Future[ParentKey | None]] = {}
        if self.parents is not None:
            self.launches = {b: self.pool.submit(self._launch, b) for b in backends}

    def _key(self, backend: str) -> ParentKey | None:
        launch = self.launches.get(backend)
        return launch.result() if launch is not None else None

    def _launch(self, backend: str) -> ParentKey | None:
        key = parent_key(backend)
        if key is not None and self.parents is not None:
            self.parents.prestart([key])
        return key

    def probe(self, backend: str) -> BackendInfo:
        """``backend``'s probe, run in a child of its warm parent, which has imported the framework already
        (the child, not the parent: on a GPU, probing initialises CUDA); here where it has none."""
        from harness.measure.sweep import probe_here

        key = self._key(backend)
        if self.parents is not None and key is not None:
            answer = self.parents.call(key, "probe")
            if answer is not None:
                return BackendInfo(**answer)
        return probe_here(backend)

    def ready(self, configs: Sequence[Config]) -> None:
        """Before the first of ``configs`` (those the sweep will run) starts: the shared artefacts made, the
        parents it needs ready (no window is measured beside a parent still importing), the others ended."""
        prepare_shared(configs)
        for backend in self.launches:
            self._key(backend)
        if self.parents is not None:
            needed = {c.backend for c in configs}
            self.parents.close(lambda key: key.backend not in needed)
            self.parents.wait_ready()

    def close(self) -> None:
        self.pool.shutdown(wait=True)  # no parent starts after this
        if self.parents is not None:
            self.parents.close()


@contextlib.contextmanager
def sweep_workers(backends: Sequence[str] | None, note: Callable[[str], None] | None = None) -> Iterator[SweepStart]:
    """The start-up of a sweep's workers: enter before planning, with the backends the user named (None or
    empty: every backend, as planning probes them all). Warm parents start at once (unless
    ``HARNESS_FORK_SERVER=0``); planning probes through them (:meth:`SweepStart.probe`); call
    :meth:`SweepStart.ready` with the configurations to run before the first; the parents end with the sweep."""
    global _active
    from harness.backends.base import BACKENDS

    start = SweepStart(list(backends or sorted(BACKENDS)), note)
    earlier = _active
    _active = start.parents or earlier
    try:
        yield start
    finally:
        _active = earlier
        start.close()
