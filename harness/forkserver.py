"""A warm parent of workers: ``python -m harness.forkserver --backend NAME --socket PATH``.

:mod:`harness.worker_start` starts one per sweep and per (interpreter, backend, environment). It imports
what that backend's workers import (:meth:`harness.backends.base.Backend.preload`: the framework, pycaffe
and its build facts...), says it is ready on its stdout, and from then on forks one child per
configuration; the child becomes the worker (:func:`harness.worker.main`) as if it had been started
fresh, minus the imports.

What keeps a forked worker as clean as a spawned one:

- The parent only imports. It never loads a network, creates a session, runs an operator or touches a
  device, so there is no allocator pool, CUDA context, dynamo cache or crashed state to inherit.
- Before every fork it checks that this still holds (:func:`fork_hazards`): a thread started since its
  warm-up (a framework's intra-op pool: a child would inherit a pool whose threads do not exist in it), an
  open NVIDIA device file (a CUDA context or an NVML handle, which CUDA forbids using after a fork), a
  CUDA context torch knows of. Any of them and it refuses; the harness then spawns that worker fresh.
- The child starts a session of its own, takes the job's stdin, stdout and stderr, gets exactly the
  environment a spawned worker would get, default signal handlers, and none of the parent's sockets; it
  leaves with ``os._exit``, so no exit handler of the parent runs in it.
- Each child is reaped here and its exit status sent to the client that asked for it (a worker killed by
  a signal or aborted by Caffe's CHECK is reported as such). A client that goes away takes its child with
  it; end of file on this process's stdin (the harness is gone) ends the parent and its children.

A request is one SOCK_SEQPACKET message on the socket: JSON ``{"entry": ..., "env": {...}}`` with three
file descriptors (the child's stdin, stdout, stderr). Replies: ``{"pid": N, "started": {...}}`` (what
the child records of how it started) or ``{"refused": why}``, then ``{"exit": returncode}`` when the child is
gone (Popen's convention: -N for signal N).

Standard library only at the top (:mod:`harness.process_group` is too): this runs under pycaffe's
interpreter too.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from typing import Any

from harness.process_group import kill_process_group

#: the most a request may hold (the environment is the bulk of it)
MAX_REQUEST = 1 << 20
#: what a child may run (a fixed table: the socket names one, it never carries code): a worker, the
#: backend's probe (a sweep's planning), or a report of the framework state it inherited (the tests)
ENTRIES = ("worker", "probe", "inherited-state")


def thread_ids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def open_device_files(prefixes: tuple[str, ...] = ("/dev/nvidia",)) -> list[str]:
    """Device files this process holds open whose path starts with one of ``prefixes``: a CUDA context
    or an NVML handle keeps ``/dev/nvidiactl`` and ``/dev/nvidia<N>`` open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(prefixes):
            found.append(target)
    return sorted(set(found))


def fork_hazards(baseline_threads: set[int]) -> list[str]:
    """Why forking this process now would hand a child state it must not have; empty when it is safe."""
    hazards = []
    started = thread_ids() - baseline_threads
    if started:
        hazards.append(f"{len(started)} thread(s) started since the warm-up (a framework's thread pool ran here)")
    devices = open_device_files()
    if devices:
        hazards.append(f"GPU device files open ({', '.join(devices)}): a CUDA context or NVML handle")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        hazards.append("torch initialised CUDA here")
    return hazards


def inherited_state(parent_threads_at_fork: int | None = None) -> dict[str, Any]:
    """What a process holds of framework state, read from inside it: live network objects (PyTorch
    modules, ONNX Runtime sessions, OpenCV and Caffe nets), graphs dynamo compiled, whether torch has a CUDA
    context, device files open, and the threads it runs. A child forked from a clean warm parent shows
    none of it (the isolation tests read this from real forked workers)."""
    live: dict[str, int] = {}
    kinds = {("torch.nn.modules.module", "Module"): "torch.nn.Module",
             ("onnxruntime.capi.onnxruntime_inference_collection", "InferenceSession"): "onnxruntime.InferenceSession",
             ("cv2.dnn", "Net"): "cv2.dnn.Net", ("caffe._caffe", "Net"): "caffe.Net"}
    wanted = {}
    for (module, name), label in kinds.items():
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            wanted[cls] = label
    gc.unfreeze()  # what a warm parent froze is its children's too, and gc.get_objects() lists no frozen object
    for obj in gc.get_objects():
        for cls in type(obj).__mro__:
            label = wanted.get(cls)
            if label is not None:
                live[label] = live.get(label, 0) + 1
                break
    dynamo_graphs = 0
    if "torch._dynamo" in sys.modules:
        from torch._dynamo.utils import counters

        dynamo_graphs = int(counters["stats"]["unique_graphs"])
    torch = sys.modules.get("torch")
    return {"live_framework_objects": live, "dynamo_graphs": dynamo_graphs,
            "torch_cuda_initialized": bool(torch is not None and torch.cuda.is_initialized()),
            "device_files": open_device_files(), "threads": len(thread_ids()),
            "parent_threads_at_fork": parent_threads_at_fork}


# ---- in the child -------------------------------------------------------------------------------

