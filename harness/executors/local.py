"""``--executor local`` (the default): every configuration in a fresh worker on this machine, one after
another, each series in ascending batch order; records go to the directory's ``results.jsonl``. The
workers start as :func:`harness.worker_start.sweep_workers` starts every sweep's."""

from __future__ import annotations

import socket

from harness.executors.base import Executor, SweepRequest, make_job, placement_for, plan_here, to_run
from harness.measure.sweep import run_series
from harness.results.records import Config, Record
from harness.results.store import ResultsStore
from harness.worker import spawn_and_store
from harness.worker_start import sweep_workers


class LocalExecutor(Executor):
    name = "local"

    def run(self, request: SweepRequest) -> list[Record]:
        with sweep_workers(request.spec.backends, request.note) as workers:
            plan = plan_here(request.spec, probe=workers.probe)
            for note in plan.notes:
                request.note(note)
            request.total(plan.size)
            store = ResultsStore(request.results_dir)
            known = store.read()
            host = socket.gethostname()

            def launch(config: Config) -> Record:
                identity = plan.identities[config.device]
                return spawn_and_store(make_job(config, request, identity,
                                                placement_for(self.name, host, identity)))

            workers.ready(to_run(plan.series, known, request.force))
            done: list[Record] = []
            for series in plan.series:
                done.extend(run_series(series, store, launch, known, request.force, request.on_start,
                                       request.on_done))
        return done
