"""``--executor local`` (the default): every configuration in a fresh worker on this machine, one after
another, each series in ascending batch order; records go to the directory's ``results.jsonl``."""

from __future__ import annotations

import os
import socket

from harness.executors.base import Executor, SweepRequest, make_job
from harness.measure.devices import identify
from harness.measure.sweep import backend_modes, batch_series, run_series, with_hardware
from harness.results.records import Config, Placement, Record
from harness.results.store import ResultsStore
from harness.worker import spawn_and_store


class LocalExecutor(Executor):
    name = "local"

    def run(self, request: SweepRequest) -> list[Record]:
        identities = {device: identify(device) for device in request.spec.devices}
        configs = with_hardware(request.spec.configs(backend_modes), {d: i.model for d, i in identities.items()})
        store = ResultsStore(request.results_dir)
        known = store.read()
        host = socket.gethostname()

        def launch(config: Config) -> Record:
            identity = identities[config.device]
            placement = Placement(executor=self.name, host=host, gpu_uuid=identity.uuid, gpu_index=identity.nvml_index,
                                  cuda_visible_devices=identity.uuid or os.environ.get("CUDA_VISIBLE_DEVICES"))
            return spawn_and_store(make_job(config, request, identity, placement))

        done: list[Record] = []
        for series in batch_series(configs):
            done.extend(run_series(series, store, launch, known, request.force, request.on_start, request.on_done))
        return done
