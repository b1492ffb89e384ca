"""``--executor multi-gpu``: one lane per GPU of this machine, each running batch series one after
another, every configuration in a fresh worker pinned to the lane's GPU by UUID
(``CUDA_VISIBLE_DEVICES=GPU-...``: the worker sees ``cuda:0`` and nothing else).

A batch series (one network/backend/mode, ascending batch) is the unit handed to a lane, so the OOM rule
of :func:`harness.measure.sweep.run_series` holds inside it. Lanes take the next series from a queue as
they finish one, so a slow network does not hold the others back. Each lane writes its own shard
(``results-<host>-gpu<N>.jsonl``): no two writers share a file, and every reader merges them with the
store's one rule; resume skips what any shard holds. A machine with GPUs of different models runs every
series once per model (the model is part of a configuration's key), on any lane of that model.

``--device`` names the GPUs to use (default: every GPU CUDA enumerates here).
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import HarnessError
from harness.executors.base import Executor, Plan, SweepRequest, make_job, placement_for, plan_here, to_run
from harness.measure.devices import DeviceIdentity, identify, visible_gpus
from harness.measure.sweep import run_series
from harness.results.records import Config, Record
from harness.results.store import Merged, ResultsStore
from harness.worker import spawn_and_store
from harness.worker_start import sweep_workers


@dataclass(frozen=True)
class Lane:
    """One device a lane's workers run on, and the shard its records go to."""

    identity: DeviceIdentity
    writer: str

    @property
    def device(self) -> str:
        return self.identity.device


def gpu_lanes(devices: list[str], host: str) -> list[Lane]:
    """One lane per distinct GPU among ``devices`` (cuda:N as CUDA enumerates them here)."""
    if any(not d.startswith("cuda") for d in devices):
        raise HarnessError("--executor multi-gpu runs one lane per GPU; for cpu use --executor local")
    identities = list({i.uuid: i for i in map(identify, devices)}.values())
    return [Lane(i, f"{host}-gpu{i.nvml_index}") for i in identities]


def all_gpus() -> list[str]:
    """cuda:0 ... cuda:N-1 for every GPU CUDA enumerates here (HarnessError where there is none)."""
    uuids = visible_gpus().uuids
    if not uuids:
        raise HarnessError("--executor multi-gpu: no GPU is visible here (no NVIDIA driver, or none in "
                           "CUDA_VISIBLE_DEVICES)")
    return [f"cuda:{n}" for n in range(len(uuids))]


class MultiGpuExecutor(Executor):
    name = "multi-gpu"

    def __init__(self, lanes: list[Lane] | None = None) -> None:
        self.lanes = lanes  # None: from the sweep's devices

    def run(self, request: SweepRequest) -> list[Record]:
        host = socket.gethostname()
        spec = replace(request.spec, devices=request.spec.devices or all_gpus())  # every GPU here by default
        lanes = self.lanes or gpu_lanes(spec.devices, host)
        by_model: dict[str | None, list[Lane]] = {}
        for lane in lanes:
            by_model.setdefault(lane.identity.model, []).append(lane)
        with sweep_workers(spec.backends, request.note) as workers:  # one warm parent per backend serves every lane
            # the series once per GPU model, planned on the group's first device; a lane runs it on its own
            plans = {model: plan_here(replace(spec, devices=[group[0].device]), probe=workers.probe)
                     for model, group in by_model.items()}
            for note in dict.fromkeys(n for plan in plans.values() for n in plan.notes):
                request.note(note)
            request.total(sum(plan.size for plan in plans.values()))
            known = ResultsStore(request.results_dir).read()
            workers.ready([c for plan in plans.values() for c in to_run(plan.series, known, request.force)])
            return self._run_lanes(request, by_model, plans, known, host)

    def _run_lanes(self, request: SweepRequest, by_model: dict[str | None, list[Lane]], plans: dict[str | None, Plan],
                   known: Merged, host: str) -> list[Record]:
        lock = threading.Lock()  # progress callbacks come from every lane: one at a time
        on_start = _serialised(request.on_start, lock)
        on_done = _serialised(request.on_done, lock)
        stop = threading.Event()
        done: list[Record] = []
        errors: list[BaseException] = []
        threads = []
        for model, group in by_model.items():
            work: queue.Queue[list[Config]] = queue.Queue()
            for series in plans[model].series:
                work.put(series)
            for lane in group:
                def drain(lane: Lane = lane, work: queue.Queue[list[Config]] = work) -> None:
                    store = ResultsStore(request.results_dir, lane.writer)
                    try:
                        while not stop.is_set():
                            try:
                                series = work.get_nowait()
                            except queue.Empty:
                                return
                            on_lane = [replace(c, device=lane.device) for c in series]
                            records = run_series(on_lane, store, self._launcher(request, lane, host), known,
                                                 request.force, on_start, on_done)
                            with lock:
                                done.extend(records)
                    except BaseException as exc:  # re-raised in the calling thread
                        errors.append(exc)
                        stop.set()

                threads.append(threading.Thread(target=drain, name=f"lane-{lane.writer}"))
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:
            stop.set()  # lanes finish the configuration they run (each is stored) and take no other
            request.note("interrupted: the lanes finish their running configurations, then stop")
            for thread in threads:
                thread.join()
            raise
        if errors:
            raise errors[0]
        return done

    def _launcher(self, request: SweepRequest, lane: Lane, host: str) -> Callable[[Config], Record]:
        identity = lane.identity

        def launch(config: Config) -> Record:
            placement = placement_for(self.name, host, identity)
            return spawn_and_store(make_job(config, request, identity, placement, writer=lane.writer))

        return launch


def _serialised(callback: Callable[..., Any] | None, lock: threading.Lock) -> Callable[..., Any] | None:
    if callback is None:
        return None

    def call(*args: Any) -> Any:
        with lock:
            return callback(*args)

    return call