def _become_child(request: dict[str, Any], fds: list[int], inherited: list[int], started: dict[str, Any]) -> None:
    """The forked child's whole life: never returns into the parent's loop."""
    code = 1
    try:
        os.setsid()  # a session of its own: killed with everything it starts, deaf to the terminal's Ctrl-C
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in inherited:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = sys.__stdout__  # fd 1 again, as in a spawned process (the parent points it at its log)
        os.environ.clear()
        os.environ.update(request["env"])
        if request["entry"] == "worker":
            from harness.worker import main

            code = main(started)
        elif request["entry"] == "probe":
            from dataclasses import asdict

            from harness.backends.base import get_backend

            info = type(get_backend(started["parent_backend"])).probe()
            print(json.dumps(asdict(info), default=str), flush=True)
            code = 0
        else:
            print(json.dumps(inherited_state(started.get("parent_threads_at_fork"))), flush=True)
            code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing more can be said
                stream.flush()
        os._exit(code)


# ---- in the warm parent -------------------------------------------------------------------------

class ForkServer:
    def __init__(self, listener: socket.socket, warmed: dict[str, Any]) -> None:
        self.listener = listener
        self.warmed = warmed
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # pid -> the connection of the client that asked
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_w, False)
        os.set_blocking(self.wakeup_r, False)
        signal.set_wakeup_fd(self.wakeup_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wake-up fd is what matters
        gc.collect()
        gc.freeze()  # the imported modules' objects: a child's collections never touch (and so copy) their pages
        self._settle()
        self.baseline = thread_ids()

    @staticmethod
    def _settle() -> None:
        """Fork once and let the child leave at once: libraries that stop their idle threads before a fork
        (OpenBLAS) do so now, so the baseline holds only the threads that stay."""
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    def serve(self) -> None:
        sel = self.selector
        sel.register(self.listener, selectors.EVENT_READ, self._accept)
        sel.register(self.wakeup_r, selectors.EVENT_READ, self._reap)
        sel.register(0, selectors.EVENT_READ, self._lifeline)
        while True:
            for key, _ in sel.select():
                if key.data(key.fileobj) is False:
                    return

    def _accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():  # only our own user may ask
            conn.close()
            return
        self.selector.register(conn, selectors.EVENT_READ, self._request)

    def _request(self, conn: socket.socket) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
        except OSError:
            data, fds = b"", []
        if not data:  # the client went away: its child goes with it
            self.selector.unregister(conn)
            for pid, owner in list(self.children.items()):
                if owner is conn:
                    kill_process_group(pid)
            conn.close()
            return
        try:
            request = json.loads(data)
            if len(fds) != 3 or request.get("entry") not in ENTRIES or not isinstance(request.get("env"), dict):
                raise ValueError("a request carries an entry, an environment and three file descriptors")
        except ValueError as exc:
            self._answer(conn, {"refused": f"bad request: {exc}"})
            for fd in fds:
                os.close(fd)
            return
        hazards = fork_hazards(self.baseline)
        if hazards:
            self._answer(conn, {"refused": "; ".join(hazards)})
            for fd in fds:
                os.close(fd)
            return
        threads = len(thread_ids())
        started = {**self.warmed, "how": "forked", "parent_pid": os.getpid(), "parent_threads_at_fork": threads}
        inherited = {self.selector.fileno(), self.wakeup_r, self.wakeup_w, conn.fileno(),
                     *(key.fd for key in self.selector.get_map().values() if key.fd != 0)}  # every client's socket
        pid = os.fork()
        if pid == 0:
            _become_child(request, fds, sorted(inherited), started)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self._answer(conn, {"pid": pid, "started": started})  # what the child records of its start

    def _reap(self, _fd: int) -> None:
        try:
            while os.read(self.wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self._answer(conn, {"exit": os.waitstatus_to_exitcode(status)})

    def _lifeline(self, _fd: int) -> bool:
        if os.read(0, 4096):
            return True
        for pid in list(self.children):  # the harness is gone: nothing it started may outlive it
            kill_process_group(pid)
        return False

    @staticmethod
    def _answer(conn: socket.socket, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the client is gone; its end of file comes to _request
            conn.send(json.dumps(reply).encode())


def warm_up(backend: str) -> dict[str, Any]:
    """Import what every worker of ``backend`` imports, and work out what every worker would work out the
    same way (the host's metadata: a git run); nothing that runs a framework."""
    start = time.perf_counter()
    import harness.analysis.analyzer
    import harness.worker
    import harness.zoo  # noqa: F401 - harness.worker's, and what run_config imports when it runs
    from harness.backends.base import get_backend
    from harness.results.metadata import host_metadata

    host_metadata()
    get_backend(backend).preload()
    return {"parent_backend": backend, "parent_warm_up_s": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.forkserver")
    p.add_argument("--backend", required=True)
    p.add_argument("--socket", required=True, help="the path of the Unix socket to listen on")
    args = p.parse_args(argv)
    ready = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to the log, never into the ready line
    sys.stdout = sys.stderr
    try:
        warmed = warm_up(args.backend)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(args.socket)
        listener.listen(64)
        server = ForkServer(listener, warmed)
    except BaseException as exc:
        ready.write(json.dumps({"error": f"{type(exc).__name__}: {exc}".strip()}) + "\n")
        ready.close()
        return 1
    ready.write(json.dumps({"ready": True, "pid": os.getpid(), "threads": len(server.baseline), **warmed}) + "\n")
    ready.close()
    server.serve()
    sys.stderr.flush()
    os._exit(0)  # nothing to tear down: a framework's exit handlers would only delay the harness that waits


if __name__ == "__main__":
    sys.exit(main())
